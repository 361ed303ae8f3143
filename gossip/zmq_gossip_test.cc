// Real sockets: ZmqGossip agents on 127.0.0.1 ephemeral ports.
#include "gossip/zmq_gossip.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <zmq.hpp>

#include "common/rpc.h"

namespace ringfs::gossip {
namespace {

using namespace std::chrono_literals;

Agent::Options Opts(uint32_t id, std::vector<std::string> seeds) {
  Agent::Options o;
  o.self.id = id;
  o.self.gossip_addr = "tcp://127.0.0.1:*";
  o.self.rpc_addr = "tcp://127.0.0.1:" + std::to_string(7000 + id);
  o.self.role = "blockd";
  o.self.zone = "a";
  o.seeds = std::move(seeds);
  // Short windows so the test is quick; the ratios are the defaults'.
  o.heartbeat_ms = 100;
  o.suspect_after_ms = 600;
  o.down_after_ms = 600;
  return o;
}

bool WaitFor(std::chrono::milliseconds limit, const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

struct Cluster {
  std::vector<std::unique_ptr<ZmqGossip>> nodes;
  explicit Cluster(int n) {
    for (int i = 1; i <= n; i++) {
      std::vector<std::string> seeds;
      if (i > 1) seeds.push_back(nodes[0]->endpoint());
      nodes.push_back(std::make_unique<ZmqGossip>(Opts(i, seeds)));
      EXPECT_TRUE(nodes.back()->Start().ok());
    }
  }
  bool AllSee(size_t n, const std::function<bool(const ZmqGossip&)>& pred) {
    for (auto& g : nodes) {
      if (g && g->Members().size() != n) return false;
      if (g && !pred(*g)) return false;
    }
    return true;
  }
};

TEST(GossipZmq, AgentsConvergeAndAStoppedOneIsDeclaredDown) {
  Cluster c(4);
  EXPECT_NE(c.nodes[0]->endpoint().find("tcp://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(c.nodes[0]->endpoint().find('*'), std::string::npos);
  ASSERT_TRUE(WaitFor(3000ms, [&] {
    return c.AllSee(4, [](const ZmqGossip& g) {
      for (uint32_t id = 1; id <= 4; id++)
        if (!g.IsAlive(id)) return false;
      return true;
    });
  }));
  c.nodes[2]->SetWeight(55);
  ASSERT_TRUE(WaitFor(1000ms, [&] {
    return c.AllSee(4, [](const ZmqGossip& g) { return g.Get(3)->weight == 55u; });
  }));

  const auto stopped = std::chrono::steady_clock::now();
  c.nodes[3]->Stop();  // no Leave: as silent as a SIGKILL
  c.nodes[3].reset();
  ASSERT_TRUE(WaitFor(3000ms, [&] {
    for (int i = 0; i < 3; i++)
      if (c.nodes[i]->IsAlive(4)) return false;
    return true;
  }));
  const auto took = std::chrono::steady_clock::now() - stopped;
  // suspect_after + down_after = 1.2 s, less at most one heartbeat.
  EXPECT_GE(took, 1100ms);
  EXPECT_LE(took, 2000ms);
  for (int i = 0; i < 3; i++) EXPECT_EQ(c.nodes[i]->malformed(), 0u);
}

TEST(GossipZmq, LeaveIsSeenAtOnceAndObserversFollow) {
  Cluster c(3);
  Agent::Options o = Opts(0, {c.nodes[1]->endpoint()});
  o.observer = true;
  ZmqGossip mount(o);
  ASSERT_TRUE(mount.Start().ok());
  EXPECT_EQ(mount.endpoint(), "");
  c.nodes[0]->SetMapEpoch(12);
  ASSERT_TRUE(
      WaitFor(3000ms, [&] { return mount.Members().size() == 3 && mount.MaxMapEpoch() == 12; }));
  c.nodes[2]->Leave();
  c.nodes[2]->Stop();
  ASSERT_TRUE(WaitFor(500ms, [&] {
    auto m = mount.Get(3);
    return m && m->status == Member::kLeft && !c.nodes[0]->IsAlive(3);
  }));
  EXPECT_EQ(mount.messages_sent(), 0u);
}

TEST(GossipZmq, HostilePublisherIsDroppedAndCounted) {
  zmq::socket_t evil(rpc::Context(), zmq::socket_type::pub);
  evil.set(zmq::sockopt::linger, 0);
  evil.bind("tcp://127.0.0.1:*");
  const std::string ep = evil.get(zmq::sockopt::last_endpoint);
  ZmqGossip g(Opts(1, {ep}));
  ASSERT_TRUE(g.Start().ok());
  std::this_thread::sleep_for(200ms);  // the subscription reaches the PUB
  for (int i = 0; i < 50; i++) evil.send(zmq::buffer(std::string(i, '\x01')));
  evil.send(zmq::buffer(std::string(kMaxMessageBytes + 10, 'x')));  // over ZMQ_MAXMSGSIZE
  EXPECT_TRUE(WaitFor(2000ms, [&] { return g.malformed() >= 49; }));
  EXPECT_EQ(g.Members().size(), 1u);
}

}  // namespace
}  // namespace ringfs::gossip
