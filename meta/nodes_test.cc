// The cluster map's membership rules, with a fake clock on a real LMDB store:
// states and their refusals, epochs, store ids and tokens, down-out, and the
// data movement plan of a change (moved versus ideal).
#include "meta/nodes.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "meta/gc.h"
#include "meta/namespace.h"
#include "ring/ring.h"

namespace ringfs::meta {
namespace {

using wire::NodeState;

class NodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringfs-nodes-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Namespace::Options o;
    o.dir = dir_;
    auto ns = Namespace::Open(o);
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    ns_ = std::move(ns).value();
    Reopen();
  }
  void TearDown() override {
    reg_.reset();
    ns_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    reg_.reset();
    NodeRegistry::Options o;
    o.node_timeout_ms = 1000;
    o.down_out_ms = 60000;
    o.now_ms = [this] { return now_; };
    auto r = NodeRegistry::Open(&ns_->env(), o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reg_ = std::move(r).value();
  }
  // A heartbeat from the blockd at port `port` with store `store`.
  NodeRegistry::Registration Beat(int port, uint64_t store, uint32_t id = 0) {
    wire::NodeInfo n;
    n.id = id;
    n.addr = "tcp://10.0.0.1:" + std::to_string(port);
    n.zone = "z" + std::to_string(port % 3);
    n.store_id = store;
    auto r = reg_->Register(n);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : NodeRegistry::Registration{};
  }
  const wire::NodeInfo* Find(const wire::ClusterMap& m, uint32_t id) {
    for (const auto& n : m.nodes)
      if (n.id == id) return &n;
    return nullptr;
  }
  NodeState StateOf(uint32_t id) {
    auto m = reg_->Map();
    const wire::NodeInfo* n = Find(m, id);
    return n ? n->state : NodeState::kOut;
  }

  std::string dir_;
  int64_t now_ = 1000000;
  std::unique_ptr<Namespace> ns_;
  std::unique_ptr<NodeRegistry> reg_;
};

TEST_F(NodesTest, JoinAdmitDrainOut) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 4; p++) ids.push_back(Beat(7000 + p, 100 + p).id);
  for (uint32_t id : ids) EXPECT_EQ(StateOf(id), NodeState::kJoining);
  EXPECT_TRUE(ring::Ring::FromMap(reg_->Map()).empty());  // joining nodes hold nothing
  const uint64_t e0 = reg_->epoch();
  auto dry = reg_->Admit(0, "tcp://10.0.0.1:7001", "", UINT32_MAX, true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(Find(*dry, ids[0])->state, NodeState::kIn);
  EXPECT_EQ(StateOf(ids[0]), NodeState::kJoining);  // a dry run changes nothing
  EXPECT_EQ(reg_->epoch(), e0);
  for (uint32_t id : ids) ASSERT_TRUE(reg_->Admit(id, "", "", UINT32_MAX, false).ok());
  EXPECT_GT(reg_->epoch(), e0);
  EXPECT_EQ(reg_->Admit(ids[0], "", "", UINT32_MAX, false).status().code(), EEXIST);
  EXPECT_EQ(reg_->Admit(0, "tcp://10.9.9.9:1", "", UINT32_MAX, false).status().code(), ENOENT);
  EXPECT_EQ(ring::Ring::FromMap(reg_->Map()).size(), 4u);

  ASSERT_TRUE(reg_->Remove(ids[3], false, false).ok());
  EXPECT_EQ(StateOf(ids[3]), NodeState::kDraining);
  EXPECT_EQ(ring::Ring::FromMap(reg_->Map()).size(), 3u);  // out of the ring at once
  EXPECT_EQ(reg_->Remove(ids[3], false, false).status().code(), EALREADY);
  // Three copies need three nodes in: no more removals.
  EXPECT_EQ(reg_->Remove(ids[0], false, false).status().code(), EBUSY);
  EXPECT_EQ(reg_->Remove(ids[0], true, false).status().code(), EBUSY);
  EXPECT_EQ(reg_->Remove(99, false, false).status().code(), ENOENT);
  ASSERT_TRUE(reg_->FinishDrain(ids[3]).ok());
  EXPECT_EQ(StateOf(ids[3]), NodeState::kOut);
  EXPECT_EQ(reg_->Remove(ids[3], true, false).status().code(), EALREADY);

  // All of it survives a restart, and the epoch never goes back.
  const uint64_t before = reg_->epoch();
  Reopen();
  EXPECT_GT(reg_->epoch(), before);
  EXPECT_EQ(StateOf(ids[0]), NodeState::kIn);
  EXPECT_EQ(StateOf(ids[3]), NodeState::kOut);
  // The removed node, still running, comes back as a new joining node and
  // must discard what it holds.
  auto back = Beat(7004, 104, ids[3]);
  EXPECT_TRUE(back.reset_store);
  EXPECT_NE(back.id, ids[3]);
  EXPECT_EQ(StateOf(back.id), NodeState::kJoining);
}

TEST_F(NodesTest, AWipedStoreTakesItsOldPlace) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 4; p++) {
    ids.push_back(Beat(7000 + p, 100 + p).id);
    ASSERT_TRUE(reg_->Admit(ids.back(), "", "", UINT32_MAX, false).ok());
  }
  const ring::Ring before = ring::Ring::FromMap(reg_->Map());
  // Same address, no id (its node_id file is gone), another store.
  auto r = Beat(7002, 999);
  EXPECT_TRUE(r.reset_store);
  ASSERT_NE(r.id, ids[1]);
  EXPECT_EQ(StateOf(ids[1]), NodeState::kOut);
  EXPECT_EQ(StateOf(r.id), NodeState::kIn);
  const ring::Ring after = ring::Ring::FromMap(reg_->Map());
  for (uint64_t k = 0; k < 2000; k++) {
    auto a = before.Replicas(ring::Ring::BlockKey(k, 0), 3), b = after.Replicas(ring::Ring::BlockKey(k, 0), 3);
    for (uint32_t& id : a)
      if (id == ids[1]) id = r.id;
    ASSERT_EQ(a, b) << "key " << k;
  }
  // Its next heartbeat is an ordinary one.
  auto again = Beat(7002, 999, r.id);
  EXPECT_EQ(again.id, r.id);
  EXPECT_FALSE(again.reset_store);
  // A heartbeat of an unchanged store is not a change.
  const uint64_t e = reg_->epoch();
  Beat(7001, 101, ids[0]);
  EXPECT_EQ(reg_->epoch(), e);
}

TEST_F(NodesTest, DownOutAfterTheIntervalAndBackInItsPlace) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 5; p++) {
    ids.push_back(Beat(7000 + p, 100 + p).id);
    ASSERT_TRUE(reg_->Admit(ids.back(), "", "", UINT32_MAX, false).ok());
  }
  auto beat_all_but = [&](uint32_t skip) {
    for (int p = 1; p <= 5; p++)
      if (ids[p - 1] != skip) Beat(7000 + p, 100 + p, ids[p - 1]);
  };
  // Node 3 falls silent: down after the timeout (seen at the next look, 2 s
  // in), out only down_out_ms after that.
  for (int s = 0; s < 58; s++) {
    now_ += 1000;
    beat_all_but(ids[2]);
    EXPECT_EQ(reg_->ApplyDownOut(), 0u) << "second " << s;
  }
  EXPECT_FALSE(Find(reg_->Map(), ids[2])->alive);
  EXPECT_EQ(StateOf(ids[2]), NodeState::kIn);
  EXPECT_LT(Find(reg_->Map(), ids[2])->down_ms, 60000u);
  EXPECT_GT(Find(reg_->Map(), ids[2])->down_ms, 54000u);
  for (int s = 0; s < 4; s++) {
    now_ += 1000;
    beat_all_but(ids[2]);
  }
  EXPECT_EQ(reg_->ApplyDownOut(), 1u);
  EXPECT_EQ(StateOf(ids[2]), NodeState::kOut);
  // Back after being marked out: a new id in the same place, store reset.
  auto back = Beat(7003, 103, ids[2]);
  EXPECT_TRUE(back.reset_store);
  EXPECT_EQ(StateOf(back.id), NodeState::kIn);
  EXPECT_EQ(Find(reg_->Map(), back.id)->token, ids[2]);
}

// A request queued while a node was cut off arrives after its retry (or a
// reply is lost): the same store must get the same new id, not become two
// nodes, one of them a ghost in the ring.
TEST_F(NodesTest, AStoreWrittenOffIsReplacedOnceHoweverOftenItAsks) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 5; p++) {
    ids.push_back(Beat(7000 + p, 100 + p).id);
    ASSERT_TRUE(reg_->Admit(ids.back(), "", "", UINT32_MAX, false).ok());
  }
  for (int s = 0; s < 70; s++) {
    now_ += 1000;
    for (int p = 1; p <= 5; p++)
      if (p != 2) Beat(7000 + p, 100 + p, ids[p - 1]);
    reg_->ApplyDownOut();
  }
  ASSERT_EQ(StateOf(ids[1]), NodeState::kOut);
  auto first = Beat(7002, 102, ids[1]);
  auto second = Beat(7002, 102, ids[1]);  // the queued one
  EXPECT_TRUE(first.reset_store);
  EXPECT_EQ(second.id, first.id);
  EXPECT_TRUE(second.reset_store);  // not yet heard under the new id: reset is still safe
  EXPECT_FALSE(Find(reg_->Map(), first.id)->alive);  // and nothing is placed on it yet
  auto confirmed = Beat(7002, 102, first.id);
  EXPECT_EQ(confirmed.id, first.id);
  EXPECT_FALSE(confirmed.reset_store);
  EXPECT_TRUE(Find(reg_->Map(), first.id)->alive);
  auto late = Beat(7002, 102, ids[1]);  // one more from the past
  EXPECT_EQ(late.id, first.id);
  EXPECT_FALSE(late.reset_store);  // it holds placed copies now: never again
  EXPECT_EQ(StateOf(first.id), NodeState::kIn);
  size_t in = 0;
  for (const auto& n : reg_->Map().nodes) in += n.state == NodeState::kIn;
  EXPECT_EQ(in, 5u);
}

TEST_F(NodesTest, DownOutNeverLeavesFewerNodesInThanCopies) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 3; p++) {
    ids.push_back(Beat(7000 + p, 100 + p).id);
    ASSERT_TRUE(reg_->Admit(ids.back(), "", "", UINT32_MAX, false).ok());
  }
  now_ += 10 * 60000;
  EXPECT_EQ(reg_->ApplyDownOut(), 0u);
  for (uint32_t id : ids) EXPECT_EQ(StateOf(id), NodeState::kIn);
}

TEST_F(NodesTest, AliveWhileHeartbeatsOrGossipSaySo) {
  bool gossip_says = false;
  reg_.reset();
  NodeRegistry::Options o;
  o.node_timeout_ms = 1000;
  o.now_ms = [this] { return now_; };
  o.gossip_alive = [&](uint32_t) -> std::optional<bool> { return gossip_says; };
  std::vector<uint64_t> announced;
  o.on_epoch = [&](uint64_t e) { announced.push_back(e); };
  reg_ = std::move(NodeRegistry::Open(&ns_->env(), o)).value();
  uint32_t id = Beat(7001, 1).id;
  EXPECT_TRUE(Find(reg_->Map(), id)->alive);  // heartbeating: gossip's down is not enough
  now_ += 5000;
  EXPECT_FALSE(Find(reg_->Map(), id)->alive);  // both lost it
  gossip_says = true;
  EXPECT_TRUE(Find(reg_->Map(), id)->alive);  // heard through the others
  ASSERT_FALSE(announced.empty());
  EXPECT_EQ(announced.back(), reg_->epoch());  // every new epoch is announced
}

// The plan of adding a node to a populated cluster: what moves is what the
// ring change gave the new node, about its share of every copy, and nothing
// else moves; every other node only loses.
TEST_F(NodesTest, PlanOfAnAddMovesTheChangedShare) {
  std::vector<uint32_t> ids;
  for (int p = 1; p <= 5; p++) {
    ids.push_back(Beat(7000 + p, 100 + p).id);
    ASSERT_TRUE(reg_->Admit(ids.back(), "", "", UINT32_MAX, false).ok());
  }
  // 20 files of 40 blocks, each block held by its placement.
  const wire::ClusterMap before = reg_->Map();
  const ring::Ring ring = ring::Ring::FromMap(before);
  constexpr int kFiles = 20, kBlocks = 40;
  for (int f = 0; f < kFiles; f++) {
    wire::MetaRequest mk;
    mk.parent = 1;
    mk.name = "f" + std::to_string(f);
    mk.mode = 0100644;
    wire::MetaReply made;
    ASSERT_TRUE(ns_->Write(wire::Op::kMknod, mk, &made).ok());
    wire::MetaRequest c;
    c.ino = made.attr.ino;
    c.size = uint64_t{kBlocks} * wire::kBlockSize;
    for (uint64_t i = 0; i < kBlocks; i++) {
      wire::BlockState b;
      b.index = i;
      b.version = wire::BlockVersion{0, 1, 7};
      b.holders = ring.Replicas(ring::Ring::BlockKey(c.ino, i), 3);
      c.blocks.push_back(b);
    }
    wire::MetaReply rep;
    ASSERT_TRUE(ns_->Write(wire::Op::kCommitWrite, c, &rep).ok());
  }
  uint32_t added = Beat(7006, 106).id;
  auto after = reg_->Admit(added, "", "", UINT32_MAX, true);
  ASSERT_TRUE(after.ok());
  BlockReclaimer mover(ns_.get(), reg_.get(), {});
  auto plan = mover.Plan(before, *after);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  uint64_t in = 0, out = 0;
  double share = 0;
  for (const auto& m : *plan) {
    if (m.id == added) {
      share = m.share_after;
      EXPECT_EQ(m.bytes_out, 0u);
    } else {
      EXPECT_EQ(m.bytes_in, 0u) << "node " << m.id << " gains from an add";
    }
    in += m.bytes_in;
    out += m.bytes_out;
  }
  EXPECT_EQ(in, out);  // each copy made is one dropped
  const double copies = 3.0 * kFiles * kBlocks;
  const double ideal = copies * share * wire::kBlockSize;
  EXPECT_GT(in, 0u);
  EXPECT_LE(static_cast<double>(in), 1.10 * ideal) << "moved " << in << " ideal " << ideal;
  EXPECT_GE(static_cast<double>(in), 0.80 * ideal);
  // The plan of no change moves nothing.
  auto none = mover.Plan(before, before);
  ASSERT_TRUE(none.ok());
  for (const auto& m : *none) EXPECT_EQ(m.bytes_in + m.bytes_out, 0u);
}

}  // namespace
}  // namespace ringfs::meta
