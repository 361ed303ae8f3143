// rename(2) / renameat2(2): one atomic transaction whatever it replaces.
#include <linux/fs.h>
#include <sys/stat.h>

#include "meta/namespace_ops.h"
#include "meta/schema.h"

namespace ringfs::meta::ops {

namespace {

constexpr int kMaxDepth = 1 << 20;  // bounds the walk on a corrupt ".." chain

// True when `dir` is `top` or lies below it.
Result<bool> IsWithin(StoreTxn& t, uint64_t dir, uint64_t top) {
  uint64_t cur = dir;
  for (int depth = 0; depth < kMaxDepth; depth++) {
    if (cur == top) return true;
    if (cur == schema::kRootIno) return false;
    ASSIGN_OR_RETURN(Inode n, t.GetInode(cur));
    cur = n.parent;
  }
  return Status::Error(ELOOP, "directory chain too deep");
}

// A directory may not move below itself.
Status CheckNotIntoItself(StoreTxn& t, const Inode& moved, uint64_t dest_dir) {
  if (!moved.is_dir()) return Status::OK();
  ASSIGN_OR_RETURN(bool inside, IsWithin(t, dest_dir, moved.attr.ino));
  if (inside) return Status::Error(EINVAL, "directory moved into its own subtree");
  return Status::OK();
}

struct Sides {
  Inode pdir;          // source directory
  Inode ndir_storage;  // destination directory when it is another one
  Inode* ndir = nullptr;
  Dirent se;
  Inode src;
  bool same_dir() const { return ndir == &pdir; }
};

// The moved directory's ".." goes from `from` to `to`.
void Reparent(Inode& moved, Inode& from, Inode& to) {
  if (!moved.is_dir() || &from == &to) return;
  from.attr.nlink--;
  to.attr.nlink++;
  moved.parent = to.attr.ino;
}

Status StoreDirs(Ctx& c, Sides& s) {
  RETURN_IF_ERROR(StoreChangedDir(c, s.pdir));
  return s.same_dir() ? Status::OK() : StoreChangedDir(c, *s.ndir);
}

Status Exchange(Ctx& c, Sides& s, const Dirent& te) {
  ASSIGN_OR_RETURN(Inode tgt, c.t.GetInode(te.ino));
  RETURN_IF_ERROR(CheckNotIntoItself(c.t, s.src, s.ndir->attr.ino));
  RETURN_IF_ERROR(CheckNotIntoItself(c.t, tgt, s.pdir.attr.ino));
  RETURN_IF_ERROR(
      c.t.RetargetEntry(s.pdir.attr.ino, c.req.name, s.se, tgt.attr.ino, tgt.attr.mode & S_IFMT));
  RETURN_IF_ERROR(c.t.RetargetEntry(s.ndir->attr.ino, c.req.newname, te, s.src.attr.ino,
                                    s.src.attr.mode & S_IFMT));
  Reparent(s.src, s.pdir, *s.ndir);
  Reparent(tgt, *s.ndir, s.pdir);
  s.src.attr.ctime = tgt.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(s.src));
  RETURN_IF_ERROR(c.t.PutInode(tgt));
  // Both inodes changed (ctime): the moved one is `moved`, the other is
  // reported like a rename's target, so events name it (it keeps its links).
  c.rep->attr = tgt.attr;
  return StoreDirs(c, s);
}

// Removes the entry the rename replaces, after POSIX's type checks.
Status Replace(Ctx& c, Sides& s, const Dirent& te) {
  ASSIGN_OR_RETURN(Inode tgt, c.t.GetInode(te.ino));
  if (s.src.is_dir() && !tgt.is_dir()) return Status::Error(ENOTDIR, "dir over non-dir");
  if (!s.src.is_dir() && tgt.is_dir()) return Status::Error(EISDIR, "non-dir over dir");
  if (tgt.is_dir()) {
    ASSIGN_OR_RETURN(bool empty, c.t.IsEmptyDir(tgt.attr.ino));
    if (!empty) return Status::Error(ENOTEMPTY, "target directory not empty");
    s.ndir->attr.nlink--;  // the replaced directory's ".."
  }
  RETURN_IF_ERROR(c.t.RemoveEntry(s.ndir->attr.ino, c.req.newname, te));
  RETURN_IF_ERROR(c.t.DropLink(tgt, c.now));
  c.rep->attr = tgt.attr;
  return Status::OK();
}

}  // namespace

Status Rename(Ctx& c) {
  const uint32_t flags = c.req.flags;
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) != 0 ||
      (flags & RENAME_EXCHANGE && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT))) {
    return Status::Error(EINVAL, "unsupported rename flags");
  }
  RETURN_IF_ERROR(CheckName(c.req.name));
  RETURN_IF_ERROR(CheckName(c.req.newname));
  Sides s;
  ASSIGN_OR_RETURN(s.pdir, c.t.GetDir(c.req.parent));
  s.ndir = &s.pdir;
  if (c.req.newparent != c.req.parent) {
    ASSIGN_OR_RETURN(s.ndir_storage, c.t.GetDir(c.req.newparent));
    s.ndir = &s.ndir_storage;
  }
  ASSIGN_OR_RETURN(s.se, c.t.GetEntry(c.req.parent, c.req.name));
  ASSIGN_OR_RETURN(s.src, c.t.GetInode(s.se.ino));
  auto te = c.t.GetEntry(c.req.newparent, c.req.newname);
  if (!te.ok() && te.status().code() != ENOENT) return te.status();
  c.rep->attr = wire::Attr();  // ino 0: nothing replaced
  c.rep->moved = s.src.attr.ino;

  if (te.ok() && (flags & RENAME_NOREPLACE)) return Status::Error(EEXIST, "target exists");
  if (te.ok() && te->ino == s.se.ino) return Status::OK();  // same inode: a no-op
  if (flags & RENAME_EXCHANGE) {
    if (!te.ok()) return Status::Error(ENOENT, "exchange target missing");
    return Exchange(c, s, *te);
  }
  RETURN_IF_ERROR(CheckNotIntoItself(c.t, s.src, c.req.newparent));
  if (te.ok()) RETURN_IF_ERROR(Replace(c, s, *te));

  if (s.same_dir()) {
    RETURN_IF_ERROR(c.t.MoveEntry(c.req.parent, c.req.name, s.se, c.req.newname));
  } else {
    RETURN_IF_ERROR(c.t.RemoveEntry(c.req.parent, c.req.name, s.se));
    RETURN_IF_ERROR(c.t.AddEntry(*s.ndir, c.req.newname, s.src.attr.ino, s.src.attr.mode & S_IFMT));
  }
  Reparent(s.src, s.pdir, *s.ndir);
  s.src.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(s.src));
  RETURN_IF_ERROR(StoreDirs(c, s));
  if (flags & RENAME_WHITEOUT) {
    // overlayfs: the old name now says "deleted here" to the layers below,
    // a 0/0 character device in place of the entry that moved.
    Inode whiteout;
    RETURN_IF_ERROR(CreateNodeAt(c, c.req.parent, c.req.name, S_IFCHR, 0, 0, &whiteout));
  }
  return Status::OK();
}

}  // namespace ringfs::meta::ops
