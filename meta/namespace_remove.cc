// Operations that drop a name or an inode: unlink, rmdir, reclaim.
#include <sys/stat.h>

#include "meta/namespace_ops.h"

namespace ringfs::meta::ops {

namespace {

struct Victim {
  Inode dir;
  Dirent entry;
  Inode node;
};

Result<Victim> FindVictim(Ctx& c) {
  RETURN_IF_ERROR(CheckName(c.req.name));
  Victim v;
  ASSIGN_OR_RETURN(v.dir, c.t.GetDir(c.req.parent));
  ASSIGN_OR_RETURN(v.entry, c.t.GetEntry(c.req.parent, c.req.name));
  ASSIGN_OR_RETURN(v.node, c.t.GetInode(v.entry.ino));
  return v;
}

}  // namespace

Status Unlink(Ctx& c) {
  ASSIGN_OR_RETURN(Victim v, FindVictim(c));
  if (v.node.is_dir()) return Status::Error(EISDIR, "unlink of a directory");
  RETURN_IF_ERROR(c.t.RemoveEntry(v.dir.attr.ino, c.req.name, v.entry));
  RETURN_IF_ERROR(StoreChangedDir(c, v.dir));
  RETURN_IF_ERROR(c.t.DropLink(v.node, c.now));
  c.rep->attr = v.node.attr;
  return Status::OK();
}

Status Rmdir(Ctx& c) {
  ASSIGN_OR_RETURN(Victim v, FindVictim(c));
  if (!v.node.is_dir()) return Status::Error(ENOTDIR, "rmdir of a non-directory");
  ASSIGN_OR_RETURN(bool empty, c.t.IsEmptyDir(v.node.attr.ino));
  if (!empty) return Status::Error(ENOTEMPTY, "directory not empty");
  RETURN_IF_ERROR(c.t.RemoveEntry(v.dir.attr.ino, c.req.name, v.entry));
  v.dir.attr.nlink--;  // the victim's ".."
  RETURN_IF_ERROR(StoreChangedDir(c, v.dir));
  RETURN_IF_ERROR(c.t.DropLink(v.node, c.now));
  c.rep->attr = v.node.attr;
  return Status::OK();
}

Status Reclaim(Ctx& c) {
  auto n = c.t.GetInode(c.req.ino);
  if (!n.ok()) return n.status().code() == ENOENT ? Status::OK() : n.status();
  if (n->attr.nlink != 0) return Status::OK();  // relinked or never unlinked
  ASSIGN_OR_RETURN(bool orphan, c.t.IsOrphan(c.req.ino));
  if (!orphan) return Status::OK();
  RETURN_IF_ERROR(c.t.DelOrphan(c.req.ino));
  RETURN_IF_ERROR(c.t.Purge(c.req.ino));
  if (S_ISREG(n->attr.mode)) RETURN_IF_ERROR(c.t.AddGc(c.req.ino, c.now));
  c.rep->attr = n->attr;
  return Status::OK();
}

}  // namespace ringfs::meta::ops
