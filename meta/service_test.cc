#include "meta/service.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace ringfs::meta {
namespace {

using wire::MetaReply;
using wire::MetaRequest;
using wire::Op;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kRoot = 1;
constexpr int kTimeoutMs = 5000;

std::string TempDir() {
  char tmpl[] = "/tmp/ringfs-svc-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "";
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

Status Create(rpc::Channel& ch, const std::string& name, MetaReply* rep = nullptr,
              int timeout_ms = kTimeoutMs) {
  MetaRequest q;
  q.parent = kRoot;
  q.name = name;
  q.mode = S_IFREG | 0644;
  return ch.Invoke(Op::kMknod, q, rep, timeout_ms);
}

Status Lookup(rpc::Channel& ch, const std::string& name, MetaReply* rep = nullptr) {
  MetaRequest q;
  q.parent = kRoot;
  q.name = name;
  return ch.Invoke(Op::kLookup, q, rep, kTimeoutMs);
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    ASSERT_FALSE(dir_.empty());
    opts_.dir = dir_;
    opts_.addr_file = dir_ + "/addr";
  }
  void TearDown() override {
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    auto s = Service::Open(opts_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(s).value();
    ASSERT_TRUE(svc_->Start().ok());
    ch_ = std::make_unique<rpc::Channel>(svc_->endpoint());
  }
  Result<wire::ClusterMap> Register(wire::NodeInfo n, uint32_t* id) {
    MetaRequest q;
    q.node = std::move(n);
    MetaReply p;
    RETURN_IF_ERROR(ch_->Invoke(Op::kRegisterNode, q, &p, kTimeoutMs));
    *id = p.node_id;
    return p.map;
  }
  // `ringfs node add` of a registered (joining) node.
  Status Admit(uint32_t id) {
    MetaRequest q;
    q.node.id = id;
    q.node.weight = UINT32_MAX;
    MetaReply p;
    return ch_->Invoke(Op::kNodeAdd, q, &p, kTimeoutMs);
  }

  std::string dir_;
  ServiceOptions opts_;
  std::unique_ptr<Service> svc_;
  std::unique_ptr<rpc::Channel> ch_;
};

TEST_F(ServiceTest, NamespaceOpsOverRpc) {
  Start();
  std::ifstream addr(opts_.addr_file);
  std::string published;
  std::getline(addr, published);
  EXPECT_EQ(published, svc_->endpoint());

  MetaRequest mk;
  mk.parent = kRoot;
  mk.name = "dir";
  mk.mode = 0755;
  MetaReply d;
  ASSERT_TRUE(ch_->Invoke(Op::kMkdir, mk, &d, kTimeoutMs).ok());
  MetaReply f;
  ASSERT_TRUE(Create(*ch_, "file", &f).ok());
  EXPECT_EQ(Create(*ch_, "file").code(), EEXIST);

  MetaReply p;
  ASSERT_TRUE(Lookup(*ch_, "dir", &p).ok());
  EXPECT_EQ(p.attr.ino, d.attr.ino);
  EXPECT_EQ(Lookup(*ch_, "nope").code(), ENOENT);

  MetaRequest rd;
  rd.ino = kRoot;
  ASSERT_TRUE(ch_->Invoke(Op::kReaddir, rd, &p, kTimeoutMs).ok());
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_TRUE(p.eof);
  EXPECT_EQ(p.entries[0].name, "dir");
  EXPECT_EQ(p.entries[1].name, "file");

  MetaRequest cw;
  cw.ino = f.attr.ino;
  cw.size = 4096;
  ASSERT_TRUE(ch_->Invoke(Op::kCommitWrite, cw, &p, kTimeoutMs).ok());
  EXPECT_EQ(p.attr.size, 4096u);
  MetaRequest ga;
  ga.ino = f.attr.ino;
  ASSERT_TRUE(ch_->Invoke(Op::kGetAttr, ga, &p, kTimeoutMs).ok());
  EXPECT_EQ(p.attr.size, 4096u);

  ASSERT_TRUE(ch_->Invoke(Op::kStatfs, MetaRequest{}, &p, kTimeoutMs).ok());
  EXPECT_EQ(p.statfs.files, 3u);
  EXPECT_EQ(p.statfs.total_bytes, 0u);  // no block nodes yet
}

TEST_F(ServiceTest, BadInputGetsErrorsNotCrashes) {
  Start();
  auto r = ch_->Call(Op::kLookup, "\xff\xff\xff\xff garbage", nullptr, kTimeoutMs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), EPROTO);
  r = ch_->Call(Op::kMkdir, "", nullptr, kTimeoutMs);  // a mutation too
  EXPECT_EQ(r.status().code(), EPROTO);
  r = ch_->Call(static_cast<Op>(999), "", nullptr, kTimeoutMs);
  EXPECT_EQ(r.status().code(), EOPNOTSUPP);
  r = ch_->Call(Op::kBlockRead, codec::Encode(wire::BlockRequest{}), nullptr, kTimeoutMs);
  EXPECT_EQ(r.status().code(), EOPNOTSUPP);
  MetaRequest huge;
  huge.parent = kRoot;
  huge.name.assign(100000, 'n');
  EXPECT_EQ(ch_->Invoke(Op::kMknod, huge, static_cast<MetaReply*>(nullptr), kTimeoutMs).code(),
            ENAMETOOLONG);
  EXPECT_EQ(ch_->Invoke(Op::kLookup, huge, static_cast<MetaReply*>(nullptr), kTimeoutMs).code(),
            ENAMETOOLONG);
  EXPECT_TRUE(Create(*ch_, "still-serving").ok());
}

TEST_F(ServiceTest, NodeRegistryAndClusterMap) {
  opts_.node_timeout_ms = 300;
  opts_.replicas = 2;
  Start();
  wire::NodeInfo a;
  a.addr = "tcp://127.0.0.1:7001";
  a.zone = "z1";
  a.capacity = 1000;
  a.used = 100;
  uint32_t id_a = 0, id_b = 0, again = 0;
  auto m1 = Register(a, &id_a);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(id_a, 1u);
  EXPECT_EQ(m1->replicas, 2u);
  ASSERT_EQ(m1->nodes.size(), 1u);
  EXPECT_TRUE(m1->nodes[0].alive);
  wire::NodeInfo b = a;
  b.addr = "tcp://127.0.0.1:7002";
  b.zone = "z2";
  auto m2 = Register(b, &id_b);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(id_b, 2u);
  EXPECT_GT(m2->epoch, m1->epoch);
  EXPECT_EQ(m2->nodes[1].state, wire::NodeState::kJoining);
  ASSERT_TRUE(Admit(id_a).ok());
  ASSERT_TRUE(Admit(id_b).ok());
  EXPECT_EQ(Admit(id_b).code(), EEXIST);
  EXPECT_EQ(Admit(77).code(), ENOENT);
  m2 = Register(b, &id_b);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->nodes[1].state, wire::NodeState::kIn);
  // A node that lost its id file gets its old id back by address.
  auto m3 = Register(a, &again);
  ASSERT_TRUE(m3.ok());
  EXPECT_EQ(again, id_a);
  EXPECT_EQ(m3->epoch, m2->epoch);  // a plain heartbeat changes nothing

  MetaReply p;
  ASSERT_TRUE(ch_->Invoke(Op::kStatfs, MetaRequest{}, &p, kTimeoutMs).ok());
  EXPECT_EQ(p.statfs.total_bytes, 1000u);  // 2000 raw over 2 copies
  EXPECT_EQ(p.statfs.free_bytes, 900u);

  // Keep a alive, let b time out.
  for (int i = 0; i < 6; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    a.id = id_a;
    ASSERT_TRUE(Register(a, &again).ok());
  }
  ASSERT_TRUE(ch_->Invoke(Op::kGetMap, MetaRequest{}, &p, kTimeoutMs).ok());
  ASSERT_EQ(p.map.nodes.size(), 2u);
  EXPECT_TRUE(p.map.nodes[0].alive);
  EXPECT_FALSE(p.map.nodes[1].alive);
  EXPECT_GT(p.map.epoch, m3->epoch);
  const uint64_t before_restart = p.map.epoch;

  // Identities survive a restart; liveness starts over; the epoch never goes back.
  svc_.reset();
  Start();
  ASSERT_TRUE(ch_->Invoke(Op::kGetMap, MetaRequest{}, &p, kTimeoutMs).ok());
  ASSERT_EQ(p.map.nodes.size(), 2u);
  EXPECT_EQ(p.map.nodes[1].addr, "tcp://127.0.0.1:7002");
  EXPECT_EQ(p.map.nodes[1].zone, "z2");
  EXPECT_FALSE(p.map.nodes[0].alive);
  EXPECT_GT(p.map.epoch, before_restart);
  wire::NodeInfo c;
  c.addr = "tcp://127.0.0.1:7003";
  uint32_t id_c = 0;
  ASSERT_TRUE(Register(c, &id_c).ok());
  EXPECT_EQ(id_c, 3u);
  c.addr.clear();
  EXPECT_EQ(Register(c, &id_c).status().code(), EINVAL);
}

// A stand-in block daemon that records the inodes it was told to delete.
struct FakeBlockd {
  std::mutex mu;
  std::multiset<uint64_t> deleted;
  rpc::Server server{
      "tcp://127.0.0.1:*", 1, [this](rpc::Message&& m, rpc::Responder&& r) {
        wire::BlockRequest req;
        if (m.env.op != static_cast<uint16_t>(Op::kBlockDelete) || !m.DecodeBody(req).ok()) {
          return r.Reply(Status::Error(EOPNOTSUPP));
        }
        std::lock_guard<std::mutex> lock(mu);
        deleted.insert(req.ino);
        r.Reply(Status::OK());
      }};
  size_t Count(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mu);
    return deleted.count(ino);
  }
};

bool WaitUntil(const std::function<bool()>& cond, int ms = 5000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

TEST_F(ServiceTest, ReclaimedBlocksAreDeletedOnEveryNode) {
  opts_.node_timeout_ms = 400;
  opts_.gc_interval_ms = 100;
  Start();
  FakeBlockd one, two;
  ASSERT_TRUE(one.server.Start().ok());
  ASSERT_TRUE(two.server.Start().ok());
  wire::NodeInfo n1, n2;
  n1.addr = one.server.endpoint();
  n2.addr = "tcp://127.0.0.1:1";  // node 2 is down for now
  uint32_t id1 = 0, id2 = 0;
  ASSERT_TRUE(Register(n1, &id1).ok());
  ASSERT_TRUE(Register(n2, &id2).ok());
  ASSERT_TRUE(Admit(id1).ok());
  ASSERT_TRUE(Admit(id2).ok());

  MetaReply f;
  ASSERT_TRUE(Create(*ch_, "doomed", &f).ok());
  const uint64_t ino = f.attr.ino;
  MetaRequest un;
  un.parent = kRoot;
  un.name = "doomed";
  ASSERT_TRUE(ch_->Invoke(Op::kUnlink, un, &f, kTimeoutMs).ok());
  EXPECT_EQ(f.attr.nlink, 0u);
  EXPECT_EQ(one.Count(ino), 0u);  // orphaned, not yet reclaimed
  MetaRequest rc;
  rc.ino = ino;
  ASSERT_TRUE(ch_->Invoke(Op::kReclaim, rc, &f, kTimeoutMs).ok());
  EXPECT_TRUE(WaitUntil([&] { return one.Count(ino) == 1; }));

  // Node 2 comes back at a new address: it gets the delete too.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // node 2 times out
  n2.id = id2;
  n2.addr = two.server.endpoint();
  n1.id = id1;
  EXPECT_TRUE(WaitUntil([&] {
    // Heartbeats, as the daemons send them.
    return Register(n1, &id1).ok() && Register(n2, &id2).ok() && two.Count(ino) == 1;
  }));
  EXPECT_EQ(one.Count(ino), 1u);  // each node is asked until it answers, not more

  // The entry is gone once every node acknowledged (dropped right after
  // the last acknowledgement; the store is checked with the service down).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  svc_.reset();
  Namespace::Options o;
  o.dir = dir_;
  auto ns = Namespace::Open(o);
  ASSERT_TRUE(ns.ok());
  EXPECT_TRUE((*ns)->PendingGc(10)->empty());
}

// Many clients at once in strict mode: all succeed, every reply left only
// once its change was on disk, and the clients shared flushes.
TEST_F(ServiceTest, StrictRepliesAreDurableAndShareFlushes) {
  opts_.strict = true;
  Start();
  constexpr int kThreads = 8, kPerThread = 250;
  const uint64_t flushes_before = svc_->journal_state().flushes;
  std::atomic<int> ok{0}, early{0};
  std::vector<std::thread> ts;
  auto t0 = Clock::now();
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; i++) {
        MetaReply rep;
        if (!Create(*ch_, "t" + std::to_string(t) + "-" + std::to_string(i), &rep).ok()) continue;
        ok++;
        if (rep.seq == 0 || rep.durable_seq < rep.seq) early++;
      }
    });
  }
  for (auto& t : ts) t.join();
  const double rate = kThreads * kPerThread / Seconds(t0);
  const uint64_t flushes = svc_->journal_state().flushes - flushes_before;
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(early.load(), 0) << "replies sent before their journal record was on disk";
  EXPECT_LT(flushes, static_cast<uint64_t>(kThreads * kPerThread));
  std::printf("strict: %d clients %.0f creates/s, %lu flushes for %d creates\n", kThreads, rate,
              static_cast<unsigned long>(flushes), kThreads * kPerThread);
  MetaReply p;
  ASSERT_TRUE(ch_->Invoke(Op::kStatfs, MetaRequest{}, &p, kTimeoutMs).ok());
  EXPECT_EQ(p.statfs.files, 1u + kThreads * kPerThread);
}

// Default mode: replies do not wait for the disk (with a long flush
// interval they are ahead of it), and kSyncMeta returns once everything
// acknowledged before it is durable.
TEST_F(ServiceTest, SyncMetaCoversEveryAcknowledgedChange) {
  opts_.flush_interval_ms = 60000;
  Start();
  uint64_t last = 0, behind = 0;
  for (int i = 0; i < 50; i++) {
    MetaReply rep;
    ASSERT_TRUE(Create(*ch_, "f" + std::to_string(i), &rep).ok());
    ASSERT_GT(rep.seq, last);
    last = rep.seq;
    behind += rep.durable_seq < rep.seq;
  }
  EXPECT_GT(behind, 0u) << "with a 60 s interval, replies should not have waited for the disk";
  EXPECT_LT(svc_->journal_state().durable_seq, last);
  MetaReply s;
  auto t0 = Clock::now();
  ASSERT_TRUE(ch_->Invoke(Op::kSyncMeta, MetaRequest{}, &s, kTimeoutMs).ok());
  EXPECT_LT(Seconds(t0), 5.0);
  EXPECT_GE(s.journal.durable_seq, last);
  EXPECT_GE(svc_->journal_state().durable_seq, last);
  EXPECT_FALSE(s.journal.strict);
}

// ------------------------------------------------------------ crash test

pid_t SpawnMeta(const std::string& dir, const std::string& addr_file,
                const std::vector<std::string>& extra = {}) {
  unlink(addr_file.c_str());
  std::vector<std::string> args = {RINGFS_META_BIN, "--dir", dir, "--addr-file", addr_file};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::string WaitForAddr(const std::string& addr_file) {
  std::string addr;
  WaitUntil([&] {
    std::ifstream in(addr_file);
    return std::getline(in, addr) && !addr.empty();
  });
  return addr;
}

// kill -9 in the middle of a create storm, three times over one store;
// with the second parameter, checkpoints every 10 ms and an 8 KiB journal
// segment make the kills land in checkpoints and segment switches.
class ServiceCrash : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(ServiceCrash, AcknowledgedCreatesSurviveKill9) {
  const std::string dir = TempDir();
  const std::string addr_file = dir + "/addr";
  std::vector<std::string> acked;
  for (int round = 0; round < 3; round++) {
    pid_t pid = SpawnMeta(dir, addr_file, GetParam());
    ASSERT_GT(pid, 0);
    std::string addr = WaitForAddr(addr_file);
    ASSERT_FALSE(addr.empty());

    rpc::Channel ch(addr);
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    const size_t target = acked.size() + 400 + 300 * round;
    for (int t = 0; t < 4; t++) {
      ts.emplace_back([&, t] {
        for (int i = 0; !stop; i++) {
          std::string name = "c" + std::to_string(round) + "-" + std::to_string(t) + "-" + std::to_string(i);
          Status st = Create(ch, name, nullptr, 1000);
          if (!st.ok()) break;  // the service is gone
          std::lock_guard<std::mutex> lock(mu);
          acked.push_back(name);
        }
      });
    }
    ASSERT_TRUE(WaitUntil(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return acked.size() >= target;
        },
        20000));
    kill(pid, SIGKILL);  // mid-burst: four clients are still creating
    int status = 0;
    waitpid(pid, &status, 0);
    stop = true;
    for (auto& t : ts) t.join();
  }
  pid_t pid = SpawnMeta(dir, addr_file, GetParam());
  std::string addr = WaitForAddr(addr_file);
  ASSERT_FALSE(addr.empty());
  rpc::Channel again(addr);
  size_t missing = 0;
  for (const auto& name : acked) missing += !Lookup(again, name).ok();
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged creates";
  MetaReply p;
  ASSERT_TRUE(again.Invoke(Op::kStatfs, MetaRequest{}, &p, kTimeoutMs).ok());
  EXPECT_GE(p.statfs.files, 1u + acked.size());  // plus creates in flight at each kill
  EXPECT_LE(p.statfs.files, 1u + acked.size() + 3 * 4);
  std::printf("%zu acknowledged creates over 3 kill -9s, %zu lost\n", acked.size(), missing);

  int status = 0;
  kill(pid, SIGTERM);  // a clean stop exits 0
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Journal, ServiceCrash,
                         ::testing::Values(std::vector<std::string>{},
                                           std::vector<std::string>{"--checkpoint-ms", "10",
                                                                    "--segment-bytes", "8192"}));

}  // namespace
}  // namespace ringfs::meta
