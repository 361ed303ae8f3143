// Namespace operations: each asks the metadata service and replies once.
#include <linux/fs.h>

#include <cstring>

#include "fuse/filesystem.h"

namespace ringfs::fuse {

namespace {

using wire::Op;

void ReplyEntry(fuse_req_t req, const wire::Attr& attr, const Filesystem::Source& src = {}) {
  fuse_entry_param e;
  Fs(req)->Remember(attr, &e, src);
  fuse_reply_entry(req, &e);
}

void ReplyAttr(fuse_req_t req, const wire::Attr& attr, const Filesystem::Source& src = {}) {
  struct stat st;
  Fs(req)->FillStat(attr, &st);
  fuse_reply_attr(req, &st, Fs(req)->AttrTimeout(attr, src));
}

// An absent name, which the kernel may remember for the negative time (an
// event from the service ends that sooner when another client creates it).
void ReplyAbsent(fuse_req_t req) {
  fuse_entry_param e{};
  e.ino = 0;
  e.entry_timeout = Fs(req)->options().negative_timeout;
  fuse_reply_entry(req, &e);
}

void DoLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  RINGFS_FUSE_OP(Lookup);
  Filesystem* fs = Fs(req);
  // A create's own probe, in a directory whose every name this mount knows.
  const bool dots = std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
  if (!dots && fs->dirs().KnownAbsent(parent, name)) return ReplyAbsent(req);
  wire::MetaRequest m;
  m.parent = parent;
  m.name = name;
  wire::MetaReply r;
  Status st = fs->MetaCall(Op::kLookup, m, &r, req);
  // "." and ".." come only from file handles (NFS): a gone inode is stale.
  if (dots && st.code() == ENOENT) return ReplyStatus(req, Status::Error(ESTALE, "inode gone"));
  if (st.code() == ENOENT) return ReplyAbsent(req);
  if (!st.ok()) return ReplyStatus(req, st);
  ReplyEntry(req, r.attr, dots ? Filesystem::Source{} : Filesystem::From(r, parent, name));
}

void DoForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  RINGFS_FUSE_OP(Forget);
  Fs(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void DoForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  RINGFS_FUSE_OP(ForgetMulti);
  for (size_t i = 0; i < count; i++) Fs(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void DoGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  RINGFS_FUSE_OP(Getattr);
  Filesystem* fs = Fs(req);
  // A file open here is answered locally: its attributes were refreshed at
  // open and include this client's own writes.
  if (auto inode = fs->Find(ino)) {
    std::unique_lock<std::mutex> lock(inode->mu);
    if (inode->open_count > 0 && inode->have_attr && !inode->attr_stale) {
      wire::Attr a = inode->attr;
      a.size = inode->Size();
      if (a.size != inode->attr.size) a.blocks = wire::kBlocksUnknown;  // writes not counted yet
      lock.unlock();
      return ReplyAttr(req, a);
    }
    if (inode->open_count > 0 && inode->have_attr) {
      // Changed elsewhere while open here: mode, owner, links and times as
      // the service has them now; the size stays what this open reads.
      inode->attr_stale = false;
      lock.unlock();
      wire::MetaRequest m;
      m.ino = ino;
      wire::MetaReply r;
      Status st = fs->MetaCall(Op::kGetAttr, m, &r, req);
      if (!st.ok()) return ReplyStatus(req, st);
      lock.lock();
      if (inode->open_count > 0) {
        wire::Attr& a = inode->attr;
        a.mode = r.attr.mode;
        a.uid = r.attr.uid;
        a.gid = r.attr.gid;
        a.nlink = r.attr.nlink;
        a.atime = r.attr.atime;
        a.mtime = r.attr.mtime;
        a.ctime = r.attr.ctime;
        bool foreign_data = false;
        if (!inode->wrote && !inode->HasPendingWrites() && r.attr.data_version > inode->cache_version) {
          // Another mount's write or truncation: the size follows it (tail -f
          // polls fstat), and what this mount held of the data is dropped;
          // the block versions are asked again at the next read.
          foreign_data = true;
          a.size = r.attr.size;
          a.blocks = r.attr.blocks;
          a.data_version = r.attr.data_version;
          inode->LearnVersionsLocked({}, 0, UINT64_MAX, r.attr.block_epoch);
          inode->versions_end = 0;
          inode->cache_version = r.attr.data_version;
          inode->cache_valid = true;
        }
        wire::Attr shown = a;
        shown.size = inode->Size();
        if (shown.size != a.size) shown.blocks = wire::kBlocksUnknown;  // writes not counted yet
        lock.unlock();
        if (foreign_data) fs->DropData(ino);
        return ReplyAttr(req, shown);
      }
      lock.unlock();
      fs->UpdateAttr(r.attr);
      return ReplyAttr(req, r.attr, Filesystem::From(r));
    }
  }
  // A directory this client changed, or a file it committed writes to, a
  // moment ago: the kernel dropped its cached attributes, but the change's
  // reply carried the new ones.
  if (auto fresh = fs->FreshAttr(ino)) {
    struct stat st;
    fs->FillStat(fresh->first, &st);
    return (void)fuse_reply_attr(req, &st, fresh->second);
  }
  wire::MetaRequest m;
  m.ino = ino;
  wire::MetaReply r;
  Status st = fs->MetaCall(Op::kGetAttr, m, &r, req);
  if (st.code() == ENOENT) {
    // A directory removed (or renamed over) while open here: its
    // descriptors still stat, with no links (as on a local filesystem).
    if (auto inode = fs->Find(ino)) {
      std::unique_lock<std::mutex> lock(inode->mu);
      if (inode->dir_opens > 0 && inode->have_attr) {
        wire::Attr a = inode->attr;
        a.nlink = 0;
        lock.unlock();
        struct stat sb;
        fs->FillStat(a, &sb);
        return (void)fuse_reply_attr(req, &sb, 0);
      }
    }
  }
  if (!st.ok()) return ReplyStatus(req, st);
  fs->UpdateAttr(r.attr);
  ReplyAttr(req, r.attr, Filesystem::From(r));
}

void DoSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  RINGFS_FUSE_OP(Setattr);
  Filesystem* fs = Fs(req);
  auto inode = fs->Get(ino);
  wire::MetaRequest m;
  m.ino = ino;
  // Buffered writes land first; their new size rides along with this change
  // (one metadata commit instead of two: tar sets times right after writing).
  Status st = fs->data().Flush(inode);
  if (!st.ok()) return ReplyStatus(req, st);
  bool carries_writes = false;
  std::unique_lock<std::mutex> commit(inode->commit_mu, std::defer_lock);
  if (!(to_set & FUSE_SET_ATTR_SIZE)) {
    commit.lock();
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->wrote || !inode->uncommitted.empty()) {
      carries_writes = true;
      m.mask |= wire::kSetWriteEnd;
      m.size = inode->write_end;
      m.blocks = Filesystem::TakeUncommittedLocked(*inode);
      if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) m.mask |= wire::kSetMtimeNow;
    }
  }
  if (to_set & FUSE_SET_ATTR_MODE) m.mask |= wire::kSetMode, m.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) m.mask |= wire::kSetUid, m.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) m.mask |= wire::kSetGid, m.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME) {
    m.mask |= wire::kSetAtime;
    m.atime = {attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_MTIME) {
    m.mask |= wire::kSetMtime;
    m.mtime = {attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) m.mask |= wire::kSetAtimeNow;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) m.mask |= wire::kSetMtimeNow;
  if (to_set & FUSE_SET_ATTR_CTIME) m.mask |= wire::kSetCtime;
  wire::MetaReply r;
  if (to_set & FUSE_SET_ATTR_SIZE) {
    // A versioned cut on the block nodes, then the size (Filesystem::Truncate);
    // the other attributes follow in their own change.
    st = fs->Truncate(inode, static_cast<uint64_t>(attr->st_size), &r.attr);
    if (!st.ok() || m.mask == 0) return st.ok() ? ReplyAttr(req, r.attr) : ReplyStatus(req, st);
  }
  // Without the request's credentials, which would overwrite uid/gid with
  // the caller's: here they are the requested owner.
  st = fs->MetaCall(Op::kSetAttr, m, &r);
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!st.ok()) {
      if (carries_writes) Filesystem::ReturnUncommittedLocked(*inode, m.blocks);
      return ReplyStatus(req, st);
    }
    fs->AdoptAttrLocked(*inode, r.attr, r.prev_data_version);
    if (carries_writes) inode->MarkCommitted(m.size);
  }
  if (!r.superseded.empty()) {
    st = fs->Restamp(inode, m.blocks, r.superseded, r.attr.block_epoch);
    if (!st.ok()) return ReplyStatus(req, st);
  }
  ReplyAttr(req, r.attr, Filesystem::From(r));
}

void MakeNode(fuse_req_t req, Op op, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
              const char* target) {
  wire::MetaRequest m;
  m.parent = parent;
  m.name = name;
  m.mode = mode;
  m.rdev = static_cast<uint32_t>(rdev);
  if (target) m.value = target;
  wire::MetaReply r;
  Filesystem* fs = Fs(req);
  const DirCache::Mark mark = fs->dirs().Begin(parent);
  Status st = fs->MetaCall(op, m, &r, req);
  if (st.code() == EEXIST) fs->dirs().Forget(parent);  // we thought it absent
  if (!st.ok()) return ReplyStatus(req, st);
  fs->dirs().Added(parent, name);
  if (op == Op::kMkdir) fs->dirs().Created(r.attr.ino, mark);  // empty, and ours
  ReplyEntry(req, r.attr, Filesystem::From(r, parent, name));
}

void DoMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  RINGFS_FUSE_OP(Mknod);
  MakeNode(req, Op::kMknod, parent, name, mode, rdev, nullptr);
}

void DoMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  RINGFS_FUSE_OP(Mkdir);
  MakeNode(req, Op::kMkdir, parent, name, mode | S_IFDIR, 0, nullptr);
}

void DoSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  RINGFS_FUSE_OP(Symlink);
  MakeNode(req, Op::kSymlink, parent, name, S_IFLNK | 0777, 0, link);
}

void DoLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  RINGFS_FUSE_OP(Link);
  wire::MetaRequest m;
  m.ino = ino;
  m.newparent = newparent;
  m.newname = newname;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kLink, m, &r, req);
  if (st.code() == EEXIST) Fs(req)->dirs().Forget(newparent);
  if (!st.ok()) return ReplyStatus(req, st);
  Fs(req)->dirs().Added(newparent, newname);
  ReplyEntry(req, r.attr, Filesystem::From(r, newparent, newname));
}

void Remove(fuse_req_t req, Op op, fuse_ino_t parent, const char* name) {
  wire::MetaRequest m;
  m.parent = parent;
  m.name = name;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(op, m, &r, req);
  if (st.ok()) {
    Fs(req)->NoteUnlinked(r.attr, r.reclaimed);
    Fs(req)->dirs().Removed(parent, name);
    Fs(req)->dirs().Unnamed(parent, name);
  }
  ReplyStatus(req, st);
}

void DoUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  RINGFS_FUSE_OP(Unlink); Remove(req, Op::kUnlink, parent, name); }
void DoRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  RINGFS_FUSE_OP(Rmdir); Remove(req, Op::kRmdir, parent, name); }

void DoRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  RINGFS_FUSE_OP(Rename);
  wire::MetaRequest m;
  m.parent = parent;
  m.name = name;
  m.newparent = newparent;
  m.newname = newname;
  m.flags = flags;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kRename, m, &r, req);
  DirCache& dirs = Fs(req)->dirs();
  if (st.code() == EEXIST) dirs.Forget(newparent);
  if (st.ok()) {
    Fs(req)->NoteUnlinked(r.attr, r.reclaimed);
    if (!(flags & RENAME_EXCHANGE)) {  // an exchange keeps both names
      dirs.Removed(parent, name);
      dirs.Added(newparent, newname);
    }
    dirs.Renamed(parent, name, newparent, newname, flags & RENAME_EXCHANGE);
    if (flags & RENAME_WHITEOUT) dirs.Added(parent, name);
  }
  ReplyStatus(req, st);
}

void DoReadlink(fuse_req_t req, fuse_ino_t ino) {
  RINGFS_FUSE_OP(Readlink);
  wire::MetaRequest m;
  m.ino = ino;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kReadlink, m, &r, req);
  if (!st.ok()) return ReplyStatus(req, st);
  fuse_reply_readlink(req, r.value.c_str());
}

// A listing read from offset 0 to the end without a gap tells the mount
// every name in the directory (DirCache::Listed).
struct Listing {
  DirCache::Mark mark;
  uint64_t incarnation = 0, seq = 0;
  std::vector<std::string> names;
  off_t next = 0;      // the offset after the last entry returned
  bool whole = false;  // still a listing from the start
};
Listing* ListingOf(fuse_file_info* fi) { return reinterpret_cast<Listing*>(fi->fh); }

void DirOpens(Filesystem* fs, fuse_ino_t ino, int delta) {
  auto inode = fs->Get(ino);
  std::lock_guard<std::mutex> lock(inode->mu);
  inode->dir_opens += delta;
}

void DoOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Opendir);
  auto* l = new Listing;
  fi->fh = reinterpret_cast<uint64_t>(l);
  DirOpens(Fs(req), ino, 1);
  if (fuse_reply_open(req, fi) != 0) {
    delete l;
    DirOpens(Fs(req), ino, -1);
  }
}

// Offsets: 1 and 2 are "." and ".."; an entry with metadata cookie c has
// offset c + 2, so a listing resumes exactly after the last entry returned.
// READDIRPLUS (`plus`) also hands the kernel each entry with its
// attributes, as a lookup would (the lookup count goes up for each one
// but "." and ".."): ls -l, find and rm -rf then ask no lookups.
void List(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  std::string buf(size, '\0');
  size_t used = 0;
  Filesystem* fs = Fs(req);
  auto add = [&](const char* name, uint64_t child, uint32_t mode, off_t next, const wire::Attr* attr,
                 const Filesystem::Source& src) {
    if (!plus) {
      struct stat st {};
      st.st_ino = child;
      st.st_mode = mode;
      size_t need = fuse_add_direntry(req, nullptr, 0, name, &st, next);
      if (used + need > size) return false;
      fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
      used += need;
      return true;
    }
    fuse_entry_param e{};
    size_t need = fuse_add_direntry_plus(req, nullptr, 0, name, &e, next);
    if (used + need > size) return false;
    if (attr) {
      fs->Remember(*attr, &e, src);
    } else {  // "." and "..": the kernel takes neither attributes nor a lookup
      e.attr.st_ino = child;
      e.attr.st_mode = mode;
    }
    fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    used += need;
    return true;
  };
  if (off < 1 && !add(".", ino, S_IFDIR, 1, nullptr, {})) return (void)fuse_reply_buf(req, buf.data(), used);
  if (off < 2 && !add("..", 1, S_IFDIR, 2, nullptr, {})) return (void)fuse_reply_buf(req, buf.data(), used);
  Listing* l = ListingOf(fi);
  if (l && off == 0) {
    *l = Listing{};
    l->mark = fs->dirs().Begin(ino);
    l->whole = true;
  } else if (l && off > l->next) {
    l->whole = false;  // a seek past what was listed
  }
  wire::MetaRequest m;
  m.ino = ino;
  m.cookie = off > 2 ? static_cast<uint64_t>(off) - 2 : 0;
  // What fits: about 32 bytes an entry, or 150 with attributes.
  m.max_entries = static_cast<uint32_t>(std::max<size_t>(16, size / (plus ? 150 : 32)));
  if (plus) m.flags = wire::kReaddirPlus;
  wire::MetaReply r;
  Status st = fs->MetaCall(Op::kReaddir, m, &r, req);
  // Removed while open (through another mount): no entries, as a local
  // filesystem lists a dead directory.
  if (st.code() == ENOENT && l) return (void)fuse_reply_buf(req, nullptr, 0);
  if (!st.ok()) return ReplyStatus(req, st);
  if (plus && r.entry_attrs.size() != r.entries.size())
    return ReplyStatus(req, Status::Error(EPROTO, "readdirplus reply without attributes"));
  if (l && l->whole && off == 0) {
    l->incarnation = r.event_incarnation;
    l->seq = r.event_seq;
  }
  bool all = true;
  for (size_t i = 0; i < r.entries.size(); i++) {
    const auto& e = r.entries[i];
    if (!add(e.name.c_str(), e.ino, e.mode, static_cast<off_t>(e.cookie + 2), plus ? &r.entry_attrs[i] : nullptr,
             Filesystem::From(r, ino, e.name.c_str()))) {
      all = false;
      break;
    }
    if (l && l->whole) {
      l->names.push_back(e.name);
      l->next = std::max<off_t>(l->next, static_cast<off_t>(e.cookie + 2));
    }
  }
  if (off == 0) fs->Accessed(fs->Get(ino), /*dir=*/true);
  if (l && l->whole && all && r.eof) {
    fs->dirs().Listed(ino, l->names, l->incarnation, l->seq, l->mark);
    l->whole = false;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void DoReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Readdir);
  List(req, ino, size, off, fi, false);
}

void DoReaddirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Readdirplus);
  List(req, ino, size, off, fi, true);
}

void DoReleasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  RINGFS_FUSE_OP(Releasedir);
  delete ListingOf(fi);
  DirOpens(Fs(req), ino, -1);
  fuse_reply_err(req, 0);
}

void DoStatfs(fuse_req_t req, fuse_ino_t) {
  RINGFS_FUSE_OP(Statfs);
  wire::MetaRequest m;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kStatfs, m, &r, req);
  if (!st.ok()) return ReplyStatus(req, st);
  struct statvfs sv {};
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_blocks = r.statfs.total_bytes / 4096;
  sv.f_bfree = r.statfs.free_bytes / 4096;
  sv.f_bavail = sv.f_bfree;
  sv.f_files = r.statfs.files + (1ull << 32);
  sv.f_ffree = 1ull << 32;
  sv.f_favail = sv.f_ffree;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

// Entries are changed by the service as they are made, so a directory has
// nothing of its own to write: fsyncdir makes the journal durable.
void DoFsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  RINGFS_FUSE_OP(Fsyncdir);
  ReplyStatus(req, Fs(req)->SyncMeta());
}

}  // namespace

void FillNamespaceOps(fuse_lowlevel_ops* ops) {
  ops->fsyncdir = DoFsyncdir;
  ops->lookup = DoLookup;
  ops->forget = DoForget;
  ops->forget_multi = DoForgetMulti;
  ops->getattr = DoGetattr;
  ops->setattr = DoSetattr;
  ops->readlink = DoReadlink;
  ops->mknod = DoMknod;
  ops->mkdir = DoMkdir;
  ops->unlink = DoUnlink;
  ops->rmdir = DoRmdir;
  ops->symlink = DoSymlink;
  ops->rename = DoRename;
  ops->link = DoLink;
  ops->opendir = DoOpendir;
  ops->readdir = DoReaddir;
  ops->readdirplus = DoReaddirPlus;
  ops->releasedir = DoReleasedir;
  ops->statfs = DoStatfs;
}

}  // namespace ringfs::fuse
