#include "meta/acl.h"

#include <cerrno>
#include <cstring>

namespace ringfs::meta::acl {

namespace {

constexpr uint32_t kVersion = 2;
constexpr size_t kHeader = 4, kEntry = 8;
constexpr size_t kMaxEntries = 8192;

uint16_t Load16(const char* p) { return static_cast<uint16_t>(uint8_t(p[0]) | uint8_t(p[1]) << 8); }
uint32_t Load32(const char* p) { return Load16(p) | uint32_t{Load16(p + 2)} << 16; }
void Put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void Put32(std::string& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v & 0xffff));
  Put16(out, static_cast<uint16_t>(v >> 16));
}

}  // namespace

Result<Acl> Acl::Parse(std::string_view x) {
  if (x.size() < kHeader || (x.size() - kHeader) % kEntry != 0) return Status::Error(EINVAL, "malformed ACL");
  if (Load32(x.data()) != kVersion) return Status::Error(EOPNOTSUPP, "ACL version not 2");
  const size_t n = (x.size() - kHeader) / kEntry;
  if (n > kMaxEntries) return Status::Error(E2BIG, "ACL too long");
  Acl a;
  int user_obj = 0, group_obj = 0, other = 0, mask = 0, named = 0;
  uint16_t last_tag = 0;
  for (size_t i = 0; i < n; i++) {
    const char* p = x.data() + kHeader + i * kEntry;
    Entry e{Load16(p), Load16(p + 2), Load32(p + 4)};
    if (e.perm & ~7u) return Status::Error(EINVAL, "ACL permission beyond rwx");
    if (e.tag < last_tag) return Status::Error(EINVAL, "ACL entries out of order");
    last_tag = e.tag;
    switch (e.tag) {
      case kUserObj: user_obj++; break;
      case kGroupObj: group_obj++; break;
      case kOther: other++; break;
      case kMask: mask++; break;
      case kUser:
      case kGroup: named++; break;
      default: return Status::Error(EINVAL, "unknown ACL tag");
    }
    if (e.tag != kUser && e.tag != kGroup) e.id = UINT32_MAX;  // undefined for the rest
    a.entries.push_back(e);
  }
  if (user_obj != 1 || group_obj != 1 || other != 1 || mask > 1 || (named > 0 && mask == 0))
    return Status::Error(EINVAL, "ACL lacks a required entry");
  return a;
}

std::string Acl::Serialize() const {
  std::string out;
  out.reserve(kHeader + entries.size() * kEntry);
  Put32(out, kVersion);
  for (const Entry& e : entries) {
    Put16(out, e.tag);
    Put16(out, e.perm);
    Put32(out, e.id);
  }
  return out;
}

bool Acl::EquivalentToMode() const {
  for (const Entry& e : entries)
    if (e.tag != kUserObj && e.tag != kGroupObj && e.tag != kOther) return false;
  return true;
}

uint32_t Acl::ModeBits() const {
  uint32_t owner = 0, group_obj = 0, other = 0;
  int mask = -1;
  for (const Entry& e : entries) {
    if (e.tag == kUserObj) owner = e.perm;
    if (e.tag == kGroupObj) group_obj = e.perm;
    if (e.tag == kOther) other = e.perm;
    if (e.tag == kMask) mask = e.perm;
  }
  return owner << 6 | (mask >= 0 ? static_cast<uint32_t>(mask) : group_obj) << 3 | other;
}

void Acl::Chmod(uint32_t mode) {
  bool have_mask = false;
  for (const Entry& e : entries) have_mask |= e.tag == kMask;
  for (Entry& e : entries) {
    if (e.tag == kUserObj) e.perm = (mode >> 6) & 7;
    if (e.tag == kOther) e.perm = mode & 7;
    if (e.tag == kMask || (e.tag == kGroupObj && !have_mask)) e.perm = (mode >> 3) & 7;
  }
}

uint32_t Acl::CreateMasq(uint32_t mode) {
  uint32_t out = mode & ~0777u;
  Entry* group_obj = nullptr;
  Entry* mask = nullptr;
  for (Entry& e : entries) {
    switch (e.tag) {
      case kUserObj:
        e.perm &= (mode >> 6) & 7;
        out |= uint32_t{e.perm} << 6;
        break;
      case kOther:
        e.perm &= mode & 7;
        out |= e.perm;
        break;
      case kGroupObj: group_obj = &e; break;
      case kMask: mask = &e; break;
      default: break;
    }
  }
  // With a mask, it is what the group bits limit; without, the group entry.
  Entry* g = mask ? mask : group_obj;
  if (g) {
    g->perm &= (mode >> 3) & 7;
    out |= uint32_t{g->perm} << 3;
  }
  return out;
}

}  // namespace ringfs::meta::acl
