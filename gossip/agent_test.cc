// Agents over the in-memory network with a virtual clock: joins, failure
// detection windows, refutation, restarts, slow members, dissemination with
// drops, anti-entropy, observers.
#include "gossip/agent.h"

#include <gtest/gtest.h>

#include <set>

#include "gossip/test_cluster.h"

namespace ringfs::gossip {
namespace {

SimNetwork::Options Net(double drop = 0, uint64_t seed = 1) {
  return SimNetwork::Options{drop, 1, 5, seed};
}

// n members, all seeded by member 1; returns once every one knows all alive.
void Boot(SimCluster& c, uint32_t n) {
  for (uint32_t id = 1; id <= n; id++) c.Start(id, {SimCluster::Addr(1)});
  const int64_t t = c.RunUntil(20000, [&] {
    return c.All([&](Agent& a) {
      if (a.Members().size() != n) return false;
      for (const Member& m : a.Members())
        if (m.status != Member::kAlive) return false;
      return true;
    });
  });
  ASSERT_GE(t, 0) << "cluster of " << n << " did not converge";
}

Member::Status StatusAt(Agent& a, uint32_t id) {
  auto m = a.Get(id);
  return m ? m->status : Member::kLeft;
}

TEST(GossipAgent, ClusterJoinsThroughOneSeed) {
  SimCluster c(Net(), {});
  Boot(c, 10);
  for (uint32_t id = 1; id <= 10; id++) {
    EXPECT_EQ(c.agent(id).watched().size(), 3u);
    EXPECT_EQ(c.agent(id).malformed(), 0u);
    // Seeds are dropped once enough members are known: 3 watched + 3 random.
    EXPECT_LE(c.agent(id).subscriptions().size(), 6u);
  }
}

TEST(GossipAgent, SilentMemberIsSuspectThenDownInTheWindowNotEarlier) {
  SimCluster c(Net(), {});
  Boot(c, 10);
  c.Run(3000);
  std::map<uint32_t, int64_t> suspect_at, down_at;
  for (uint32_t id = 1; id <= 10; id++) {
    c.agent(id).OnChange([&, id](const Member& m) {
      if (m.id != 5) return;
      if (m.status == Member::kSuspect && !suspect_at.count(id)) suspect_at[id] = c.net().now();
      if (m.status == Member::kDown && !down_at.count(id)) down_at[id] = c.net().now();
    });
  }
  const int64_t killed = c.net().now();
  c.Kill(5);
  c.Run(6000);
  ASSERT_EQ(down_at.size(), 9u);
  int64_t first_suspect = INT64_MAX, first_down = INT64_MAX, last_down = 0;
  for (auto& [id, t] : suspect_at) first_suspect = std::min(first_suspect, t - killed);
  for (auto& [id, t] : down_at) {
    first_down = std::min(first_down, t - killed);
    last_down = std::max(last_down, t - killed);
  }
  // The last heartbeat left at most one period (200 ms) before the kill.
  EXPECT_GE(first_suspect, 1500 - 200);
  EXPECT_LE(first_suspect, 1500 + 50);
  EXPECT_GE(first_down, 1500 + 2000 - 200);
  EXPECT_LE(last_down, 1500 + 2000 + 300);  // and everyone knows within a few hops
  EXPECT_FALSE(c.agent(1).IsAlive(5));
}

TEST(GossipAgent, SuspicionIsRefutedByAHigherIncarnation) {
  SimCluster c(Net(), {});
  Boot(c, 8);
  const uint64_t inc = c.agent(4).self().incarnation;
  // Someone (a watcher that lost its link, or a lie) suspects member 4.
  Member claim = *c.agent(2).Get(4);
  claim.status = Member::kSuspect;
  Message msg;
  msg.members = {claim};
  c.agent(2).Receive(Encode(msg));
  EXPECT_EQ(StatusAt(c.agent(2), 4), Member::kSuspect);
  bool downed = false;
  for (uint32_t id = 1; id <= 8; id++)
    c.agent(id).OnChange(
        [&](const Member& m) { downed |= m.id == 4 && m.status == Member::kDown; });
  c.Run(5000);
  EXPECT_FALSE(downed);
  EXPECT_GT(c.agent(4).self().incarnation, inc);
  EXPECT_TRUE(c.All([](Agent& a) { return StatusAt(a, 4) == Member::kAlive; }));
}

TEST(GossipAgent, RestartWithNewIncarnationRevivesADownMember) {
  SimCluster c(Net(), {});
  Boot(c, 8);
  c.Kill(3);
  ASSERT_GE(c.RunUntil(6000, [&] { return c.All([](Agent& a) { return !a.IsAlive(3); }); }), 0);
  c.Start(3, {SimCluster::Addr(1)});  // same address, later wall clock
  const int64_t t = c.RunUntil(
      3000, [&] { return c.All([](Agent& a) { return StatusAt(a, 3) == Member::kAlive; }); });
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1000);
  EXPECT_EQ(c.agent(3).Members().size(), 8u);  // and it relearned everyone
}

TEST(GossipAgent, RestartOnANewAddressIsFollowed) {
  SimCluster c(Net(), {});
  Boot(c, 6);
  c.Kill(6);
  c.Run(500);
  Agent& a = c.Start(6, {SimCluster::Addr(2)}, nullptr);
  ASSERT_EQ(a.self().gossip_addr, SimCluster::Addr(6));
  // (SimCluster keeps addresses by id; a new rpc address stands for any static change.)
  EXPECT_GE(
      c.RunUntil(3000,
                 [&] { return c.All([](Agent& x) { return StatusAt(x, 6) == Member::kAlive; }); }),
      0);
}

TEST(GossipAgent, SlowButAliveMemberIsNeverDeclaredDown) {
  SimCluster c(Net(0.05, 3), {});
  Boot(c, 12);
  int downs = 0, suspects = 0;
  for (uint32_t id = 1; id <= 12; id++) {
    c.agent(id).OnChange([&](const Member& m) {
      if (m.status == Member::kDown) downs++;
      if (m.status == Member::kSuspect && m.id == 7) suspects++;
    });
  }
  // Member 7 is starved: it runs 300 ms, then stalls 1.2 s, again and again;
  // once it stalls 2.8 s (suspected, then it wakes and refutes). Member 8's
  // stalls are short but constant (a saturated disk does not matter: the
  // gossip thread never touches it).
  for (int round = 0; round < 20; round++) {
    const int64_t stall = round == 10 ? 2800 : 1200;
    c.Stall(7, true);
    c.Stall(8, true);
    c.Run(400);
    c.Stall(8, false);
    c.Run(stall - 400);
    c.Stall(7, false);
    c.Run(300);
  }
  c.Run(5000);
  EXPECT_EQ(downs, 0);
  EXPECT_GT(suspects, 0);  // the long stall was noticed...
  EXPECT_TRUE(c.All([](Agent& a) { return StatusAt(a, 7) == Member::kAlive; }));  // ...and refuted
}

// A member stopped long enough to be declared Down (SIGSTOP, a VM paused)
// comes back by itself once it runs again, though its former watchers no
// longer subscribe to it and the Down claims sent while it was stopped are
// lost: it outranks them on waking.
TEST(GossipAgent, MemberDeclaredDownWhileStoppedComesBack) {
  SimCluster c(Net(), {});
  Boot(c, 5);
  c.Stall(4, true, /*lose=*/true);
  ASSERT_GE(c.RunUntil(8000, [&] {
    return c.All([](Agent& a) { return a.self().id == 4 || StatusAt(a, 4) == Member::kDown; });
  }), 0);
  c.Stall(4, false);
  const int64_t t = c.RunUntil(
      5000, [&] { return c.All([](Agent& a) { return StatusAt(a, 4) == Member::kAlive; }); });
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 1000);
}

TEST(GossipAgent, StalledWatcherDoesNotBlameOthers) {
  SimCluster c(Net(), {});
  Boot(c, 6);
  int suspicions = 0;
  for (uint32_t id = 1; id <= 6; id++)
    c.agent(id).OnChange([&](const Member& m) { suspicions += m.status != Member::kAlive; });
  // Member 2 stops for 1.4 s: less than it takes to be suspected itself,
  // long enough that it hears nothing from the members it watches.
  c.Stall(2, true);
  c.Run(1400);
  c.Stall(2, false);
  c.Run(3000);
  EXPECT_EQ(suspicions, 0);
}

TEST(GossipAgent, ChangeReachesFiftyAgentsWithDrops) {
  SimCluster c(Net(0.05, 5), {});
  Boot(c, 50);
  c.Run(2000);
  for (int trial = 0; trial < 5; trial++) {
    const uint32_t who = 1 + trial * 9;
    const uint32_t w = 200 + trial;
    c.agent(who).SetWeight(w);
    const int64_t t =
        c.RunUntil(5000, [&] { return c.All([&](Agent& a) { return a.Get(who)->weight == w; }); });
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 500) << "trial " << trial;
  }
}

TEST(GossipAgent, DigestRepairsAMissedChange) {
  SimCluster c(Net(), {});
  Boot(c, 8);
  c.Run(2000);
  c.Stall(8, true);
  c.agent(3).SetWeight(7);
  c.Run(2000);             // long past the retransmissions
  c.Stall(8, true, true);  // it never got them
  c.Stall(8, false);
  EXPECT_EQ(c.agent(8).Get(3)->weight, 100u);
  EXPECT_GE(c.RunUntil(1500, [&] { return c.agent(8).Get(3)->weight == 7; }), 0);
}

TEST(GossipAgent, AntiEntropyRepairsAMemberThatMissedEverything) {
  Agent::Options base;
  base.digest_window = 0;  // only the full-state exchange can repair
  base.anti_entropy_ms = 4000;
  SimCluster c(Net(), base);
  Boot(c, 8);
  c.Run(2000);
  c.Stall(8, true);
  c.agent(3).SetWeight(7);
  c.agent(4).SetMapEpoch(9);
  c.agent(5).Leave();
  c.Run(2000);
  c.Stall(8, true, true);
  c.Stall(8, false);
  EXPECT_EQ(c.agent(8).Get(3)->weight, 100u);
  const int64_t t = c.RunUntil(6000, [&] {
    Agent& a = c.agent(8);
    return a.Get(3)->weight == 7 && a.MaxMapEpoch() == 9 && a.Get(5)->status == Member::kLeft;
  });
  EXPECT_GE(t, 0);
  EXPECT_LE(t, 4000 * 5 / 4 + 100);
}

TEST(GossipAgent, LeaveIsSeenAsLeftNotDown) {
  SimCluster c(Net(), {});
  Boot(c, 6);
  c.agent(4).Leave();
  c.Run(300);
  c.Kill(4);
  c.Run(6000);
  EXPECT_TRUE(c.All([](Agent& a) { return StatusAt(a, 4) == Member::kLeft && !a.IsAlive(4); }));
}

TEST(GossipAgent, ObserverLearnsEverythingAndSendsNothing) {
  SimCluster c(Net(), {});
  Boot(c, 6);
  c.agent(2).SetMapEpoch(42);
  Agent& obs = c.StartObserver(100, {SimCluster::Addr(3)});
  EXPECT_GE(c.RunUntil(2000, [&] { return obs.Members().size() == 6 && obs.MaxMapEpoch() == 42; }),
            0);
  c.Kill(6);
  EXPECT_GE(c.RunUntil(6000, [&] { return !obs.IsAlive(6); }), 0);
  EXPECT_EQ(obs.messages_sent(), 0u);
  EXPECT_EQ(c.agent(1).Members().size(), 6u);  // not a member
  EXPECT_FALSE(c.agent(1).Get(100).has_value());
}

TEST(GossipAgent, FullStateBootstrapsWithoutGossip) {
  SimCluster c(Net(), {});
  Boot(c, 5);
  Agent& obs = c.StartObserver(100, {});
  ASSERT_TRUE(obs.MergeFullState(c.agent(4).EncodeFullState()).ok());
  EXPECT_EQ(obs.Members().size(), 5u);
  EXPECT_TRUE(obs.IsAlive(1));
  EXPECT_FALSE(obs.MergeFullState("garbage").ok());
  EXPECT_EQ(obs.malformed(), 1u);
}

}  // namespace
}  // namespace ringfs::gossip
