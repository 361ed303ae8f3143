// The metadata journal: records, recovery from torn and damaged tails,
// segments, flushing; and the store built on it (checkpoint, replay, a
// consistent namespace after any cut of the journal).
#include "meta/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "meta/namespace.h"

namespace ringfs::meta {
namespace {

namespace fs = std::filesystem;
using wire::MetaReply;
using wire::MetaRequest;
using wire::Op;

std::string TempDir() {
  char tmpl[] = "/tmp/ringfs-jnl-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "";
}

std::string Payload(uint64_t i) { return "change-" + std::to_string(i) + std::string(i % 7 * 13, 'x'); }

struct Replayed {
  std::vector<uint64_t> seqs;
  std::vector<std::string> payloads;
  Journal::Apply Fn() {
    return [this](uint64_t seq, std::string_view p) {
      seqs.push_back(seq);
      payloads.emplace_back(p);
      return Status::OK();
    };
  }
};

std::vector<fs::path> Segments(const std::string& dir) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jnl") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    ASSERT_FALSE(dir_.empty());
    opts_.dir = dir_ + "/j";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Journal> Open(uint64_t after, Replayed* r, JournalOptions o) {
    auto j = Journal::Open(o, after, r->Fn());
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? std::move(j).value() : nullptr;
  }
  std::unique_ptr<Journal> Open(uint64_t after, Replayed* r) { return Open(after, r, opts_); }
  // Writes records 1..n into a fresh journal and closes it.
  void Fill(uint64_t n) {
    Replayed r;
    auto j = Open(0, &r);
    ASSERT_TRUE(j);
    for (uint64_t i = 1; i <= n; i++) {
      auto seq = j->Append(Payload(i));
      ASSERT_TRUE(seq.ok());
      ASSERT_EQ(*seq, i);
    }
  }
  std::string dir_;
  JournalOptions opts_;
};

TEST(JournalRecord, RoundTripAndEveryFlippedByteIsCaught) {
  const std::string p = "some payload bytes";
  const std::string rec = journal::Encode(42, p);
  uint64_t seq = 0;
  std::string_view got;
  ASSERT_EQ(journal::Decode(rec, &seq, &got), rec.size());
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(got, p);
  for (size_t i = 0; i < rec.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = rec;
      bad[i] ^= static_cast<char>(1 << bit);
      EXPECT_EQ(journal::Decode(bad, &seq, &got), 0u) << "byte " << i << " bit " << bit;
    }
  }
  for (size_t cut = 0; cut < rec.size(); cut++)
    EXPECT_EQ(journal::Decode(std::string_view(rec).substr(0, cut), &seq, &got), 0u) << cut;
}

TEST_F(JournalTest, ReplaysEverythingInOrderAndGoesOnAfterIt) {
  Fill(100);
  Replayed r;
  auto j = Open(0, &r);
  ASSERT_TRUE(j);
  ASSERT_EQ(r.seqs.size(), 100u);
  for (uint64_t i = 1; i <= 100; i++) {
    EXPECT_EQ(r.seqs[i - 1], i);
    EXPECT_EQ(r.payloads[i - 1], Payload(i));
  }
  EXPECT_EQ(j->written_seq(), 100u);
  EXPECT_EQ(j->durable_seq(), 100u);
  EXPECT_EQ(*j->Append("next"), 101u);
  j.reset();
  Replayed again;
  j = Open(60, &again);  // a checkpoint covers 1..60
  ASSERT_EQ(again.seqs.size(), 41u);
  EXPECT_EQ(again.seqs.front(), 61u);
  EXPECT_EQ(again.payloads.back(), "next");
}

// A cut at every byte of the last records (a torn tail after a power
// loss): exactly the whole records before the cut come back, and the
// journal goes on after them.
TEST_F(JournalTest, CutAtEveryByteOfTheTailYieldsTheWholeRecordsBeforeIt) {
  Fill(20);
  const fs::path seg = Segments(opts_.dir).at(0);
  const uint64_t size = fs::file_size(seg);
  std::vector<uint64_t> ends;  // end offset of each record
  {
    uint64_t off = 0;
    for (uint64_t i = 1; i <= 20; i++) ends.push_back(off += journal::kHeaderBytes + Payload(i).size());
  }
  ASSERT_EQ(ends.back(), size);
  const std::string saved = dir_ + "/saved.jnl";
  fs::copy_file(seg, saved);
  for (uint64_t cut = ends[16]; cut <= size; cut++) {
    fs::copy_file(saved, seg, fs::copy_options::overwrite_existing);
    ASSERT_EQ(truncate(seg.c_str(), static_cast<off_t>(cut)), 0);
    const uint64_t whole = std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin();
    Replayed r;
    auto j = Open(0, &r);
    ASSERT_TRUE(j);
    ASSERT_EQ(r.seqs.size(), whole) << "cut at " << cut;
    EXPECT_EQ(fs::file_size(seg), ends[whole - 1]);  // the torn bytes are gone
    ASSERT_EQ(*j->Append("after"), whole + 1);
    j.reset();
    Replayed again;
    j = Open(0, &again);
    ASSERT_EQ(again.seqs.size(), whole + 1) << "cut at " << cut;
    EXPECT_EQ(again.payloads.back(), "after");
  }
}

TEST_F(JournalTest, AFlippedByteEndsTheJournalAtTheDamagedRecord) {
  opts_.segment_bytes = 4096;  // several segments: the later ones go too
  Fill(200);
  ASSERT_GT(Segments(opts_.dir).size(), 3u);
  // Damage record 30 (in the first segment).
  const fs::path first = Segments(opts_.dir).at(0);
  uint64_t off = 0;
  for (uint64_t i = 1; i < 30; i++) off += journal::kHeaderBytes + Payload(i).size();
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off + journal::kHeaderBytes + 3));
    f.put('#');
  }
  Replayed r;
  auto j = Open(0, &r);
  ASSERT_TRUE(j);
  EXPECT_EQ(r.seqs.size(), 29u);
  EXPECT_EQ(Segments(opts_.dir).size(), 1u);
  EXPECT_EQ(*j->Append("x"), 30u);
}

TEST_F(JournalTest, SegmentsRollAndReleaseRemovesOnlyCoveredOnes) {
  opts_.segment_bytes = 4096;
  Replayed none;
  auto j = Open(0, &none);
  for (uint64_t i = 1; i <= 300; i++) ASSERT_TRUE(j->Append(Payload(i)).ok());
  const size_t before = Segments(opts_.dir).size();
  ASSERT_GT(before, 5u);
  EXPECT_EQ(j->stats().segments, before);
  // Rolling to a new segment syncs the old one first.
  EXPECT_GE(j->durable_seq(), 250u);
  ASSERT_TRUE(j->Release(150).ok());
  const auto left = Segments(opts_.dir);
  EXPECT_LT(left.size(), before);
  // What is left starts at or before 151, and replays 151..300 intact.
  j.reset();
  Replayed r;
  j = Open(150, &r);
  ASSERT_TRUE(j);
  ASSERT_EQ(r.seqs.size(), 150u);
  EXPECT_EQ(r.seqs.front(), 151u);
  EXPECT_EQ(r.seqs.back(), 300u);
  ASSERT_TRUE(j->Release(1000).ok());
  EXPECT_EQ(Segments(opts_.dir).size(), 1u);  // never the one being written
  EXPECT_EQ(*j->Append("y"), 301u);
}

TEST_F(JournalTest, AMissingSegmentIsAnErrorNotASilentGap) {
  opts_.segment_bytes = 4096;
  Fill(300);
  auto segs = Segments(opts_.dir);
  ASSERT_GT(segs.size(), 3u);
  fs::remove(segs[1]);
  auto j = Journal::Open(opts_, 0, [](uint64_t, std::string_view) { return Status::OK(); });
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), EUCLEAN);
}

TEST_F(JournalTest, FlushesLagUntilSyncAndWaitersShareOne) {
  opts_.flush_interval_ms = 60000;
  Replayed none;
  auto j = Open(0, &none);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(j->Append("a").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(j->durable_seq(), 0u);
  std::atomic<int> called{0};
  j->WhenDurable(5, [&] { called++; });
  j->WhenDurable(10, [&] { called++; });
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_GE(j->durable_seq(), 10u);
  for (int i = 0; i < 100 && called < 2; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(called.load(), 2);
  EXPECT_LE(j->stats().flushes, 2u);
  j->WhenDurable(3, [&] { called++; });  // already durable: at once
  EXPECT_EQ(called.load(), 3);
}

TEST_F(JournalTest, DefaultIntervalReachesDiskWithoutBeingAsked) {
  opts_.flush_interval_ms = 10;
  Replayed none;
  auto j = Open(0, &none);
  ASSERT_TRUE(j->Append("a").ok());
  for (int i = 0; i < 200 && j->durable_seq() < 1; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(j->durable_seq(), 1u);
}

// ----------------------------------------------------------- the store

MetaRequest CreateReq(const std::string& name) {
  MetaRequest q;
  q.parent = 1;
  q.name = name;
  q.mode = S_IFREG | 0644;
  return q;
}

class StoreJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }
  Namespace::Options Opts() {
    Namespace::Options o;
    o.dir = dir_;
    o.durability.checkpoint_ms = 3600000;  // only when the test asks
    return o;
  }
  // In a child process: creates f0..f(n-1), checkpointing after `checkpoint_at`
  // of them (if < n), then exits without closing anything, as kill -9 would.
  void CrashAfterCreates(int n, int checkpoint_at) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto ns = Namespace::Open(Opts());
      if (!ns.ok()) _exit(2);
      for (int i = 0; i < n; i++) {
        if (i == checkpoint_at && !(*ns)->env().Checkpoint().ok()) _exit(3);
        MetaReply rep;
        if (!(*ns)->Write(Op::kMknod, CreateReq("f" + std::to_string(i)), &rep).ok()) _exit(4);
      }
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  // The names in the root, checked against lookups and the file count.
  std::set<std::string> Consistent(Namespace& ns) {
    std::set<std::string> names;
    MetaRequest q;
    q.ino = 1;
    q.max_entries = 100000;
    MetaReply rep;
    EXPECT_TRUE(ns.Read(Op::kReaddir, q, &rep).ok());
    for (auto& e : rep.entries) {
      if (e.name == "." || e.name == "..") continue;
      names.insert(e.name);
      MetaRequest l;
      l.parent = 1;
      l.name = e.name;
      MetaReply lr;
      EXPECT_TRUE(ns.Read(Op::kLookup, l, &lr).ok()) << e.name;
      EXPECT_EQ(lr.attr.ino, e.ino);
    }
    MetaReply st;
    EXPECT_TRUE(ns.Read(Op::kStatfs, MetaRequest{}, &st).ok());
    EXPECT_EQ(st.statfs.files, names.size() + 1);
    return names;
  }
  std::string dir_;
};

TEST_F(StoreJournalTest, ProcessCrashLosesNothingAcrossCheckpoints) {
  CrashAfterCreates(300, 120);
  {
    auto ns = Namespace::Open(Opts());
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    lmdb::StoreStats s = (*ns)->env().stats();
    EXPECT_GT(s.checkpoint_seq, 0u);
    EXPECT_GT(s.replayed, 0u);  // the creates after the checkpoint
    EXPECT_EQ(Consistent(**ns).size(), 300u);
    // More, and a clean close (a last checkpoint), then a reopen replays nothing.
    MetaReply rep;
    ASSERT_TRUE((*ns)->Write(Op::kMknod, CreateReq("g"), &rep).ok());
  }
  auto ns = Namespace::Open(Opts());
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ((*ns)->env().stats().replayed, 0u);
  EXPECT_EQ(Consistent(**ns).size(), 301u);
}

// Power loss: whatever part of the journal's tail the disk kept, the store
// opens with a prefix of the creates, and the namespace is consistent.
TEST_F(StoreJournalTest, AnyCutOfTheJournalGivesAConsistentPrefix) {
  CrashAfterCreates(40, 10);  // checkpoint after 10: 30 creates only in the journal
  const std::string saved = dir_ + "/saved";
  fs::copy(dir_ + "/journal", saved);
  fs::copy(dir_ + "/meta.lmdb", saved + ".lmdb");
  const auto segs = Segments(dir_ + "/journal");
  ASSERT_EQ(segs.size(), 1u);
  const uint64_t size = fs::file_size(segs[0]);
  size_t last = 10;
  for (uint64_t cut = 0;; cut = std::min(cut + 97, size)) {
    fs::remove_all(dir_ + "/journal");
    fs::remove_all(dir_ + "/meta.lmdb");
    fs::copy(saved, dir_ + "/journal");
    fs::copy(saved + ".lmdb", dir_ + "/meta.lmdb");
    ASSERT_EQ(truncate(segs[0].c_str(), static_cast<off_t>(cut)), 0);
    auto ns = Namespace::Open(Opts());
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    std::set<std::string> names = Consistent(**ns);
    ASSERT_GE(names.size(), 10u) << "the checkpoint holds the first 10";
    ASSERT_GE(names.size(), last) << "a longer journal gave fewer files";
    for (size_t i = 0; i < names.size(); i++) ASSERT_TRUE(names.count("f" + std::to_string(i))) << i;
    last = names.size();
    if (cut == size) break;
  }
  EXPECT_EQ(last, 40u);
}

TEST_F(StoreJournalTest, StrictModeMakesEveryCommitDurable) {
  Namespace::Options o = Opts();
  o.durability.strict = true;
  o.durability.flush_interval_ms = 60000;
  auto ns = Namespace::Open(o);
  ASSERT_TRUE(ns.ok());
  // The store itself does not wait (the service holds replies); a strict
  // journal flushes at once without being asked.
  MetaReply rep;
  ASSERT_TRUE((*ns)->Write(Op::kMknod, CreateReq("s"), &rep).ok());
  Journal& j = (*ns)->env().journal();
  for (int i = 0; i < 200 && j.durable_seq() < rep.seq; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(j.durable_seq(), rep.seq);
}

TEST_F(StoreJournalTest, ASecondTransactionOnOneThreadIsRefusedNotADeadlock) {
  auto ns = Namespace::Open(Opts());
  ASSERT_TRUE(ns.ok());
  auto t = lmdb::Txn::Read((*ns)->env());
  ASSERT_TRUE(t.ok());
  auto u = lmdb::Txn::Write((*ns)->env());
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), EDEADLK);
  EXPECT_EQ(t->Put(lmdb::Table::kCounters, "x", "y").code(), EACCES);  // reads cannot write
}

}  // namespace
}  // namespace ringfs::meta
