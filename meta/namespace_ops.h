// The namespace operations, one function each, written against StoreTxn.
// Internal to meta/: Namespace dispatches to them inside its transactions.
#pragma once

#include <string_view>

#include "common/status.h"
#include "common/wire.h"
#include "meta/namespace_txn.h"

namespace ringfs::meta::ops {

struct Ctx {
  StoreTxn& t;
  const wire::MetaRequest& req;
  wire::MetaReply* rep;
  wire::Timespec now;
  uint32_t replicas = wire::kDefaultReplicas;  // copies each block should have
};

// EINVAL for "", ".", ".." or a name with '/'; ENAMETOOLONG past 255 bytes.
Status CheckName(std::string_view name);
// ERANGE for an empty xattr name or one past XATTR_NAME_MAX (255).
Status CheckXattrName(std::string_view name);
// Stores a directory whose entries changed: mtime = ctime = now, and its new
// attributes go back in the reply so the client need not ask again.
Status StoreChangedDir(Ctx& c, Inode& dir);
// An inode stored before its xattr flags were kept (wire::kXflagsUnknown)
// has them found now.
void KnowXflags(Ctx& c, Inode& n);

// namespace_read.cc
Status Lookup(Ctx& c);
Status GetAttr(Ctx& c);
Status GetBlocks(Ctx& c);
Status Readlink(Ctx& c);
Status Readdir(Ctx& c);
Status Statfs(Ctx& c);
Status GetXattr(Ctx& c);
Status ListXattr(Ctx& c);

// namespace_create.cc
Status Mkdir(Ctx& c);
Status Mknod(Ctx& c);
Status Symlink(Ctx& c);
Status Link(Ctx& c);
// A new inode named `parent`/`name`: `mode` is its type and the
// permissions asked for, before `umask` (which a default ACL of the
// parent replaces: the new inode inherits it).
Status CreateNodeAt(Ctx& c, uint64_t parent, std::string_view name, uint32_t mode, uint32_t umask, uint32_t rdev,
                    Inode* out);

// namespace_remove.cc
Status Unlink(Ctx& c);
Status Rmdir(Ctx& c);
Status Reclaim(Ctx& c);

// namespace_rename.cc
Status Rename(Ctx& c);

// namespace_attr.cc
Status SetAttr(Ctx& c);
Status TouchAtimes(Ctx& c);
Status CommitWrite(Ctx& c);
Status ReportBadCopy(Ctx& c);
Status SetXattr(Ctx& c);
Status RemoveXattr(Ctx& c);

}  // namespace ringfs::meta::ops
