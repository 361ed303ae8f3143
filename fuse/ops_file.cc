// File operations: open/create refresh attributes from the metadata service
// (close-to-open), writes are buffered, flush/fsync wait for the replicas.
#include <fcntl.h>
#include <linux/falloc.h>

#include <string>

#include "fuse/filesystem.h"

namespace ringfs::fuse {

namespace {

using wire::Op;

uint64_t NewOpenFile(const std::shared_ptr<Inode>& inode, fuse_file_info* fi) {
  std::lock_guard<std::mutex> lock(inode->mu);
  auto* f = new OpenFile;
  f->seen_error = inode->error_seq;
  if (fi->flags & O_DIRECT) {
    f->direct = true;
    fi->direct_io = 1;  // no page cache for this descriptor
  }
  return reinterpret_cast<uint64_t>(f);
}
OpenFile* FileOf(fuse_file_info* fi) { return reinterpret_cast<OpenFile*>(fi->fh); }

// Records an open of `inode` whose current metadata is `fresh`; returns
// whether the kernel's page cache may be kept.
// `runs` (up to `runs_end`) are the file's committed block versions.
bool NoteOpen(Filesystem* fs, const std::shared_ptr<Inode>& inode, const wire::Attr& fresh,
              const std::vector<wire::VersionRun>& runs = {}, uint64_t runs_end = UINT64_MAX,
              bool no_caps = false) {
  std::unique_lock<std::mutex> lock(inode->mu);
  // Known while open here (a setxattr through this mount clears it; another
  // mount's shows at the next open, as any attribute does).
  if (no_caps) inode->no_caps = true;
  // The kernel may hold attributes from before (for the attribute time):
  // if they changed, it must ask again, or it would read to the old size.
  const bool changed = inode->have_attr &&
                       (inode->attr.size != fresh.size || !(inode->attr.mtime == fresh.mtime) ||
                        !(inode->attr.ctime == fresh.ctime) || inode->attr.mode != fresh.mode);
  // What is current now replaces what this client knew (its own writes not
  // yet committed stay): reads expect exactly these versions.
  inode->LearnVersionsLocked(runs, 0, runs_end, fresh.block_epoch);
  const bool keep = inode->cache_valid && inode->cache_version == fresh.data_version;
  if (!keep) fs->data().DropCache(inode->ino);
  inode->cache_version = fresh.data_version;
  inode->cache_valid = true;
  if (!inode->wrote) inode->attr = fresh;
  inode->acl_known = true;
  inode->have_attr = true;
  inode->open_count++;
  lock.unlock();
  if (changed || !keep) fs->InvalidateAttr(inode->ino);
  return keep;
}

void DoOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Open);
  Filesystem* fs = Fs(req);
  auto session = fs->SessionGuard();
  wire::MetaRequest m;
  m.ino = ino;
  m.opens = 1;  // counted by the service until release sends kClose
  m.closes = fs->TakeCloses();
  wire::MetaReply r;
  Status st = fs->MetaCall(Op::kGetAttr, m, &r, req);
  if (!st.ok()) return ReplyStatus(req, st);
  if (S_ISDIR(r.attr.mode)) {
    fs->NoteClosed(ino);
    return (void)fuse_reply_err(req, EISDIR);
  }
  auto inode = fs->Get(ino);
  bool truncated = false;
  if (fi->flags & O_TRUNC) {
    bool local_data;
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      local_data = inode->wrote || inode->HasPendingWrites();  // not yet committed
    }
    if (r.attr.size > 0 || local_data) {
      // Atomic O_TRUNC: the kernel leaves the truncation to open.
      st = fs->Truncate(inode, 0, &r.attr);
      if (!st.ok()) {
        fs->NoteClosed(ino);
        return ReplyStatus(req, st);
      }
      truncated = true;  // the file has no blocks now: the open's versions are past
    } else {
      // Already empty: O_TRUNC still stamps mtime and ctime (POSIX open()).
      wire::MetaRequest t;
      t.ino = ino;
      t.mask = wire::kSetMtimeNow;
      wire::MetaReply tr;
      st = fs->MetaCall(Op::kSetAttr, t, &tr, req);
      if (!st.ok()) {
        fs->NoteClosed(ino);
        return ReplyStatus(req, st);
      }
      {
        std::lock_guard<std::mutex> lock(inode->mu);
        fs->AdoptAttrLocked(*inode, tr.attr, tr.prev_data_version);
      }
      r.attr = tr.attr;
    }
  }
  fi->keep_cache = truncated ? NoteOpen(fs, inode, r.attr, {}, UINT64_MAX, r.no_caps)
                             : NoteOpen(fs, inode, r.attr, r.runs, r.runs_end, r.no_caps);
  // Reads the kernel answers from its page cache never reach this mount,
  // so a readable open moves the access time when it is due (what the
  // open is for; a read that does reach the mount checks again).
  if ((fi->flags & O_ACCMODE) != O_WRONLY) fs->Accessed(inode);
  fi->fh = NewOpenFile(inode, fi);
  if (fuse_reply_open(req, fi) != 0) {  // interrupted: no release will follow
    delete FileOf(fi);
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      inode->open_count--;
    }
    fs->NoteClosed(ino);
  }
}

void DoCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Create);
  Filesystem* fs = Fs(req);
  auto session = fs->SessionGuard();
  wire::MetaRequest m;
  m.parent = parent;
  m.name = name;
  m.mode = (mode & ~S_IFMT) | S_IFREG;
  m.opens = 1;
  m.closes = fs->TakeCloses();
  wire::MetaReply r;
  Status st = fs->MetaCall(Op::kMknod, m, &r, req);
  if (st.code() == EEXIST) {
    fs->dirs().Forget(parent);
    // Another mount made it while the kernel held its absence: without
    // O_EXCL, open(2) must open it. ESTALE makes the kernel look the name
    // up again (LOOKUP_REVAL) and open it the ordinary way, with the file's
    // own permission checks.
    if (!(fi->flags & O_EXCL)) return ReplyStatus(req, Status::Error(ESTALE, "created elsewhere"));
  }
  if (!st.ok()) return ReplyStatus(req, st);
  fs->dirs().Added(parent, name);
  fuse_entry_param e;
  fs->Remember(r.attr, &e, Filesystem::From(r, parent, name));
  auto inode = fs->Get(r.attr.ino);
  NoteOpen(fs, inode, r.attr, {}, UINT64_MAX, /*no_caps=*/true);  // a new file has no xattrs
  fi->keep_cache = 1;
  fi->fh = NewOpenFile(inode, fi);
  if (fuse_reply_create(req, &e, fi) != 0) {
    delete FileOf(fi);
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      inode->open_count--;
    }
    fs->NoteClosed(r.attr.ino);
  }
}

void DoRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Read);
  Filesystem* fs = Fs(req);
  auto inode = fs->Get(ino);
  uint64_t file_size;
  bool local_writes;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    file_size = inode->Size();
    local_writes = inode->wrote || inode->HasPendingWrites();
  }
  OpenFile* file = FileOf(fi);
  if (file && file->direct) {
    // Direct: the file as the service has it now (other mounts' direct
    // writes are committed as they return), not what this mount cached.
    fs->data().DropCache(ino, static_cast<uint64_t>(off), size);
    if (!local_writes) {
      Status st = fs->Revalidate(ino, /*kernel_now=*/false);
      if (!st.ok()) return ReplyStatus(req, st);
      std::lock_guard<std::mutex> lock(inode->mu);
      file_size = inode->Size();
    }
  }
  auto r = fs->data().Read(inode, static_cast<uint64_t>(off), size, file_size);
  if (!r.ok()) return ReplyStatus(req, r.status());
  fs->Accessed(inode);
  if (r->iov.empty()) return (void)fuse_reply_buf(req, nullptr, 0);
  fuse_reply_iov(req, r->iov.data(), static_cast<int>(r->iov.size()));
}

void DoWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  RINGFS_FUSE_OP(Write);
  Filesystem* fs = Fs(req);
  auto inode = fs->Get(ino);
  OpenFile* file = FileOf(fi);
  Status st = fs->data().Write(inode, static_cast<uint64_t>(off), buf, size, file);
  if (st.ok() && file && file->direct) {
    // Direct: on the replicas (a quorum) and committed before it returns,
    // so a reader on any mount finds it.
    st = fs->FlushAndCommit(inode, file);
  }
  if (!st.ok()) return ReplyStatus(req, st);
  fuse_reply_write(req, size);
}

void DoFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Flush);
  Filesystem* fs = Fs(req);
  auto inode = fs->Find(ino);
  if (!inode) return (void)fuse_reply_err(req, 0);
  Status st = fs->FlushAndCommit(inode, FileOf(fi));
  // close(2) drops the process's fcntl locks on the file (POSIX).
  fs->ReleaseOwnerAtFlush(inode, fi->lock_owner);
  ReplyStatus(req, st);
}

void DoRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Release);
  Filesystem* fs = Fs(req);
  std::unique_ptr<OpenFile> file(FileOf(fi));
  auto inode = fs->Find(ino);
  if (!inode) {
    fs->NoteClosed(ino);
    return (void)fuse_reply_err(req, 0);
  }
  Status st = fs->FlushAndCommit(inode, file.get());  // normally already done by flush
  fs->ReleaseFileLocks(inode, file.get(), fi->flock_release, fi->lock_owner);
  auto session = fs->SessionGuard();
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->open_count > 0) inode->open_count--;
    if (inode->open_count == 0) inode->no_caps = false;
  }
  fs->NoteClosed(ino);
  ReplyStatus(req, st);
}

void DoFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Fsync);
  Filesystem* fs = Fs(req);
  auto inode = fs->Get(ino);
  Status st = fs->data().Sync(inode, FileOf(fi));
  if (st.ok()) st = fs->CommitWrites(inode);
  // The data is on the replicas' disks; now the size and names that lead
  // to it (fsync(2) also covers the inode's metadata).
  if (st.ok()) st = fs->SyncMeta();
  ReplyStatus(req, st);
}

// fallocate(2). There is no space to reserve ahead on the block daemons
// (a block takes its bytes when written), so mode 0 and KEEP_SIZE check
// up front that the cluster has the room, which is when ENOSPC must come,
// and grow the size unless told to keep it. PUNCH_HOLE and ZERO_RANGE zero
// the range: blocks wholly inside it are emptied on their replicas (their
// space freed), the edges are written with zeros. COLLAPSE_RANGE and
// INSERT_RANGE would shift every block after the range: EOPNOTSUPP.
void DoFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Fallocate);
  Filesystem* fs = Fs(req);
  constexpr int kSupported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~kSupported) return (void)fuse_reply_err(req, EOPNOTSUPP);
  if (off < 0 || len <= 0 || off > INT64_MAX - len) return (void)fuse_reply_err(req, EINVAL);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  auto inode = fs->Get(ino);
  const uint64_t start = static_cast<uint64_t>(off), end = start + static_cast<uint64_t>(len);
  const bool zero = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
  uint64_t size;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    size = inode->Size();
  }
  if (!(mode & FALLOC_FL_PUNCH_HOLE)) {
    // Room for the range, as the cluster counts usable space (per copy).
    wire::MetaRequest m;
    wire::MetaReply r;
    Status st = fs->MetaCall(Op::kStatfs, m, &r, req);
    if (!st.ok()) return ReplyStatus(req, st);
    const uint64_t need = zero ? end - start : (end > size ? end - std::max(start, size) : 0);
    if (need > r.statfs.free_bytes) return (void)fuse_reply_err(req, ENOSPC);
  }
  Status st;
  if (zero && start < size) {
    const uint64_t stop = std::min(end, size);
    constexpr uint64_t kBs = wire::kBlockSize;
    const uint64_t first_whole = (start + kBs - 1) / kBs, last_whole = stop / kBs;
    auto zeros = [&](uint64_t a, uint64_t b) -> Status {
      if (a >= b) return Status::OK();
      const std::string z(std::min<uint64_t>(b - a, kBs), '\0');
      for (uint64_t p = a; p < b; p += z.size())
        RETURN_IF_ERROR(fs->data().Write(inode, p, z.data(), std::min<uint64_t>(z.size(), b - p), FileOf(fi)));
      return Status::OK();
    };
    if (first_whole < last_whole) {
      st = zeros(start, first_whole * kBs);
      if (st.ok()) fs->data().Empty(inode, first_whole, last_whole);
      if (st.ok()) st = zeros(last_whole * kBs, stop);
    } else {
      st = zeros(start, stop);
    }
    if (st.ok()) st = fs->FlushAndCommit(inode, FileOf(fi));
  }
  if (st.ok() && !(mode & FALLOC_FL_KEEP_SIZE) && end > size) {
    wire::Attr attr;
    st = fs->Truncate(inode, end, &attr);
  }
  ReplyStatus(req, st);
}

}  // namespace

void FillFileOps(fuse_lowlevel_ops* ops) {
  ops->open = DoOpen;
  ops->create = DoCreate;
  ops->read = DoRead;
  ops->write = DoWrite;
  ops->flush = DoFlush;
  ops->release = DoRelease;
  ops->fsync = DoFsync;
  ops->fallocate = DoFallocate;
}

}  // namespace ringfs::fuse
