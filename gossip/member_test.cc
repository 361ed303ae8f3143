#include "gossip/member.h"

#include <gtest/gtest.h>

namespace ringfs::gossip {
namespace {

Member M(uint64_t inc, Member::Status st, uint64_t hb = 0) {
  Member m;
  m.id = 7;
  m.gossip_addr = "tcp://10.0.0.7:7100";
  m.incarnation = inc;
  m.status = st;
  m.heartbeat = hb;
  return m;
}

const Member::Status kAll[] = {Member::kAlive, Member::kSuspect, Member::kDown, Member::kLeft};

TEST(GossipMerge, HigherIncarnationWinsWhateverTheStatus) {
  for (auto cur : kAll) {
    for (auto in : kAll) {
      Member c = M(5, cur, 100);
      EXPECT_EQ(Merge(c, M(6, in, 1)), MergeResult::kReplaced) << StatusName(cur) << StatusName(in);
      EXPECT_EQ(c.incarnation, 6u);
      EXPECT_EQ(c.status, in);
      EXPECT_EQ(c.heartbeat, 1u);  // a new incarnation restarts the count
      Member old = M(5, cur, 100);
      EXPECT_EQ(Merge(old, M(4, in, 1000)), MergeResult::kIgnored);
      EXPECT_EQ(old.status, cur);
      EXPECT_EQ(old.heartbeat, 100u);
    }
  }
}

TEST(GossipMerge, EqualIncarnationOrdersLeftDownSuspectAlive) {
  for (int a = 0; a < 4; a++) {
    for (int b = 0; b < 4; b++) {
      Member c = M(5, kAll[a], 10);
      MergeResult r = Merge(c, M(5, kAll[b], 10));
      if (b > a) {
        EXPECT_EQ(r, MergeResult::kReplaced);
        EXPECT_EQ(c.status, kAll[b]);
      } else {
        EXPECT_EQ(r, MergeResult::kIgnored);
        EXPECT_EQ(c.status, kAll[a]);
      }
    }
  }
}

TEST(GossipMerge, HeartbeatRefreshesButNeverRevives) {
  Member c = M(5, Member::kDown, 10);
  EXPECT_EQ(Merge(c, M(5, Member::kAlive, 11)), MergeResult::kHeartbeat);
  EXPECT_EQ(c.status, Member::kDown);
  EXPECT_EQ(c.heartbeat, 11u);
  Member s = M(5, Member::kSuspect, 10);
  EXPECT_EQ(Merge(s, M(5, Member::kAlive, 50)), MergeResult::kHeartbeat);
  EXPECT_EQ(s.status, Member::kSuspect);  // only the member's own refutation clears it
  Member a = M(5, Member::kAlive, 10);
  EXPECT_EQ(Merge(a, M(5, Member::kAlive, 9)), MergeResult::kIgnored);
  EXPECT_EQ(a.heartbeat, 10u);  // monotonic
}

TEST(GossipMerge, SuspicionAtEqualIncarnationKeepsTheHigherHeartbeat) {
  Member c = M(5, Member::kAlive, 40);
  EXPECT_EQ(Merge(c, M(5, Member::kSuspect, 30)), MergeResult::kReplaced);
  EXPECT_EQ(c.status, Member::kSuspect);
  EXPECT_EQ(c.heartbeat, 40u);
}

TEST(GossipMerge, RefutationByHigherIncarnationClearsSuspicionAndDown) {
  Member c = M(5, Member::kSuspect);
  EXPECT_EQ(Merge(c, M(6, Member::kAlive)), MergeResult::kReplaced);
  EXPECT_EQ(c.status, Member::kAlive);
  Member d = M(5, Member::kDown);
  EXPECT_EQ(Merge(d, M(1'700'000'000'000, Member::kAlive)), MergeResult::kReplaced);  // a restart
  EXPECT_TRUE(d.usable());
}

TEST(GossipMember, ValidRejectsBadStatusLongStringsHugeIncarnation) {
  Member m = M(5, Member::kAlive);
  EXPECT_TRUE(Valid(m));
  Member bad = m;
  bad.status = static_cast<Member::Status>(4);
  EXPECT_FALSE(Valid(bad));
  bad = m;
  bad.zone = std::string(kMaxZoneLen + 1, 'z');
  EXPECT_FALSE(Valid(bad));
  bad = m;
  bad.gossip_addr = std::string(kMaxAddrLen + 1, 'a');
  EXPECT_FALSE(Valid(bad));
  bad = m;
  bad.incarnation = kMaxIncarnation;
  EXPECT_FALSE(Valid(bad));
}

TEST(GossipMember, StaticHashCoversAddressesRoleZoneOnly) {
  Member a = M(5, Member::kAlive, 1);
  Member b = M(9, Member::kDown, 99);
  b.weight = 3;
  b.map_epoch = 4;
  EXPECT_EQ(StaticHash(a), StaticHash(b));
  b.zone = "b";
  EXPECT_NE(StaticHash(a), StaticHash(b));
  Member c = a, d = a;
  c.role = "ab";
  c.zone = "c";
  d.role = "a";
  d.zone = "bc";
  EXPECT_NE(StaticHash(c), StaticHash(d));
}

}  // namespace
}  // namespace ringfs::gossip
