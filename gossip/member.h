// A member's gossiped state and the rules for merging two views of it. Pure
// data and pure functions: no clock, no sockets (unit-tested on their own).
#pragma once

#include <cstdint>
#include <string>

namespace ringfs::gossip {

// Incarnations start at the wall-clock milliseconds of the process start and
// only grow by one per self-change, so they stay far below this; a record
// claiming more is hostile or corrupt (and refuting it would overflow).
constexpr uint64_t kMaxIncarnation = 1ull << 62;
constexpr size_t kMaxAddrLen = 256;
constexpr size_t kMaxRoleLen = 32;
constexpr size_t kMaxZoneLen = 64;

struct Member {
  enum Status : uint8_t { kAlive = 0, kSuspect = 1, kDown = 2, kLeft = 3 };

  uint32_t id = 0;
  std::string gossip_addr;  // the member's PUB endpoint
  std::string rpc_addr;     // its service endpoint
  std::string role;         // "meta" | "blockd"
  std::string zone;
  uint32_t weight = 100;
  uint64_t incarnation = 0;  // raised only by the member itself
  uint64_t heartbeat = 0;    // raised by the member every heartbeat period
  Status status = kAlive;
  uint64_t map_epoch = 0;  // the cluster-map epoch this member has

  bool usable() const { return status == kAlive || status == kSuspect; }

  template <class A>
  void save(A& ar) const {
    const uint8_t st = status;
    ar(id, gossip_addr, rpc_addr, role, zone, weight, incarnation, heartbeat, st, map_epoch);
  }
  template <class A>
  void load(A& ar) {
    uint8_t st = 0;
    ar(id, gossip_addr, rpc_addr, role, zone, weight, incarnation, heartbeat, st, map_epoch);
    status = static_cast<Status>(st);  // range checked by Valid()
  }
};

const char* StatusName(Member::Status s);

// Checks a decoded record: status in range, strings within bounds,
// incarnation below kMaxIncarnation.
bool Valid(const Member& m);

// Hash of the fields a compact digest entry does not carry (addresses, role,
// zone): a receiver applies an entry only to a record with the same hash.
uint32_t StaticHash(const Member& m);

// Which of two views of one member wins: higher incarnation, then at equal
// incarnation Left > Down > Suspect > Alive. Heartbeats do not order records.
bool Supersedes(const Member& incoming, const Member& current);

enum class MergeResult {
  kIgnored,    // nothing newer
  kHeartbeat,  // same incarnation, only the heartbeat advanced (liveness)
  kReplaced,   // the incoming record won: a state change
};

// Merges `incoming` into `current` (same id). Heartbeats are monotonic within
// an incarnation: a higher one refreshes liveness but never revives a Down.
MergeResult Merge(Member& current, const Member& incoming);

}  // namespace ringfs::gossip
