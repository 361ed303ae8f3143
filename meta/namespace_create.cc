// Operations that add a name: mkdir, mknod (create), symlink, link.
#include <sys/stat.h>

#include <climits>

#include "meta/acl.h"
#include "meta/namespace_ops.h"

namespace ringfs::meta::ops {

namespace {

constexpr uint32_t kMaxLinks = 65000;  // as ext4: a file's nlink ceiling

// Loads the parent directory of a new entry and checks the name is free.
Result<Inode> ParentForNew(StoreTxn& t, uint64_t parent, std::string_view name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Inode dir, t.GetDir(parent));
  auto existing = t.GetEntry(parent, name);
  if (existing.ok()) return Status::Error(EEXIST, "name exists");
  if (existing.status().code() != ENOENT) return existing.status();
  return dir;
}

}  // namespace

// Creates inode of `mode` (type and permission bits, umask already applied)
// under parent/name and links it in.
Status CreateNodeAt(Ctx& c, uint64_t parent, std::string_view name, uint32_t mode, uint32_t umask, uint32_t rdev,
                    Inode* out) {
  ASSIGN_OR_RETURN(Inode dir, ParentForNew(c.t, parent, name));
  ASSIGN_OR_RETURN(uint64_t ino, c.t.AllocIno());
  // The parent's default ACL, if any, decides the permissions instead of
  // the umask, and becomes the new inode's access ACL (and a directory's
  // default ACL too). Symlinks take none.
  std::optional<acl::Acl> access;
  std::string inherited;
  KnowXflags(c, dir);
  if ((dir.attr.xflags & wire::kHasDefaultAcl) && !S_ISLNK(mode)) {
    ASSIGN_OR_RETURN(inherited, c.t.GetXattr(dir.attr.ino, acl::kDefault));
    ASSIGN_OR_RETURN(acl::Acl d, acl::Acl::Parse(inherited));
    mode = d.CreateMasq(mode);
    if (!d.EquivalentToMode()) access = std::move(d);
  } else {
    mode &= ~(umask & 0777);
  }
  Inode n;
  wire::Attr& a = n.attr;
  a.ino = ino;
  a.mode = mode;
  a.nlink = S_ISDIR(mode) ? 2 : 1;
  a.uid = c.req.uid;
  a.gid = c.req.gid;
  a.rdev = rdev;
  a.atime = a.mtime = a.ctime = c.now;
  if (dir.attr.mode & S_ISGID) {  // BSD group semantics of a setgid directory
    a.gid = dir.attr.gid;
    if (S_ISDIR(mode)) a.mode |= S_ISGID;
  }
  if (S_ISDIR(mode)) {
    n.parent = dir.attr.ino;
    dir.attr.nlink++;  // the child's ".."
  }
  if (access) {
    RETURN_IF_ERROR(c.t.PutXattr(ino, acl::kAccess, access->Serialize()));
    a.xflags |= wire::kHasAccessAcl;
  }
  if (S_ISDIR(mode) && !inherited.empty()) {
    RETURN_IF_ERROR(c.t.PutXattr(ino, acl::kDefault, inherited));
    a.xflags |= wire::kHasDefaultAcl;
  }
  RETURN_IF_ERROR(c.t.AddEntry(dir, name, ino, mode & S_IFMT));
  RETURN_IF_ERROR(StoreChangedDir(c, dir));
  RETURN_IF_ERROR(c.t.PutInode(n));
  *out = n;
  return Status::OK();
}

namespace {

Status CreateNode(Ctx& c, uint32_t mode, uint32_t rdev, Inode* out) {
  return CreateNodeAt(c, c.req.parent, c.req.name, mode, c.req.umask, rdev, out);
}

uint32_t Perms(const wire::MetaRequest& req) { return req.mode & 07777; }  // umask: CreateNodeAt

}  // namespace

Status Mkdir(Ctx& c) {
  Inode n;
  RETURN_IF_ERROR(CreateNode(c, S_IFDIR | Perms(c.req), 0, &n));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status Mknod(Ctx& c) {
  uint32_t type = c.req.mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
      type != S_IFBLK) {
    return Status::Error(EINVAL, "mknod of a directory or symlink");
  }
  uint32_t rdev = (type == S_IFCHR || type == S_IFBLK) ? c.req.rdev : 0;
  Inode n;
  RETURN_IF_ERROR(CreateNode(c, type | Perms(c.req), rdev, &n));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status Symlink(Ctx& c) {
  if (c.req.value.empty()) return Status::Error(ENOENT, "empty symlink target");
  if (c.req.value.size() >= PATH_MAX) return Status::Error(ENAMETOOLONG, "symlink target");
  Inode n;
  RETURN_IF_ERROR(CreateNodeAt(c, c.req.parent, c.req.name, S_IFLNK | 0777, /*umask=*/0, 0, &n));
  n.attr.size = c.req.value.size();
  RETURN_IF_ERROR(c.t.PutInode(n));
  RETURN_IF_ERROR(c.t.PutSymlink(n.attr.ino, c.req.value));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status Link(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  if (n.is_dir()) return Status::Error(EPERM, "hard link to a directory");
  if (n.attr.nlink == 0) return Status::Error(ENOENT, "file was unlinked");
  if (n.attr.nlink >= kMaxLinks) return Status::Error(EMLINK, "too many links");
  ASSIGN_OR_RETURN(Inode dir, ParentForNew(c.t, c.req.newparent, c.req.newname));
  RETURN_IF_ERROR(c.t.AddEntry(dir, c.req.newname, n.attr.ino, n.attr.mode & S_IFMT));
  RETURN_IF_ERROR(StoreChangedDir(c, dir));
  n.attr.nlink++;
  n.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(n));
  c.rep->attr = n.attr;
  return Status::OK();
}

}  // namespace ringfs::meta::ops
