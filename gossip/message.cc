#include "gossip/message.h"

#include "common/codec.h"

namespace ringfs::gossip {

namespace {

constexpr size_t kMaxEntries = kMaxGossipBytes / sizeof(uint32_t);
constexpr size_t kMaxMembers = kMaxFullStateBytes / 32;

bool ValidKind(Kind k) {
  return k == Kind::kGossip || k == Kind::kFullState || k == Kind::kAnnounce;
}

}  // namespace

Entry ToEntry(const Member& m) {
  return Entry{m.id,     m.incarnation, m.heartbeat,  static_cast<uint8_t>(m.status),
               m.weight, m.map_epoch,   StaticHash(m)};
}

Member FromEntry(const Entry& e, const Member& known) {
  Member m = known;
  m.incarnation = e.incarnation;
  m.heartbeat = e.heartbeat;
  m.status = static_cast<Member::Status>(e.status);
  m.weight = e.weight;
  m.map_epoch = e.map_epoch;
  return m;
}

size_t MaxBytes(Kind kind) {
  switch (kind) {
    case Kind::kGossip:
      return kMaxGossipBytes;
    case Kind::kFullState:
      return kMaxFullStateBytes;
    case Kind::kAnnounce:
      return kMaxAnnounceBytes;
  }
  return 0;
}

std::string Encode(const Message& msg) { return codec::Encode(msg); }

Result<Message> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Status::Error(EMSGSIZE, "gossip message too large");
  uint16_t version = 0;
  RETURN_IF_ERROR(codec::Decode(bytes, version));
  if (version != kGossipVersion)
    return Status::Error(EPROTONOSUPPORT, "gossip version " + std::to_string(version));
  Message msg;
  RETURN_IF_ERROR(codec::Decode(bytes, msg));
  if (!ValidKind(msg.kind)) return Status::Error(EPROTO, "unknown gossip message kind");
  if (bytes.size() > MaxBytes(msg.kind)) return Status::Error(EMSGSIZE, "gossip message too large");
  if (msg.entries.size() > kMaxEntries || msg.members.size() > kMaxMembers)
    return Status::Error(EPROTO, "too many gossip records");
  if (msg.kind == Kind::kAnnounce && msg.members.size() > 1)
    return Status::Error(EPROTO, "announce carries more than one member");
  for (const Entry& e : msg.entries) {
    if (e.status > Member::kLeft || e.incarnation >= kMaxIncarnation)
      return Status::Error(EPROTO, "invalid gossip entry");
  }
  for (const Member& m : msg.members) {
    if (!Valid(m)) return Status::Error(EPROTO, "invalid gossip member");
  }
  return msg;
}

size_t EncodedSize(const Member& m) {
  return 4 * 4 + m.gossip_addr.size() + m.rpc_addr.size() + m.role.size() + m.zone.size() + 4 + 8 +
         8 + 1 + 8 + 4;
}

}  // namespace ringfs::gossip
