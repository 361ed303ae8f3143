#include "gossip/detector.h"

#include <gtest/gtest.h>

#include <map>

namespace ringfs::gossip {
namespace {

using V = Detector::Verdict;

TEST(GossipSuccessors, EveryMemberIsWatchedByExactlyK) {
  std::vector<uint32_t> ids;
  for (uint32_t i = 1; i <= 100; i++) ids.push_back(i);
  std::map<uint32_t, int> watchers;
  for (uint32_t self : ids) {
    auto s = Successors(self, ids, 3);
    ASSERT_EQ(s.size(), 3u);
    for (uint32_t w : s) {
      EXPECT_NE(w, self);
      watchers[w]++;
    }
  }
  for (uint32_t id : ids) EXPECT_EQ(watchers[id], 3) << id;
  EXPECT_EQ(Successors(1, {1, 2}, 3), std::vector<uint32_t>{2});
  EXPECT_TRUE(Successors(1, {1}, 3).empty());
}

TEST(GossipDetector, SilentMemberIsSuspectedThenDownNotEarlier) {
  Detector d(1500, 2000);
  d.Watch({5}, 0);
  d.Progress(5, 1000);
  EXPECT_EQ(d.Check(5, Member::kAlive, 2500), V::kNone);
  EXPECT_EQ(d.Check(5, Member::kAlive, 2501), V::kSuspect);
  d.Suspected(5, 2501);
  EXPECT_EQ(d.Check(5, Member::kSuspect, 4501), V::kNone);
  EXPECT_EQ(d.Check(5, Member::kSuspect, 4502), V::kDown);
}

TEST(GossipDetector, HeartbeatsDuringSuspicionPreventDown) {
  Detector d(1500, 2000);
  d.Watch({5}, 0);
  d.Suspected(5, 100);  // someone else suspected it
  d.Progress(5, 2000);  // but we still hear it
  EXPECT_EQ(d.Check(5, Member::kSuspect, 3000), V::kNone);
  EXPECT_EQ(d.Check(5, Member::kSuspect, 4001), V::kDown);
}

TEST(GossipDetector, NewlyWatchedMembersGetAGracePeriod) {
  Detector d(1500, 2000);
  d.Progress(5, 0);
  d.Watch({5}, 10000);  // we just subscribed to it
  EXPECT_EQ(d.Check(5, Member::kAlive, 11000), V::kNone);
  EXPECT_EQ(d.Check(5, Member::kAlive, 11501), V::kSuspect);
}

TEST(GossipDetector, OurOwnStallIsNotBlamedOnOthers) {
  Detector d(1500, 2000);
  d.Watch({5}, 0);
  d.Progress(5, 1000);
  d.Stalled(5000);  // we did not run from 1000 to 6000
  EXPECT_EQ(d.Check(5, Member::kAlive, 6000), V::kNone);
  EXPECT_EQ(d.Check(5, Member::kAlive, 7501), V::kSuspect);
}

}  // namespace
}  // namespace ringfs::gossip
