#include "gossip/member.h"

#include <algorithm>

namespace ringfs::gossip {

namespace {

int Rank(Member::Status s) { return static_cast<int>(s); }

// FNV-1a: stable across builds and machines (std::hash is neither).
void Fnv(uint32_t& h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  h = (h ^ 0xff) * 16777619u;  // field separator: ("ab","c") != ("a","bc")
}

}  // namespace

const char* StatusName(Member::Status s) {
  switch (s) {
    case Member::kAlive:
      return "alive";
    case Member::kSuspect:
      return "suspect";
    case Member::kDown:
      return "down";
    case Member::kLeft:
      return "left";
  }
  return "?";
}

bool Valid(const Member& m) {
  return Rank(m.status) <= Rank(Member::kLeft) && m.incarnation < kMaxIncarnation &&
         m.gossip_addr.size() <= kMaxAddrLen && m.rpc_addr.size() <= kMaxAddrLen &&
         m.role.size() <= kMaxRoleLen && m.zone.size() <= kMaxZoneLen;
}

uint32_t StaticHash(const Member& m) {
  uint32_t h = 2166136261u;
  Fnv(h, m.gossip_addr);
  Fnv(h, m.rpc_addr);
  Fnv(h, m.role);
  Fnv(h, m.zone);
  return h;
}

bool Supersedes(const Member& in, const Member& cur) {
  if (in.incarnation != cur.incarnation) return in.incarnation > cur.incarnation;
  return Rank(in.status) > Rank(cur.status);
}

MergeResult Merge(Member& cur, const Member& in) {
  if (Supersedes(in, cur)) {
    const uint64_t hb =
        in.incarnation == cur.incarnation ? std::max(cur.heartbeat, in.heartbeat) : in.heartbeat;
    cur = in;
    cur.heartbeat = hb;
    return MergeResult::kReplaced;
  }
  if (in.incarnation == cur.incarnation && in.heartbeat > cur.heartbeat) {
    cur.heartbeat = in.heartbeat;
    return MergeResult::kHeartbeat;
  }
  return MergeResult::kIgnored;
}

}  // namespace ringfs::gossip
