// Hostile input: nothing a peer sends may crash an agent; all of it is
// dropped and counted.
#include "gossip/message.h"

#include <gtest/gtest.h>

#include <random>

#include "common/codec.h"
#include "gossip/agent.h"

namespace ringfs::gossip {
namespace {

class NullTransport : public Transport {
 public:
  void Publish(std::string_view) override {}
  void SetSubscriptions(const std::vector<std::string>&) override {}
  void SetAnnounce(std::string) override {}
};

Member Node(uint32_t id) {
  Member m;
  m.id = id;
  m.gossip_addr = "tcp://10.0.0." + std::to_string(id) + ":7100";
  m.rpc_addr = "tcp://10.0.0." + std::to_string(id) + ":7000";
  m.role = "blockd";
  m.zone = "a";
  m.incarnation = 1000 + id;
  return m;
}

Message Sample() {
  Message msg;
  msg.sender = 2;
  msg.entries.push_back(ToEntry(Node(2)));
  msg.entries.push_back(ToEntry(Node(3)));
  msg.members.push_back(Node(3));
  msg.members.push_back(Node(4));
  return msg;
}

struct Fixture {
  NullTransport t;
  int64_t now = 0;
  Agent agent{[] {
                Agent::Options o;
                o.self = Node(1);
                o.rng_seed = 1;
                return o;
              }(),
              &t, [this] { return now; }};
};

TEST(GossipMessage, RoundTrips) {
  auto out = Decode(Encode(Sample()));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->members.size(), 2u);
  EXPECT_EQ(out->members[1].gossip_addr, Node(4).gossip_addr);
  ASSERT_EQ(out->entries.size(), 2u);
  EXPECT_EQ(out->entries[1].static_hash, StaticHash(Node(3)));
}

TEST(GossipMessage, EveryTruncationIsDroppedAndCounted) {
  const std::string bytes = Encode(Sample());
  Fixture f;
  for (size_t n = 0; n < bytes.size(); n++) {
    EXPECT_FALSE(Decode(bytes.substr(0, n)).ok()) << n;
    f.agent.Receive(bytes.substr(0, n));
  }
  EXPECT_EQ(f.agent.malformed(), bytes.size());
  EXPECT_EQ(f.agent.Members().size(), 1u);  // learned nothing
}

TEST(GossipMessage, RandomBytesAndBitFlipsNeverCrash) {
  std::mt19937_64 rng(42);
  Fixture f;
  const std::string good = Encode(Sample());
  for (int i = 0; i < 5000; i++) {
    std::string s;
    if (i % 2) {
      s.resize(rng() % 300);
      for (char& c : s) c = static_cast<char>(rng());
    } else {
      s = good;
      for (int k = 0; k < 3; k++) s[rng() % s.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    f.agent.Receive(s);
  }
  // Some flips land in harmless fields and decode; the rest are counted.
  EXPECT_GT(f.agent.malformed(), 2500u);
  for (const Member& m : f.agent.Members()) EXPECT_TRUE(Valid(m));
}

TEST(GossipMessage, HugeCountsAreRejectedBeforeAllocating) {
  // version, kind, sender, seq, want_full, then an entry count of 2^32-1.
  std::string bytes = codec::Encode(kGossipVersion, uint8_t{1}, uint32_t{2}, uint64_t{0},
                                    uint8_t{0}, uint32_t{0xffffffff});
  EXPECT_EQ(Decode(bytes).status().code(), EPROTO);
  std::string members = codec::Encode(kGossipVersion, uint8_t{2}, uint32_t{2}, uint64_t{0},
                                      uint8_t{0}, uint32_t{0}, uint32_t{0x7fffffff});
  EXPECT_EQ(Decode(members).status().code(), EPROTO);
  // A member whose address claims 4 GiB.
  std::string addr = codec::Encode(kGossipVersion, uint8_t{2}, uint32_t{2}, uint64_t{0}, uint8_t{0},
                                   uint32_t{0}, uint32_t{1}, uint32_t{9}, uint32_t{0xffffffff});
  EXPECT_EQ(Decode(addr).status().code(), EPROTO);
}

TEST(GossipMessage, WrongVersionUnknownKindBadRecordsAreRejected) {
  Message m = Sample();
  m.version = kGossipVersion + 1;
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTONOSUPPORT);
  m = Sample();
  m.kind = static_cast<Kind>(9);
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTO);
  m = Sample();
  m.members[0].status = static_cast<Member::Status>(7);
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTO);
  m = Sample();
  m.entries[0].status = 200;
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTO);
  m = Sample();
  m.members[0].incarnation = ~0ull;
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTO);
  m = Sample();
  m.kind = Kind::kAnnounce;  // an announcement names one member at most
  EXPECT_EQ(Decode(Encode(m)).status().code(), EPROTO);
  Fixture f;
  for (int v = 0; v < 3; v++) f.agent.Receive(Encode(m));
  EXPECT_EQ(f.agent.malformed(), 3u);
}

TEST(GossipMessage, OversizeIsRejectedPerKind) {
  Message m;
  m.kind = Kind::kGossip;
  for (uint32_t i = 0; i < 2000; i++) m.members.push_back(Node(i + 10));  // ~110 KiB
  const std::string big = Encode(m);
  ASSERT_GT(big.size(), kMaxGossipBytes);
  EXPECT_EQ(Decode(big).status().code(), EMSGSIZE);
  m.kind = Kind::kFullState;  // the same records are fine as full state
  EXPECT_TRUE(Decode(Encode(m)).ok());
  EXPECT_EQ(Decode(std::string(kMaxMessageBytes + 1, '\0')).status().code(), EMSGSIZE);
  Fixture f;
  f.agent.Receive(big);
  EXPECT_EQ(f.agent.malformed(), 1u);
  EXPECT_FALSE(f.agent.MergeFullState(big).ok());
  EXPECT_EQ(f.agent.malformed(), 2u);
}

TEST(GossipMessage, HostileRecordAboutUsIsRefutedNotObeyed) {
  Fixture f;
  Message m = Sample();
  Member me = Node(1);
  me.incarnation = 5000;
  me.status = Member::kDown;
  m.members = {me};
  f.agent.Receive(Encode(m));
  EXPECT_EQ(f.agent.self().status, Member::kAlive);
  EXPECT_EQ(f.agent.self().incarnation, 5001u);
  me.incarnation = kMaxIncarnation - 1;  // the most a peer can claim: cannot be outranked
  m.members = {me};
  f.agent.Receive(Encode(m));
  EXPECT_EQ(f.agent.self().status, Member::kAlive);
  EXPECT_TRUE(Valid(f.agent.self()));  // no overflow, still a record peers accept
}

}  // namespace
}  // namespace ringfs::gossip
