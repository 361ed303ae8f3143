// Operations that change an inode in place: setattr, commit-write, xattrs.
#include <sys/stat.h>
#include <sys/xattr.h>

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

// Records the replicas the client reports as having missed these writes (or
// this truncation): they hold old bytes and are not read until repaired.
Status AddStale(Ctx& c, uint64_t mark) {
  constexpr size_t kMaxStale = 1 << 16;
  if (c.req.stale.size() > kMaxStale) return Status::Error(E2BIG, "too many stale replicas");
  for (const auto& r : c.req.stale) RETURN_IF_ERROR(c.t.AddStale(c.req.ino, r, mark));
  return Status::OK();
}

}  // namespace

Status SetAttr(Ctx& c) {
  using namespace wire;  // SetAttrMask bits
  const wire::MetaRequest& r = c.req;
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(r.ino));
  wire::Attr& a = n.attr;
  if ((r.mask & kSetAtime && !ValidTime(r.atime)) || (r.mask & kSetMtime && !ValidTime(r.mtime))) {
    return Status::Error(EINVAL, "bad timestamp");
  }
  if (r.mask & kSetSize) RETURN_IF_ERROR(CheckRegular(n));

  if (r.mask & kSetMode) a.mode = (a.mode & S_IFMT) | (r.mode & 07777);
  if (r.mask & kSetUid) a.uid = r.uid;
  if (r.mask & kSetGid) a.gid = r.gid;
  if (r.mask & kSetSize) {
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
  RETURN_IF_ERROR(AddStale(c, a.data_version));  // nodes a truncation did not reach
  c.rep->attr = a;
  return Status::OK();
}

Status CommitWrite(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(CheckRegular(n));
  if (!ValidTime(c.req.mtime)) return Status::Error(EINVAL, "bad timestamp");
  wire::Attr& a = n.attr;
  // The client reports where its writes ended; truncation goes via SetAttr.
  if (c.req.size > a.size) a.size = c.req.size;
  const bool given = c.req.mtime.sec != 0 || c.req.mtime.nsec != 0;
  a.mtime = a.ctime = given ? c.req.mtime : c.now;
  a.data_version++;
  RETURN_IF_ERROR(c.t.PutInode(n));
  RETURN_IF_ERROR(AddStale(c, a.data_version));
  c.rep->attr = a;
  return Status::OK();
}

Status ReportStale(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(CheckRegular(n));
  RETURN_IF_ERROR(AddStale(c, n.attr.data_version));
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
  RETURN_IF_ERROR(c.t.PutXattr(r.ino, r.name, r.value));
  n.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status RemoveXattr(Ctx& c) {
  RETURN_IF_ERROR(CheckXattrName(c.req.name));
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  RETURN_IF_ERROR(c.t.DelXattr(c.req.ino, c.req.name));
  n.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = n.attr;
  return Status::OK();
}

}  // namespace ringfs::meta::ops
