// Extended attributes, stored by the metadata service.
#include <cstring>

#include "fuse/filesystem.h"

namespace ringfs::fuse {

namespace {

using wire::Op;

constexpr const char* kCaps = "security.capability";
// On the root: this mount's request counters (common/op_stats.h); set to
// "reset" to zero them.
constexpr const char* kStats = "ringfs.stats";

void ReplyValue(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, value.size());
  if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, value.data(), value.size());
}

void SetCapsKnownAbsent(fuse_req_t req, fuse_ino_t ino, bool absent) {
  if (auto inode = Fs(req)->Find(ino)) {
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->no_caps = absent && inode->open_count > 0;
  }
}

void DoSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  RINGFS_FUSE_OP(Setxattr);
  if (ino == FUSE_ROOT_ID && std::strcmp(name, kStats) == 0) {
    stats::ResetAll();
    return (void)fuse_reply_err(req, 0);
  }
  wire::MetaRequest m;
  m.ino = ino;
  m.name = name;
  m.value.assign(value, size);
  m.flags = static_cast<uint32_t>(flags);
  SetCapsKnownAbsent(req, ino, false);
  ReplyStatus(req, Fs(req)->MetaCall(Op::kSetXattr, m, nullptr, req));
}

void DoGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  RINGFS_FUSE_OP(Getxattr);
  if (ino == FUSE_ROOT_ID && std::strcmp(name, kStats) == 0) return ReplyValue(req, stats::DumpAll(), size);
  const bool caps = std::strcmp(name, kCaps) == 0;
  if (caps) {
    if (auto inode = Fs(req)->Find(ino)) {
      std::lock_guard<std::mutex> lock(inode->mu);
      if (inode->no_caps && inode->open_count > 0) return (void)fuse_reply_err(req, ENODATA);
    }
  }
  // The kernel asks for ACLs at permission checks (FUSE_CAP_POSIX_ACL):
  // the inode's flags say when there is none, without a round trip.
  const bool access = std::strcmp(name, "system.posix_acl_access") == 0;
  if (access || std::strcmp(name, "system.posix_acl_default") == 0) {
    if (auto inode = Fs(req)->Find(ino)) {
      std::lock_guard<std::mutex> lock(inode->mu);
      const uint32_t has = access ? wire::kHasAccessAcl : wire::kHasDefaultAcl;
      if (inode->have_attr && inode->acl_known && !(inode->attr.xflags & (has | wire::kXflagsUnknown)))
        return (void)fuse_reply_err(req, ENODATA);
    }
  }
  wire::MetaRequest m;
  m.ino = ino;
  m.name = name;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kGetXattr, m, &r, req);
  if (caps && st.code() == ENODATA) SetCapsKnownAbsent(req, ino, true);
  if (!st.ok()) return ReplyStatus(req, st);
  ReplyValue(req, r.value, size);
}

void DoListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  RINGFS_FUSE_OP(Listxattr);
  wire::MetaRequest m;
  m.ino = ino;
  wire::MetaReply r;
  Status st = Fs(req)->MetaCall(Op::kListXattr, m, &r, req);
  if (!st.ok()) return ReplyStatus(req, st);
  ReplyValue(req, r.value, size);
}

void DoRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  RINGFS_FUSE_OP(Removexattr);
  wire::MetaRequest m;
  m.ino = ino;
  m.name = name;
  SetCapsKnownAbsent(req, ino, false);
  ReplyStatus(req, Fs(req)->MetaCall(Op::kRemoveXattr, m, nullptr, req));
}

}  // namespace

void FillXattrOps(fuse_lowlevel_ops* ops) {
  ops->setxattr = DoSetxattr;
  ops->getxattr = DoGetxattr;
  ops->listxattr = DoListxattr;
  ops->removexattr = DoRemovexattr;
}

}  // namespace ringfs::fuse
