#include "blockd/service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/codec.h"
#include "common/rpc.h"
#include "common/wire.h"

namespace ringfs::blockd {
namespace {

using wire::Op;
constexpr int kTimeout = 5000;

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/blockd_service_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.dir = dir_;
    opts_.meta = "tcp://127.0.0.1:1";  // nothing there: registration just retries
    opts_.heartbeat_ms = 50;
    opts_.meta_timeout_ms = 50;
  }
  void TearDown() override {
    ch_.reset();
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartService() {
    ch_.reset();
    svc_.reset();
    auto s = BlockService::Start(opts_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(s).value();
    ch_ = std::make_unique<rpc::Channel>(svc_->endpoint());
  }

  Status Write(uint64_t ino, uint64_t index, uint32_t off, const std::string& d,
               uint32_t flags = 0) {
    // Each write builds on the version the block holds (absent: none).
    wire::BlockRequest req{.ino = ino, .index = index, .offset = off, .flags = flags};
    req.base = Held(ino, index);
    req.version = wire::BlockVersion{0, req.base.height + 1, 7};
    zmq::message_t data(d.data(), d.size());
    auto r = ch_->Call(Op::kBlockWrite, codec::Encode(req), &data, kTimeout);
    if (!r.ok()) return r.status();
    wire::BlockReply rep;
    RETURN_IF_ERROR(r->DecodeBody(rep));
    return rep.refused ? Status::Error(ESTALE, "refused") : Status::OK();
  }
  wire::BlockVersion Held(uint64_t ino, uint64_t index) {
    wire::BlockRequest req{.ino = ino, .index = index, .flags = wire::kBlockVersionOnly};
    wire::BlockReply rep;
    return ch_->Invoke(Op::kBlockRead, req, &rep, kTimeout).ok() ? rep.version : wire::BlockVersion{};
  }
  Result<std::string> Read(uint64_t ino, uint64_t index, uint32_t off, uint32_t len) {
    wire::BlockRequest req{.ino = ino, .index = index, .offset = off, .length = len,
                           .flags = wire::kBlockAnyVersion};
    auto r = ch_->Call(Op::kBlockRead, codec::Encode(req), nullptr, kTimeout);
    if (!r.ok()) return r.status();
    wire::BlockReply rep;
    RETURN_IF_ERROR(r->DecodeBody(rep));
    EXPECT_TRUE(r->has_data);
    EXPECT_EQ(rep.length, r->data.size());
    return std::string(r->data_view());
  }
  Result<wire::BlockReply> Simple(Op op, const wire::BlockRequest& req) {
    wire::BlockReply rep;
    RETURN_IF_ERROR(ch_->Invoke(op, req, &rep, kTimeout));
    return rep;
  }
  int RawErr(Op op, const std::string& body, zmq::message_t* data = nullptr) {
    auto r = ch_->Call(op, body, data, kTimeout);
    return r.ok() ? 0 : r.status().code();
  }

  std::string dir_;
  ServiceOptions opts_;
  std::unique_ptr<BlockService> svc_;
  std::unique_ptr<rpc::Channel> ch_;
};

TEST_F(ServiceTest, WritesAndReadsBlocks) {
  StartService();
  EXPECT_NE(svc_->endpoint().find("tcp://127.0.0.1:"), std::string::npos);
  std::string d = Pattern(wire::kBlockSize, 1);
  ASSERT_TRUE(Write(1, 0, 0, d).ok());
  auto r = Read(1, 0, 0, wire::kBlockSize);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, d);
  ASSERT_TRUE(Write(1, 1, 100, "hello", wire::kBlockSyncNow).ok());
  r = Read(1, 1, 0, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::string(100, '\0') + "hello");  // short: the caller zero-fills
  r = Read(1, 1, 1000, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
}

TEST_F(ServiceTest, MissingBlockIsEnoent) {
  StartService();
  auto r = Read(9, 0, 0, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOENT);
}

TEST_F(ServiceTest, TruncateDeleteAndList) {
  StartService();
  for (uint64_t i = 0; i < 3; i++) ASSERT_TRUE(Write(2, i, 0, Pattern(1000, i)).ok());
  auto l = Simple(Op::kBlockList, {.ino = 2});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->indices, (std::vector<uint64_t>{0, 1, 2}));
  ASSERT_TRUE(Simple(Op::kBlockTruncate, {.ino = 2, .size = wire::kBlockSize + 10}).ok());
  EXPECT_EQ(Simple(Op::kBlockList, {.ino = 2})->indices, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(*Read(2, 1, 0, 1000), Pattern(1000, 1).substr(0, 10));
  ASSERT_TRUE(Simple(Op::kBlockDelete, {.ino = 2}).ok());
  EXPECT_TRUE(Simple(Op::kBlockList, {.ino = 2})->indices.empty());
  EXPECT_EQ(Read(2, 0, 0, 10).status().code(), ENOENT);
}

TEST_F(ServiceTest, StatAndSync) {
  opts_.zone = "rack7";
  opts_.weight = 250;
  StartService();
  ASSERT_TRUE(Write(3, 0, 0, std::string(1234, 'x')).ok());
  ASSERT_TRUE(Write(3, 5, 10, "abc").ok());
  ASSERT_TRUE(Simple(Op::kBlockSync, {}).ok());
  auto s = Simple(Op::kBlockStat, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->stats.addr, svc_->endpoint());
  EXPECT_EQ(s->stats.zone, "rack7");
  EXPECT_EQ(s->stats.weight, 250u);
  EXPECT_EQ(s->stats.used, 1234u + 13);
  EXPECT_EQ(s->stats.blocks, 2u);
  EXPECT_GT(s->stats.capacity, 0u);
  EXPECT_TRUE(s->stats.alive);
  EXPECT_EQ(s->stats.id, 0u);  // never registered
}

TEST_F(ServiceTest, BadRequestsGetErrorsAndServingGoesOn) {
  StartService();
  EXPECT_EQ(RawErr(Op::kBlockRead, "x"), EPROTO);
  EXPECT_EQ(RawErr(Op::kBlockTruncate, ""), EPROTO);
  EXPECT_EQ(RawErr(Op::kBlockList, std::string("\xff\xff\xff\xff", 4)), EPROTO);
  zmq::message_t small("ab", 2);
  EXPECT_EQ(RawErr(Op::kBlockWrite, "garbage", &small), EPROTO);
  const std::string req = codec::Encode(wire::BlockRequest{.ino = 4});
  EXPECT_EQ(RawErr(Op::kBlockWrite, req), EPROTO);  // no data frame
  std::string big(wire::kBlockSize + 1, 'b');
  zmq::message_t oversized(big.data(), big.size());
  EXPECT_EQ(RawErr(Op::kBlockWrite, req, &oversized), EMSGSIZE);
  zmq::message_t two("ab", 2);
  const std::string past_end =
      codec::Encode(wire::BlockRequest{.ino = 4, .offset = wire::kBlockSize - 1});
  EXPECT_EQ(RawErr(Op::kBlockWrite, past_end, &two), EINVAL);
  const std::string huge_read =
      codec::Encode(wire::BlockRequest{.ino = 4, .offset = 10, .length = 0xFFFFFFFF});
  EXPECT_EQ(RawErr(Op::kBlockRead, huge_read), EINVAL);
  EXPECT_EQ(RawErr(Op::kLookup, req), EOPNOTSUPP);
  EXPECT_EQ(RawErr(static_cast<Op>(999), req), EOPNOTSUPP);
  ASSERT_TRUE(Write(4, 0, 0, "still serving").ok());
  EXPECT_EQ(*Read(4, 0, 0, 100), "still serving");
}

TEST_F(ServiceTest, ParallelClients) {
  StartService();
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < 10; i++) {
        std::string d = Pattern(300000, t * 100 + i);
        if (Write(5, t * 10 + i, 0, d).ok() && *Read(5, t * 10 + i, 0, wire::kBlockSize) == d) ok++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 80);
}

TEST_F(ServiceTest, DataSurvivesRestart) {
  StartService();
  ASSERT_TRUE(Write(6, 0, 0, "persistent").ok());
  svc_->Stop();
  StartService();
  EXPECT_EQ(*Read(6, 0, 0, 100), "persistent");
  EXPECT_EQ(Simple(Op::kBlockStat, {})->stats.blocks, 1u);
}

// A stand-in metadata service that hands out node id 7.
TEST_F(ServiceTest, RegistersAndPersistsNodeId) {
  std::mutex mu;
  std::vector<wire::NodeInfo> seen;
  rpc::Server meta("tcp://127.0.0.1:*", 1, [&](rpc::Message&& m, rpc::Responder&& r) {
    wire::MetaRequest req;
    if (m.env.op != uint16_t(Op::kRegisterNode) || !m.DecodeBody(req).ok())
      return r.Reply(Status::Error(EPROTO));
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(req.node);
    }
    wire::MetaReply rep;
    rep.node_id = 7;
    r.ReplyWith(rep);
  });
  ASSERT_TRUE(meta.Start().ok());
  opts_.meta = meta.endpoint();
  StartService();
  for (int i = 0; i < 200 && svc_->node_id() != 7; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(svc_->node_id(), 7u);
  std::ifstream f(dir_ + "/node_id");
  uint32_t stored = 0;
  f >> stored;
  EXPECT_EQ(stored, 7u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen[0].id, 0u);
    EXPECT_EQ(seen[0].addr, svc_->endpoint());
    EXPECT_TRUE(seen[0].alive);
    seen.clear();
  }
  // Heartbeats keep coming, now with the id; a restart starts with it too.
  StartService();
  EXPECT_EQ(svc_->node_id(), 7u);
  for (int i = 0; i < 200; i++) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen.size() >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  svc_->Stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(seen.size(), 2u);
  for (const auto& n : seen) EXPECT_EQ(n.id, 7u);
}

TEST_F(ServiceTest, CorruptNodeIdFileFailsStart) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/node_id") << "not a number";
  auto s = BlockService::Start(opts_);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace ringfs::blockd
