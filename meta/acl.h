// POSIX ACLs in their xattr form (system.posix_acl_access/_default, as the
// kernel passes them: a little-endian u32 version 2, then u16 tag, u16
// perm, u32 id per entry). The kernel enforces them (FUSE_CAP_POSIX_ACL);
// the metadata service keeps them in step with the mode, as a local
// filesystem does: an access ACL sets the mode's bits, chmod sets the ACL's
// owner, mask (or group) and other entries, and a new file or directory
// inherits its parent's default ACL (umask unused then).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ringfs::meta::acl {

inline constexpr std::string_view kAccess = "system.posix_acl_access";
inline constexpr std::string_view kDefault = "system.posix_acl_default";

enum Tag : uint16_t { kUserObj = 1, kUser = 2, kGroupObj = 4, kGroup = 8, kMask = 0x10, kOther = 0x20 };

struct Entry {
  uint16_t tag = 0, perm = 0;
  uint32_t id = 0;
};

struct Acl {
  std::vector<Entry> entries;
  // Parses and checks it as the kernel would (one owner, group and other
  // entry, a mask when there are named entries, permissions within rwx).
  static Result<Acl> Parse(std::string_view xattr);
  std::string Serialize() const;
  // Only the owner, group and other entries: the mode says it all.
  bool EquivalentToMode() const;
  // The permission bits the ACL implies (owner, mask or group, other).
  uint32_t ModeBits() const;
  // chmod: the owner, mask (or group) and other entries take `mode`'s bits.
  void Chmod(uint32_t mode);
  // A new inode's ACL from its parent's default one and the mode asked
  // for: each class of entry limited by the mode's bits, and the mode's
  // bits by the entries (posix_acl_create's masking). Returns the mode.
  uint32_t CreateMasq(uint32_t mode);
};

}  // namespace ringfs::meta::acl
