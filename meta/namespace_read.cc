// Read-only namespace operations.
#include <sys/stat.h>

#include <algorithm>

#include "meta/namespace_ops.h"
#include "meta/schema.h"

namespace ringfs::meta::ops {

namespace {
constexpr uint32_t kDefaultReaddirEntries = 1024;
constexpr uint32_t kMaxReaddirEntries = 8192;
constexpr uint32_t kMaxReaddirPlusEntries = 2048;
// Keeps a readdir reply far below the RPC size caps whatever the names are.
constexpr size_t kMaxReaddirBytes = 512 << 10;
// Version runs per reply (32 bytes each): a file written in one go is one
// run; a fragmented huge one is fetched in parts (kGetBlocks).
constexpr size_t kMaxRuns = 16384;
}  // namespace

Status Lookup(Ctx& c) {
  // NFS re-export: a file handle names an inode the kernel may have
  // forgotten; it finds it again by "." of the inode itself (any type) and
  // a directory's parent by "..".
  if (c.req.name == ".") {
    ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.parent));
    // Removed (kept only while open somewhere): a handle to it is stale.
    if (n.attr.nlink == 0) return Status::Error(ENOENT, "inode removed");
    c.rep->attr = n.attr;
    return Status::OK();
  }
  if (c.req.name == "..") {
    ASSIGN_OR_RETURN(Inode dir, c.t.GetDir(c.req.parent));
    ASSIGN_OR_RETURN(Inode up, c.t.GetInode(dir.attr.ino == schema::kRootIno ? dir.attr.ino : dir.parent));
    c.rep->attr = up.attr;
    return Status::OK();
  }
  RETURN_IF_ERROR(CheckName(c.req.name));
  ASSIGN_OR_RETURN(Inode dir, c.t.GetDir(c.req.parent));
  ASSIGN_OR_RETURN(Dirent e, c.t.GetEntry(dir.attr.ino, c.req.name));
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(e.ino));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status GetAttr(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  c.rep->attr = n.attr;
  // An open learns which version of each block is current.
  if (S_ISREG(n.attr.mode) && c.req.opens != 0) {
    RETURN_IF_ERROR(c.t.BlockRuns(n.attr.ino, 0, kMaxRuns, &c.rep->runs, &c.rep->runs_end));
    // The kernel asks for this before the first write of every open.
    auto caps = c.t.GetXattr(n.attr.ino, "security.capability");
    if (!caps.ok() && caps.status().code() != ENODATA) return caps.status();
    c.rep->no_caps = !caps.ok();
  }
  return Status::OK();
}

Status GetBlocks(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  if (!S_ISREG(n.attr.mode)) return Status::Error(EINVAL, "not a regular file");
  c.rep->attr = n.attr;
  size_t max = c.req.max_entries == 0 ? kMaxRuns : std::min<size_t>(c.req.max_entries, kMaxRuns);
  // Who holds the first block asked for: a reader that finds no placed
  // replica at its version (the block is moving) reads from one of them.
  auto first = c.t.GetBlock(n.attr.ino, c.req.cookie);
  if (first.ok()) c.rep->holders = first->holders;
  return c.t.BlockRuns(n.attr.ino, c.req.cookie, max, &c.rep->runs, &c.rep->runs_end);
}

Status Readlink(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  if (!S_ISLNK(n.attr.mode)) return Status::Error(EINVAL, "not a symlink");
  ASSIGN_OR_RETURN(c.rep->value, c.t.GetSymlink(n.attr.ino));
  c.rep->attr = n.attr;
  return Status::OK();
}

Status Readdir(Ctx& c) {
  ASSIGN_OR_RETURN(Inode dir, c.t.GetDir(c.req.ino));
  uint32_t max = c.req.max_entries == 0 ? kDefaultReaddirEntries : c.req.max_entries;
  if (max > kMaxReaddirEntries) max = kMaxReaddirEntries;
  // Attributes are ~100 bytes each: the reply stays within kMaxHeaderBytes.
  if (c.req.flags & wire::kReaddirPlus) max = std::min(max, kMaxReaddirPlusEntries);
  c.rep->attr = dir.attr;
  RETURN_IF_ERROR(c.t.ListEntries(dir.attr.ino, c.req.cookie, max, kMaxReaddirBytes, &c.rep->entries,
                                  &c.rep->eof));
  if (c.req.flags & wire::kReaddirPlus) {  // what ls -l, find and rm -rf look up next
    c.rep->entry_attrs.reserve(c.rep->entries.size());
    for (const wire::DirEntry& e : c.rep->entries) {
      ASSIGN_OR_RETURN(Inode n, c.t.GetInode(e.ino));
      c.rep->entry_attrs.push_back(n.attr);
    }
  }
  return Status::OK();
}

Status Statfs(Ctx& c) {
  ASSIGN_OR_RETURN(size_t n, c.t.InodeCount());
  c.rep->statfs.files = n;
  return Status::OK();
}

Status GetXattr(Ctx& c) {
  RETURN_IF_ERROR(CheckXattrName(c.req.name));
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  ASSIGN_OR_RETURN(c.rep->value, c.t.GetXattr(n.attr.ino, c.req.name));
  return Status::OK();
}

Status ListXattr(Ctx& c) {
  ASSIGN_OR_RETURN(Inode n, c.t.GetInode(c.req.ino));
  ASSIGN_OR_RETURN(std::vector<std::string> names, c.t.XattrNames(n.attr.ino));
  for (const auto& name : names) {
    c.rep->value += name;
    c.rep->value.push_back('\0');  // listxattr(2) layout: each name NUL-terminated
  }
  return Status::OK();
}

}  // namespace ringfs::meta::ops
