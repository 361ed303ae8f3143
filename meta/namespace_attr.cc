// Operations that change an inode in place: setattr, commit-write, xattrs.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>

#include "common/block_version.h"
#include "meta/acl.h"
#include "meta/namespace_ops.h"

namespace ringfs::meta::ops {

namespace {

constexpr size_t kMaxXattrValue = 64 << 10;  // XATTR_SIZE_MAX

bool ValidTime(const wire::Timespec& t) { return t.nsec < 1000000000u; }

Status CheckRegular(const Inode& n) {
  if (n.is_dir()) return Status::Error(EISDIR, "is a directory");
  if (!S_ISREG(n.attr.mode)) return Status::Error(EINVAL, "not a regular file");
  return Status::OK();
}

constexpr size_t kMaxBlocksPerCommit = 8192;  // a client sends more in several commits

// Records the versions the client's acknowledged writes left the blocks at
// (blockver::CheckCommit decides which records they replace).
// An inode stored before its blocks were counted is counted once now.
Status KnowBlocks(Ctx& c, Inode& n) {
  if (n.attr.blocks != wire::kBlocksUnknown) return Status::OK();
  ASSIGN_OR_RETURN(n.attr.blocks, c.t.CountBlocks(n.attr.ino));
  return Status::OK();
}

Status CommitBlocks(Ctx& c, Inode& n) {
  if (c.req.blocks.size() > kMaxBlocksPerCommit) return Status::Error(E2BIG, "too many blocks in one commit");
  if (!c.req.blocks.empty()) RETURN_IF_ERROR(KnowBlocks(c, n));
  const uint64_t epoch = n.attr.block_epoch;
  for (const wire::BlockState& b : c.req.blocks) {
    auto rec = c.t.GetBlock(n.attr.ino, b.index);
    if (!rec.ok() && rec.status().code() != ENOENT) return rec.status();
    const BlockRecord* have = rec.ok() ? &*rec : nullptr;
    switch (blockver::CheckCommit(have ? &have->version : nullptr, b.version, epoch)) {
      case blockver::CommitCheck::kInvalid:
        return Status::Error(EINVAL, "block " + std::to_string(b.index) + ": invalid version");
      case blockver::CommitCheck::kIgnore:
        if (!have) c.rep->superseded.push_back(b.index);  // written before a truncation, or after it?
        break;
      case blockver::CommitCheck::kReplace:
        RETURN_IF_ERROR(c.t.PutBlock(n.attr.ino, b.index, {b.version, b.holders}, c.replicas));
        if (!have) n.attr.blocks++;
        break;
      case blockver::CommitCheck::kMerge: {
        BlockRecord merged = *have;
        for (uint32_t h : b.holders)
          if (std::find(merged.holders.begin(), merged.holders.end(), h) == merged.holders.end())
            merged.holders.push_back(h);
        if (merged.holders.size() != have->holders.size())
          RETURN_IF_ERROR(c.t.PutBlock(n.attr.ino, b.index, merged, c.replicas));
        break;
      }
    }
  }
  return Status::OK();
}

// A truncation to a smaller size: the blocks past it are gone from the
// record (holes from now on, whatever a node that missed the cut still
// holds) and a new block epoch begins; the block the cut falls in takes the
// version the client cut it to, which it sends in `blocks`.
Status Shrink(Ctx& c, Inode& n, uint64_t size) {
  const uint64_t bs = wire::kBlockSize;
  const uint64_t keep = size / bs + (size % bs ? 1 : 0);
  wire::Attr& a = n.attr;
  // A client proposes one past the epoch it knows, which is at most ours.
  if (c.req.epoch > a.block_epoch + 1) return Status::Error(EINVAL, "block epoch from the future");
  if (a.block_epoch == UINT64_MAX) return Status::Error(EOVERFLOW, "block epochs exhausted");
  a.block_epoch++;
  RETURN_IF_ERROR(KnowBlocks(c, n));
  uint64_t dropped = 0;
  RETURN_IF_ERROR(c.t.DropBlocksFrom(a.ino, keep, &dropped));
  a.blocks -= std::min(a.blocks, dropped);
  if (size % bs == 0) return Status::OK();
  const uint64_t k = size / bs;
  auto rec = c.t.GetBlock(a.ino, k);
  if (!rec.ok() && rec.status().code() != ENOENT) return rec.status();
  const wire::BlockState* cut = nullptr;
  for (const auto& b : c.req.blocks)
    if (b.index == k) cut = &b;
  if (!rec.ok()) return Status::OK();  // a hole stays a hole
  if (!cut) return Status::Error(ESTALE, "block " + std::to_string(k) + " changed: cut it again");
  if (blockver::CheckCommit(&rec->version, cut->version, a.block_epoch) != blockver::CommitCheck::kReplace)
    return Status::Error(ESTALE, "block " + std::to_string(k) + " changed: cut it again");
  return c.t.PutBlock(a.ino, k, {cut->version, cut->holders}, c.replicas);
}

}  // namespace

void KnowXflags(Ctx& c, Inode& n) {
  if (!(n.attr.xflags & wire::kXflagsUnknown)) return;
  n.attr.xflags = 0;
  if (c.t.GetXattr(n.attr.ino, acl::kAccess).ok()) n.attr.xflags |= wire::kHasAccessAcl;
  if (c.t.GetXattr(n.attr.ino, acl::kDefault).ok()) n.attr.xflags |= wire::kHasDefaultAcl;
}

// Access times from a mount (relatime, fuse/filesystem.h Accessed): no
// ctime stamp, never backwards; an inode removed since is skipped.
Status TouchAtimes(Ctx& c) {
  constexpr size_t kMaxAtimes = 8192;
  if (c.req.atimes.size() > kMaxAtimes) return Status::Error(E2BIG, "too many access times in one batch");
  for (const wire::InodeTime& t : c.req.atimes) {
    if (!ValidTime(t.time)) return Status::Error(EINVAL, "bad timestamp");
    auto n = c.t.GetInode(t.ino);
    if (!n.ok() && n.status().code() == ENOENT) continue;
    if (!n.ok()) return n.status();
    wire::Timespec& a = n->attr.atime;
    if (a.sec > t.time.sec || (a.sec == t.time.sec && a.nsec >= t.time.nsec)) continue;
    a = t.time;
    RETURN_IF_ERROR(c.t.PutInode(*n));
  }
  return Status::OK();
}

Status SetAttr(Ctx& c) {
  using namespace wire;  // SetAttrMask bits
  const wire::MetaRequest& r = c.req;
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(r.ino));
  wire::Attr& a = n.attr;
  c.rep->prev_data_version = a.data_version;
  if ((r.mask & kSetAtime && !ValidTime(r.atime)) || (r.mask & kSetMtime && !ValidTime(r.mtime))) {
    return Status::Error(EINVAL, "bad timestamp");
  }
  if ((r.mask & kSetSize) && (r.mask & kSetWriteEnd))
    return Status::Error(EINVAL, "a size and a write end in one change");
  if (r.mask & (kSetSize | kSetWriteEnd)) RETURN_IF_ERROR(CheckRegular(n));
  if (!r.blocks.empty() && !(r.mask & (kSetSize | kSetWriteEnd)))
    return Status::Error(EINVAL, "block versions without a size change");

  if (r.mask & kSetMode) {
    a.mode = (a.mode & S_IFMT) | (r.mode & 07777);
    // chmod moves the access ACL's owner, mask (or group) and other entries.
    KnowXflags(c, n);
    if (a.xflags & kHasAccessAcl) {
      ASSIGN_OR_RETURN(std::string x, c.t.GetXattr(a.ino, acl::kAccess));
      ASSIGN_OR_RETURN(acl::Acl acl_now, acl::Acl::Parse(x));
      acl_now.Chmod(a.mode);
      RETURN_IF_ERROR(c.t.PutXattr(a.ino, acl::kAccess, acl_now.Serialize()));
    }
  }
  if (r.mask & kSetUid) a.uid = r.uid;
  if (r.mask & kSetGid) a.gid = r.gid;
  if (r.mask & kSetWriteEnd) {  // the writes buffered before this change, as CommitWrite
    RETURN_IF_ERROR(CommitBlocks(c, n));
    a.data_version++;
    if (r.size > a.size) a.size = r.size;
    if (!(r.mask & (kSetMtime | kSetMtimeNow))) a.mtime = c.now;
  }
  if (r.mask & kSetSize) {
    // A client that cut the blocks says where (`cookie`, with `epoch`): at
    // the new size, or at the old one when growing. Anything else means the
    // file changed since it looked: it cuts again.
    if (r.epoch != 0) {
      if (r.cookie != std::min(r.size, a.size))
        return Status::Error(ESTALE, "the file's size changed: cut it again");
      RETURN_IF_ERROR(Shrink(c, n, r.cookie));
    } else if (r.size < a.size) {
      RETURN_IF_ERROR(Shrink(c, n, r.size));
    }
    // Bumped even for the same size: caches keyed by data_version must drop
    // anything a racing writer left beyond what the store knows.
    a.data_version++;
    if (r.size != a.size && !(r.mask & (kSetMtime | kSetMtimeNow))) a.mtime = c.now;
    a.size = r.size;
  }
  if (r.mask & kSetAtimeNow)
    a.atime = c.now;
  else if (r.mask & kSetAtime)
    a.atime = r.atime;
  if (r.mask & kSetMtimeNow)
    a.mtime = c.now;
  else if (r.mask & kSetMtime)
    a.mtime = r.mtime;
  a.ctime = c.now;  // every attribute change, and kSetCtime, stamps ctime
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = a;
  return Status::OK();
}

Status CommitWrite(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(CheckRegular(n));
  if (!ValidTime(c.req.mtime)) return Status::Error(EINVAL, "bad timestamp");
  wire::Attr& a = n.attr;
  c.rep->prev_data_version = a.data_version;
  RETURN_IF_ERROR(CommitBlocks(c, n));
  // The client reports where its writes ended; truncation goes via SetAttr.
  if (c.req.size > a.size) a.size = c.req.size;
  const bool given = c.req.mtime.sec != 0 || c.req.mtime.nsec != 0;
  a.mtime = a.ctime = given ? c.req.mtime : c.now;
  a.data_version++;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = a;
  return Status::OK();
}

// A replica whose copy of a block failed its checksum no longer holds the
// block's version: it is dropped from the holders and repaired.
Status ReportBadCopy(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(CheckRegular(n));
  if (c.req.blocks.size() != 1 || c.req.blocks[0].holders.size() != 1)
    return Status::Error(EINVAL, "one block and one node per report");
  const wire::BlockState& b = c.req.blocks[0];
  auto rec = c.t.GetBlock(n.attr.ino, b.index);
  if (!rec.ok()) return rec.status().code() == ENOENT ? Status::OK() : rec.status();
  const bool any = c.req.flags & wire::kBadCopyAnyVersion;
  if (!any && !(rec->version == b.version)) return Status::OK();  // rewritten since
  if (std::find(rec->holders.begin(), rec->holders.end(), b.holders[0]) == rec->holders.end())
    return Status::OK();
  std::erase(rec->holders, b.holders[0]);
  RETURN_IF_ERROR(c.t.PutBlock(n.attr.ino, b.index, *rec, c.replicas));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status SetXattr(Ctx& c) {
  const wire::MetaRequest& r = c.req;
  RETURN_IF_ERROR(CheckXattrName(r.name));
  if (r.value.size() > kMaxXattrValue) return Status::Error(E2BIG, "xattr value too large");
  if (r.flags & ~uint32_t{XATTR_CREATE | XATTR_REPLACE}) {
    return Status::Error(EINVAL, "bad xattr flags");
  }
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(r.ino));
  auto old = c.t.GetXattr(r.ino, r.name);
  if (!old.ok() && old.status().code() != ENODATA) return old.status();
  if (old.ok() && (r.flags & XATTR_CREATE)) return Status::Error(EEXIST, "xattr exists");
  if (!old.ok() && (r.flags & XATTR_REPLACE)) return Status::Error(ENODATA, "no such xattr");
  KnowXflags(c, n);
  if (r.name == acl::kAccess) {
    // The mode follows the ACL; one the mode says entirely is not kept.
    ASSIGN_OR_RETURN(acl::Acl a, acl::Acl::Parse(r.value));
    n.attr.mode = (n.attr.mode & ~0777u) | a.ModeBits();
    if (a.EquivalentToMode()) {
      if (old.ok()) RETURN_IF_ERROR(c.t.DelXattr(r.ino, r.name));
      n.attr.xflags &= ~wire::kHasAccessAcl;
    } else {
      RETURN_IF_ERROR(c.t.PutXattr(r.ino, r.name, a.Serialize()));
      n.attr.xflags |= wire::kHasAccessAcl;
    }
  } else if (r.name == acl::kDefault) {
    if (!n.is_dir()) return Status::Error(EACCES, "a default ACL on a non-directory");
    ASSIGN_OR_RETURN(acl::Acl a, acl::Acl::Parse(r.value));
    RETURN_IF_ERROR(c.t.PutXattr(r.ino, r.name, a.Serialize()));
    n.attr.xflags |= wire::kHasDefaultAcl;
  } else {
    RETURN_IF_ERROR(c.t.PutXattr(r.ino, r.name, r.value));
  }
  n.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status RemoveXattr(Ctx& c) {
  RETURN_IF_ERROR(CheckXattrName(c.req.name));
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(c.t.DelXattr(c.req.ino, c.req.name));
  KnowXflags(c, n);
  if (c.req.name == acl::kAccess) n.attr.xflags &= ~wire::kHasAccessAcl;
  if (c.req.name == acl::kDefault) n.attr.xflags &= ~wire::kHasDefaultAcl;
  n.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = n.attr;
  return Status::OK();
}

}  // namespace ringfs::meta::ops
