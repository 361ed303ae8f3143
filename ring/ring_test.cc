#include "ring/ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ringfs::ring {
namespace {

constexpr size_t kRf = 3;
constexpr size_t kNumKeys = size_t{1} << 20;

// Realistic block keys: sequential inode numbers, files of 1 to 128 blocks.
const std::vector<uint64_t>& Keys() {
  static const std::vector<uint64_t> keys = [] {
    std::vector<uint64_t> k;
    k.reserve(kNumKeys);
    for (uint64_t ino = 2; k.size() < kNumKeys; ino++) {
      uint64_t blocks = 1 + (ino * 37) % 128;
      for (uint64_t i = 0; i < blocks && k.size() < kNumKeys; i++) {
        k.push_back(Ring::BlockKey(ino, i));
      }
    }
    return k;
  }();
  return keys;
}

// Nodes with ids first_id.., spread round-robin over `zones` zones.
std::vector<Member> Nodes(uint32_t n, uint32_t zones = 1, uint32_t first_id = 1) {
  std::vector<Member> m;
  for (uint32_t i = 0; i < n; i++) {
    m.push_back({first_id + i, "z" + std::to_string(i % zones), 100});
  }
  return m;
}

void Report(const std::string& name, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4f", value);
  std::cout << "[ measured ] " << name << " = " << buf << "\n";
  ::testing::Test::RecordProperty(name, buf);
}

// Counts indexed by member id (test ids stay below kMaxId).
constexpr uint32_t kMaxId = 1024;
using Counts = std::vector<size_t>;

// (max / mean, min / mean) of the counts over the ring's members.
std::pair<double, double> Spread(const Ring& ring, const Counts& count) {
  double total = 0, max = 0, min = 1e300;
  for (const Member& m : ring.members()) {
    double c = static_cast<double>(count.at(m.id));
    total += c;
    max = std::max(max, c);
    min = std::min(min, c);
  }
  double mean = total / static_cast<double>(ring.size());
  return {max / mean, min / mean};
}

void CheckBalance(const Ring& ring, const std::string& label) {
  Counts primary(kMaxId), replica(kMaxId);
  for (uint64_t key : Keys()) {
    std::vector<uint32_t> set = ring.Replicas(key, kRf);
    primary[set[0]]++;
    for (uint32_t id : set) replica[id]++;
  }
  auto [pmax, pmin] = Spread(ring, primary);
  auto [rmax, rmin] = Spread(ring, replica);
  Report(label + "_primary_max_over_mean", pmax);
  Report(label + "_primary_min_over_mean", pmin);
  Report(label + "_replica_max_over_mean", rmax);
  Report(label + "_replica_min_over_mean", rmin);
  EXPECT_LE(pmax, 1.10);
  EXPECT_LE(rmax, 1.10);
}

TEST(Ring, HundredNodesOneZoneIsBalanced) { CheckBalance(Ring(Nodes(100)), "zones1"); }

TEST(Ring, HundredNodesFourZonesIsBalanced) { CheckBalance(Ring(Nodes(100, 4)), "zones4"); }

// Adds `added` and checks that data only flows to it.
void CheckAddOne(std::vector<Member> members, const Member& added, const std::string& label) {
  Ring before(members);
  members.push_back(added);
  Ring after(members);
  size_t moved = 0, sets_changed = 0, copies_moved = 0;
  for (uint64_t key : Keys()) {
    std::vector<uint32_t> old_set = before.Replicas(key, kRf);
    std::vector<uint32_t> new_set = after.Replicas(key, kRf);
    ASSERT_EQ(new_set.size(), kRf);
    if (old_set[0] != new_set[0]) {
      moved++;
      ASSERT_EQ(new_set[0], added.id) << key;
    }
    if (old_set != new_set) {
      sets_changed++;
      ASSERT_NE(std::find(new_set.begin(), new_set.end(), added.id), new_set.end()) << key;
      for (uint32_t id : new_set) {
        copies_moved += std::find(old_set.begin(), old_set.end(), id) == old_set.end();
      }
    }
  }
  double fair = 1.0 / static_cast<double>(after.size());
  double keys = static_cast<double>(Keys().size());
  Report(label + "_primaries_moved_over_fair", moved / keys / fair);
  Report(label + "_sets_changed_share", sets_changed / keys);
  Report(label + "_copies_moved_over_fair", copies_moved / (kRf * keys) / fair);
  EXPECT_LE(moved / keys, 1.10 * fair);
  EXPECT_LE(copies_moved / (kRf * keys), 1.10 * fair);
}

TEST(Ring, AddingANodeMovesOnlyItsShareToIt) {
  CheckAddOne(Nodes(100), {101, "z0", 100}, "add_zones1");
}

TEST(Ring, AddingANodeWithZonesMovesOnlyItsShareToIt) {
  CheckAddOne(Nodes(100, 4), {101, "z2", 100}, "add_zones4");
}

void CheckRemoveOne(std::vector<Member> members, uint32_t removed) {
  Ring before(members);
  std::erase_if(members, [&](const Member& m) { return m.id == removed; });
  Ring after(members);
  ASSERT_EQ(after.size(), before.size() - 1);
  size_t moved = 0;
  for (uint64_t key : Keys()) {
    std::vector<uint32_t> old_set = before.Replicas(key, kRf);
    std::vector<uint32_t> new_set = after.Replicas(key, kRf);
    if (old_set[0] != removed) {
      ASSERT_EQ(new_set[0], old_set[0]) << key;
    } else {
      moved++;
    }
    if (std::find(old_set.begin(), old_set.end(), removed) == old_set.end()) {
      ASSERT_EQ(new_set, old_set) << key;
    }
  }
  Report("remove_primaries_moved_share", moved / static_cast<double>(Keys().size()));
}

TEST(Ring, RemovingANodeMovesOnlyItsKeys) { CheckRemoveOne(Nodes(100), 37); }

TEST(Ring, RemovingANodeWithZonesMovesOnlyItsKeys) { CheckRemoveOne(Nodes(100, 4), 62); }

TEST(Ring, WeightScalesOwnership) {
  std::vector<Member> members = Nodes(100);
  for (Member& m : members) {
    if (m.id % 10 == 0) m.weight = 200;
  }
  members.push_back({500, "z0", 0});  // weight 0: holds nothing
  Ring ring(members);
  EXPECT_EQ(ring.size(), 100u);
  Counts primary(kMaxId);
  for (uint64_t key : Keys()) primary.at(ring.Owner(key))++;
  EXPECT_EQ(primary[500], 0u);
  double normal = 0;
  for (const Member& m : ring.members()) {
    if (m.weight == 100) normal += static_cast<double>(primary[m.id]);
  }
  normal /= 90;
  double lo = 1e300, hi = 0;
  for (const Member& m : ring.members()) {
    if (m.weight != 200) continue;
    double ratio = static_cast<double>(primary[m.id]) / normal;
    lo = std::min(lo, ratio);
    hi = std::max(hi, ratio);
  }
  Report("weight200_share_over_weight100_min", lo);
  Report("weight200_share_over_weight100_max", hi);
  EXPECT_GE(lo, 1.8);
  EXPECT_LE(hi, 2.2);
}

// Raising a weight keeps the node's old points, so keys only move to it.
TEST(Ring, RaisingAWeightMovesKeysOnlyToThatNode) {
  std::vector<Member> members = Nodes(50, 2);
  Ring before(members);
  members[7].weight = 200;
  Ring after(members);
  for (size_t i = 0; i < Keys().size(); i += 4) {
    uint32_t old_owner = before.Owner(Keys()[i]), new_owner = after.Owner(Keys()[i]);
    if (old_owner != new_owner) {
      ASSERT_EQ(new_owner, members[7].id);
    }
  }
}

// Up to 200k keys: zone rules hold key by key, so fewer keys do.
template <class Fn>
void ForSomeKeys(Fn fn) {
  for (size_t i = 0; i < 200000; i++) fn(Keys()[i]);
}

std::map<std::string, size_t> ZonesOf(const Ring& ring, const std::vector<uint32_t>& set) {
  std::map<std::string, size_t> zones;
  for (uint32_t id : set) {
    auto it = std::find_if(ring.members().begin(), ring.members().end(),
                           [&](const Member& m) { return m.id == id; });
    EXPECT_NE(it, ring.members().end());
    if (it != ring.members().end()) zones[it->zone]++;
  }
  return zones;
}

size_t Distinct(const std::vector<uint32_t>& set) {
  return std::set<uint32_t>(set.begin(), set.end()).size();
}

TEST(Ring, ThreeZonesGiveThreeZonesPerSet) {
  Ring ring(Nodes(15, 3));
  ForSomeKeys([&](uint64_t key) {
    std::vector<uint32_t> set = ring.Replicas(key, 3);
    ASSERT_EQ(Distinct(set), 3u);
    ASSERT_EQ(ZonesOf(ring, set).size(), 3u);
  });
}

TEST(Ring, MoreZonesThanReplicasStillDistinctZones) {
  Ring ring(Nodes(20, 5));
  ForSomeKeys([&](uint64_t key) {
    std::vector<uint32_t> set = ring.Replicas(key, 3);
    ASSERT_EQ(Distinct(set), 3u);
    ASSERT_EQ(ZonesOf(ring, set).size(), 3u);
  });
}

TEST(Ring, TwoZonesUseBothWithThreeDistinctNodes) {
  Ring ring(Nodes(8, 2));
  ForSomeKeys([&](uint64_t key) {
    std::vector<uint32_t> set = ring.Replicas(key, 3);
    ASSERT_EQ(Distinct(set), 3u);
    ASSERT_EQ(ZonesOf(ring, set).size(), 2u);
  });
}

TEST(Ring, UnevenZonesStillSpread) {
  // One node alone in zone "a": it is in every set, next to two from "b".
  std::vector<Member> members = Nodes(5, 1, 10);
  members.push_back({1, "a", 100});
  Ring ring(members);
  ForSomeKeys([&](uint64_t key) {
    std::vector<uint32_t> set = ring.Replicas(key, 3);
    ASSERT_EQ(Distinct(set), 3u);
    ASSERT_EQ(ZonesOf(ring, set).size(), 2u);
    ASSERT_NE(std::find(set.begin(), set.end(), 1u), set.end());
  });
}

TEST(Ring, FiveReplicasOverThreeZonesSplitTwoTwoOne) {
  Ring ring(Nodes(12, 3));
  ForSomeKeys([&](uint64_t key) {
    std::vector<uint32_t> set = ring.Replicas(key, 5);
    ASSERT_EQ(Distinct(set), 5u);
    std::map<std::string, size_t> zones = ZonesOf(ring, set);
    ASSERT_EQ(zones.size(), 3u);
    for (const auto& [zone, n] : zones) ASSERT_LE(n, 2u) << zone;
  });
}

TEST(Ring, OneZoneGivesThreeDistinctNodes) {
  Ring ring(Nodes(6, 1));
  ForSomeKeys([&](uint64_t key) { ASSERT_EQ(Distinct(ring.Replicas(key, 3)), 3u); });
}

TEST(Ring, OwnerIsFirstReplica) {
  Ring ring(Nodes(30, 3));
  ForSomeKeys([&](uint64_t key) {
    uint32_t owner = ring.Owner(key);
    ASSERT_EQ(ring.Replicas(key, 1), std::vector<uint32_t>{owner});
    ASSERT_EQ(ring.Replicas(key, 3)[0], owner);
  });
}

TEST(Ring, FewerMembersThanReplicasReturnsAll) {
  Ring ring({{4, "a", 100}, {9, "a", 100}});
  EXPECT_EQ(ring.size(), 2u);
  for (size_t i = 0; i < 1000; i++) {
    std::vector<uint32_t> set = ring.Replicas(Keys()[i], 3);
    std::sort(set.begin(), set.end());
    ASSERT_EQ(set, (std::vector<uint32_t>{4, 9}));
  }
  EXPECT_TRUE(ring.Replicas(Keys()[0], 0).empty());
}

// An empty ring places nothing: Replicas is empty and Owner is kNoNode.
TEST(Ring, EmptyRingPlacesNothing) {
  for (const Ring& ring : {Ring({}), Ring({{1, "a", 0}, {2, "b", 0}}), Ring(Nodes(3), 0)}) {
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.size(), 0u);
    EXPECT_EQ(ring.points(), 0u);
    EXPECT_TRUE(ring.Replicas(Keys()[0], 3).empty());
    EXPECT_EQ(ring.Owner(Keys()[0]), Ring::kNoNode);
  }
}

TEST(Ring, OrderOfMembersDoesNotMatter) {
  std::vector<Member> members = Nodes(60, 4);
  members.push_back({61, "z1", 300});
  std::vector<Member> shuffled = members;
  std::mt19937 rng(12345);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  Ring a(members), b(shuffled);
  ForSomeKeys([&](uint64_t key) { ASSERT_EQ(a.Replicas(key, 3), b.Replicas(key, 3)); });
}

TEST(Ring, DuplicateIdsResolveTheSameWayInAnyOrder) {
  Ring a({{1, "x", 100}, {2, "y", 100}, {1, "z", 100}});
  Ring b({{1, "z", 100}, {2, "y", 100}, {1, "x", 100}});
  EXPECT_EQ(a.size(), 2u);
  ForSomeKeys([&](uint64_t key) { ASSERT_EQ(a.Replicas(key, 2), b.Replicas(key, 2)); });
}

TEST(Ring, FromMapTakesEveryInNodeAliveOrNot) {
  wire::ClusterMap map;
  auto add = [&](uint32_t id, const char* zone, uint32_t weight, bool alive,
                 wire::NodeState state = wire::NodeState::kIn) {
    wire::NodeInfo n;
    n.id = id;
    n.zone = zone;
    n.weight = weight;
    n.alive = alive;
    n.state = state;
    map.nodes.push_back(n);
  };
  add(1, "a", 100, true);
  add(2, "b", 200, false);
  add(3, "c", 100, false);
  add(4, "c", 0, true);
  add(5, "d", 100, true, wire::NodeState::kJoining);
  add(6, "d", 100, true, wire::NodeState::kDraining);
  add(7, "d", 100, false, wire::NodeState::kOut);
  Ring ring = Ring::FromMap(map);
  Ring expected({{1, "a", 100}, {2, "b", 200}, {3, "c", 100}});
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.zones(), 3u);
  ForSomeKeys([&](uint64_t key) { ASSERT_EQ(ring.Replicas(key, 3), expected.Replicas(key, 3)); });
}

// A node that takes another's token takes exactly its place: every key the
// old member held goes to the new one, and nothing else moves.
TEST(Ring, TokenTakesOverAPlace) {
  std::vector<Member> before = Nodes(10, 3);
  std::vector<Member> after = before;
  const uint32_t old_id = after[4].id;
  after[4].id = 99;
  after[4].token = old_id;
  Ring a(before), b(after);
  ForSomeKeys([&](uint64_t key) {
    auto ra = a.Replicas(key, 3), rb = b.Replicas(key, 3);
    for (uint32_t& id : ra)
      if (id == old_id) id = 99;
    ASSERT_EQ(ra, rb);
  });
}

// Placement is persistent: if these change, stored blocks are no longer
// where clients look for them.
TEST(Ring, PlacementIsStable) {
  EXPECT_EQ(Ring::BlockKey(1, 0), 2806482627441532945u);
  Ring ring(Nodes(10, 3));
  EXPECT_EQ(ring.Replicas(Ring::BlockKey(1, 0), 3), (std::vector<uint32_t>{8, 4, 6}));
  EXPECT_EQ(ring.Replicas(Ring::BlockKey(12345, 678), 3), (std::vector<uint32_t>{7, 9, 2}));
}

TEST(Ring, BuildsAndLooksUpQuickly) {
  double best_ms = 1e300;
  for (int i = 0; i < 3; i++) {
    auto start = std::chrono::steady_clock::now();
    Ring ring(Nodes(100, 4));
    auto end = std::chrono::steady_clock::now();
    best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(end - start).count());
    EXPECT_EQ(ring.points(), 100u * Ring::kDefaultVnodes);
  }
  Report("build_100_nodes_ms", best_ms);
  EXPECT_LT(best_ms, 100);

  Ring ring(Nodes(100, 4));
  uint64_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t key : Keys()) sink += ring.Replicas(key, kRf)[kRf - 1];
  auto end = std::chrono::steady_clock::now();
  EXPECT_NE(sink, 0u);
  Report("replicas_rf3_ns_per_call",
         std::chrono::duration<double, std::nano>(end - start).count() / Keys().size());
}

}  // namespace
}  // namespace ringfs::ring
