// The gossip wire format. Every message is one cereal-encoded Message that
// starts with the protocol version; each kind has a size cap, every count is
// checked against the bytes left (common/codec.h) and every record is
// validated. Decode never throws: anything malformed is an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "gossip/member.h"

namespace ringfs::gossip {

constexpr uint16_t kGossipVersion = 1;
// Heartbeat + digest window + piggybacked changes: ~1,700 full records.
constexpr size_t kMaxGossipBytes = 64 << 10;
// Full state (anti-entropy): ~4,800 members of ~110 bytes; bigger clusters
// send it in pages (each page is a complete message).
constexpr size_t kMaxFullStateBytes = 512 << 10;
// A subscriber's announcement, carried in its subscription (see DESIGN.md).
constexpr size_t kMaxAnnounceBytes = 4 << 10;
// The largest message any agent accepts (the SUB socket's ZMQ_MAXMSGSIZE).
constexpr size_t kMaxMessageBytes = kMaxFullStateBytes;

// Compact per-member state for heartbeats and digests: everything but the
// static fields, which `static_hash` stands for. 37 bytes on the wire.
struct Entry {
  uint32_t id = 0;
  uint64_t incarnation = 0;
  uint64_t heartbeat = 0;
  uint8_t status = 0;
  uint32_t weight = 0;
  uint64_t map_epoch = 0;
  uint32_t static_hash = 0;

  template <class A>
  void serialize(A& ar) {
    ar(id, incarnation, heartbeat, status, weight, map_epoch, static_hash);
  }
};

Entry ToEntry(const Member& m);
// The record `e` describes, given the receiver's record `known` of the same
// member with the same static hash.
Member FromEntry(const Entry& e, const Member& known);

enum class Kind : uint8_t {
  kGossip = 1,     // entries: sender's heartbeat, then a digest window; members: changes
  kFullState = 2,  // members: every member the sender knows (or one page of them)
  kAnnounce = 3,   // members: the subscriber itself (none for an observer)
};

struct Message {
  uint16_t version = kGossipVersion;
  Kind kind = Kind::kGossip;
  uint32_t sender = 0;     // the sender's member id (0: an observer)
  uint64_t seq = 0;        // announce: changes each time, so it is sent again
  bool want_full = false;  // announce: "publish your full state soon"
  std::vector<Entry> entries;
  std::vector<Member> members;

  template <class A>
  void save(A& ar) const {
    const uint8_t k = static_cast<uint8_t>(kind), w = want_full;
    ar(version, k, sender, seq, w, entries, members);
  }
  template <class A>
  void load(A& ar) {
    uint8_t k = 0, w = 0;
    ar(version, k, sender, seq, w, entries, members);
    kind = static_cast<Kind>(k);
    want_full = w != 0;
  }
};

size_t MaxBytes(Kind kind);
std::string Encode(const Message& msg);
// EMSGSIZE over the kind's cap, EPROTONOSUPPORT for another version, EPROTO
// for anything else malformed.
Result<Message> Decode(std::string_view bytes);

// Approximate encoded size of a record, for filling a message to a budget.
size_t EncodedSize(const Member& m);

}  // namespace ringfs::gossip
