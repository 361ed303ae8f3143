#include "blockd/block_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "common/wire.h"

namespace ringfs::blockd {
namespace {

constexpr uint32_t kBlock = wire::kBlockSize;
constexpr uint32_t kChunk = 64 << 10;
constexpr off_t kDataStart = 4096;

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Equality without dumping megabytes of binary on failure.
::testing::AssertionResult Same(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) i++;
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes, want " << want.size() << ", first difference at " << i;
}

class BlockStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/block_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(BlockStoreOptions opts = {}) {
    store_.reset();
    auto s = BlockStore::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::string Path(uint64_t ino, uint64_t index) {
    char buf[64];
    snprintf(buf, sizeof buf, "/blocks/%02x/%lx/%lu", unsigned(ino & 0xff), ino, index);
    return dir_ + buf;
  }
  // Reads through the store; fails the test on error.
  std::string Get(uint64_t ino, uint64_t index, uint32_t off, uint32_t len) {
    auto r = store_->Read(ino, index, off, len);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::string(r->data(), r->size()) : std::string();
  }
  int ReadErr(uint64_t ino, uint64_t index, uint32_t off, uint32_t len) {
    auto r = store_->Read(ino, index, off, len);
    return r.ok() ? 0 : r.status().code();
  }
  void Put(uint64_t ino, uint64_t index, uint32_t off, const std::string& data) {
    Status st = store_->Write(ino, index, off, data);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // Overwrites bytes of a block file behind the store's back.
  void Poke(uint64_t ino, uint64_t index, off_t file_off, const std::string& bytes) {
    int fd = open(Path(ino, index).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), file_off), ssize_t(bytes.size()));
    close(fd);
  }
  void FlipByte(uint64_t ino, uint64_t index, off_t file_off) {
    int fd = open(Path(ino, index).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(pread(fd, &c, 1, file_off), 1);
    c ^= 0x40;
    ASSERT_EQ(pwrite(fd, &c, 1, file_off), 1);
    close(fd);
  }
  std::vector<uint64_t> Indices(uint64_t ino) {
    auto r = store_->List(ino);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r.value() : std::vector<uint64_t>{};
  }

  std::string dir_;
  std::unique_ptr<BlockStore> store_;
};

// Random writes against an in-memory model, around chunk boundaries.
TEST_F(BlockStoreTest, RoundTripsAtManyOffsetsAndLengths) {
  std::string model;  // the block's bytes; size() = length
  std::mt19937 rng(42);
  const uint32_t edges[] = {
      0,         1, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk - 7, kBlock / 2, kBlock - kChunk,
      kBlock - 1};
  for (int i = 0; i < 300; i++) {
    uint32_t off = i % 3 == 0 ? edges[rng() % std::size(edges)] : rng() % kBlock;
    uint32_t max_len = kBlock - off;
    uint32_t len = 1 + rng() % std::min<uint32_t>(max_len, i % 4 == 0 ? kBlock : 3 * kChunk);
    std::string data = Pattern(len, i);
    Put(1, 0, off, data);
    if (model.size() < off + len) model.resize(off + len, '\0');
    model.replace(off, len, data);
    uint32_t roff = rng() % model.size();
    uint32_t rlen = rng() % (kBlock - roff) + 1;
    ASSERT_TRUE(Same(Get(1, 0, roff, rlen), model.substr(roff, rlen))) << "step " << i;
  }
  ASSERT_TRUE(Same(Get(1, 0, 0, kBlock), model));
}

TEST_F(BlockStoreTest, AppendsAndSmallUnalignedWrites) {
  std::string model;
  for (int i = 0; i < 200; i++) {
    std::string d = Pattern(1000 + i * 37, i);
    Put(2, 0, model.size(), d);
    model += d;
  }
  EXPECT_TRUE(Same(Get(2, 0, 0, kBlock), model));
  EXPECT_TRUE(Same(Get(2, 0, 12345, 99999), model.substr(12345, 99999)));
}

TEST_F(BlockStoreTest, SparseGapsReadAsZeros) {
  Put(3, 0, 100, "head");
  const uint32_t far = 5 * kChunk + 333;
  Put(3, 0, far, "tail");
  std::string all = Get(3, 0, 0, kBlock);
  ASSERT_EQ(all.size(), far + 4);
  EXPECT_EQ(all.substr(100, 4), "head");
  EXPECT_EQ(all.substr(104, far - 104), std::string(far - 104, '\0'));
  EXPECT_EQ(all.substr(0, 100), std::string(100, '\0'));
  EXPECT_EQ(all.substr(far), "tail");
  // A block written only at its end.
  Put(3, 1, kBlock - 10, "0123456789");
  EXPECT_TRUE(Same(Get(3, 1, 0, kBlock), std::string(kBlock - 10, '\0') + "0123456789"));
}

TEST_F(BlockStoreTest, OverwriteKeepsSurroundingBytes) {
  std::string a = Pattern(3 * kChunk, 1), b = Pattern(kChunk, 2);
  Put(4, 0, 0, a);
  Put(4, 0, kChunk / 2, b);
  a.replace(kChunk / 2, kChunk, b);
  EXPECT_TRUE(Same(Get(4, 0, 0, kBlock), a));
  EXPECT_EQ(store_->Stats().used, 3u * kChunk);
}

TEST_F(BlockStoreTest, ReadsArePartialPastTheEnd) {
  Put(5, 0, 0, "abcdef");
  EXPECT_TRUE(Same(Get(5, 0, 2, 100), "cdef"));
  EXPECT_TRUE(Same(Get(5, 0, 6, 100), ""));
  EXPECT_TRUE(Same(Get(5, 0, 1000, 10), ""));
  EXPECT_EQ(ReadErr(5, 1, 0, 10), ENOENT);
  EXPECT_EQ(ReadErr(6, 0, 0, 10), ENOENT);
}

TEST_F(BlockStoreTest, RejectsRangesPastTheBlock) {
  EXPECT_EQ(store_->Write(7, 0, kBlock - 1, "ab").code(), EINVAL);
  EXPECT_EQ(store_->Write(7, 0, kBlock + 1, "a").code(), EINVAL);
  EXPECT_EQ(store_->Write(7, 0, 0, std::string(kBlock + 1, 'x')).code(), EINVAL);
  EXPECT_EQ(ReadErr(7, 0, kBlock, 1), EINVAL);
  EXPECT_EQ(ReadErr(7, 0, 1, kBlock), EINVAL);
  EXPECT_TRUE(store_->Write(7, 0, kBlock - 2, "ab").ok());
  EXPECT_TRUE(Indices(7) == std::vector<uint64_t>{0});
}

TEST_F(BlockStoreTest, CorruptDataIsEio) {
  std::string d = Pattern(4 * kChunk, 9);
  Put(8, 0, 0, d);
  FlipByte(8, 0, kDataStart + kChunk + 77);
  EXPECT_EQ(ReadErr(8, 0, kChunk + 77, 1), EIO);
  EXPECT_EQ(ReadErr(8, 0, 0, kBlock), EIO);
  // Other chunks still read.
  EXPECT_TRUE(Same(Get(8, 0, 0, kChunk), d.substr(0, kChunk)));
  EXPECT_TRUE(Same(Get(8, 0, 2 * kChunk, kChunk), d.substr(2 * kChunk, kChunk)));
  // A write that keeps bytes of the bad chunk is refused, not summed as good.
  EXPECT_EQ(store_->Write(8, 0, kChunk + 10, "x").code(), EIO);
  // One that replaces the chunk repairs it.
  Put(8, 0, kChunk, d.substr(kChunk, kChunk));
  EXPECT_TRUE(Same(Get(8, 0, 0, kBlock), d));
}

TEST_F(BlockStoreTest, CorruptTailChunkIsEio) {
  std::string d = Pattern(kChunk + 500, 10);
  Put(9, 0, 0, d);
  FlipByte(9, 0, kDataStart + kChunk + 499);
  EXPECT_EQ(ReadErr(9, 0, kChunk, 1), EIO);
  // Appending to the bad chunk extends its old sum: still caught.
  Put(9, 0, kChunk + 500, "more");
  EXPECT_EQ(ReadErr(9, 0, kChunk, 1), EIO);
}

TEST_F(BlockStoreTest, CorruptHeaderIsEio) {
  std::string d = Pattern(2 * kChunk, 11);
  Put(10, 0, 0, d);
  FlipByte(10, 0, 9);  // inside the length field
  EXPECT_EQ(ReadErr(10, 0, 0, 10), EIO);
  EXPECT_EQ(store_->Write(10, 0, 100, "x").code(), EIO);
  EXPECT_EQ(store_->Truncate(10, 5).code(), EIO);
  // A rewrite of every old byte from offset 0 (a repair) replaces the block.
  Put(10, 0, 0, d);
  EXPECT_TRUE(Same(Get(10, 0, 0, kBlock), d));

  FlipByte(10, 0, 200);  // a chunk checksum
  EXPECT_EQ(ReadErr(10, 0, 0, 10), EIO);
}

TEST_F(BlockStoreTest, BlockFileUnderTheWrongNameIsEio) {
  Put(11, 0, 0, "zero");
  Put(11, 1, 0, "one!");
  std::filesystem::copy_file(Path(11, 0), Path(11, 1),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(ReadErr(11, 1, 0, 4), EIO);
}

// Data written but the header never updated: the old sums catch the new bytes.
TEST_F(BlockStoreTest, TornOverwriteIsEio) {
  Put(12, 0, 0, Pattern(kChunk, 1));
  Poke(12, 0, kDataStart + 10, "torn");
  EXPECT_EQ(ReadErr(12, 0, 0, kChunk), EIO);
}

// An extension whose header never landed leaves bytes past `length`; a later
// extension must not expose them.
TEST_F(BlockStoreTest, TornExtensionNeverResurfaces) {
  Put(13, 0, 0, "abc");
  Poke(13, 0, kDataStart + 3, Pattern(2 * kChunk, 5));
  EXPECT_TRUE(Same(Get(13, 0, 0, kBlock), "abc"));
  Put(13, 0, 3 * kChunk, "end");
  std::string want = "abc" + std::string(3 * kChunk - 3, '\0') + "end";
  EXPECT_TRUE(Same(Get(13, 0, 0, kBlock), want));
}

// A file created but not yet given a header (crash) holds nothing.
TEST_F(BlockStoreTest, EmptyFileIsAnEmptyBlock) {
  Put(14, 0, 0, "x");
  ASSERT_EQ(truncate(Path(14, 0).c_str(), 0), 0);
  EXPECT_TRUE(Same(Get(14, 0, 0, 10), ""));
  Put(14, 0, 5, "y");
  EXPECT_TRUE(Same(Get(14, 0, 0, 10), std::string(5, '\0') + "y"));
}

TEST_F(BlockStoreTest, TruncateMidBlockThenExtendReadsZeros) {
  std::string d = Pattern(kBlock, 20);
  for (uint64_t i = 0; i < 3; i++) Put(15, i, 0, d);
  const uint32_t cut = kChunk + 1234;
  ASSERT_TRUE(store_->Truncate(15, uint64_t{kBlock} + cut).ok());
  EXPECT_EQ(Indices(15), (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(Same(Get(15, 1, 0, kBlock), d.substr(0, cut)));
  EXPECT_TRUE(Same(Get(15, 0, 0, kBlock), d));
  EXPECT_EQ(store_->Stats().used, uint64_t{kBlock} + cut);
  Put(15, 1, 3 * kChunk, "new");
  std::string want = d.substr(0, cut) + std::string(3 * kChunk - cut, '\0') + "new";
  EXPECT_TRUE(Same(Get(15, 1, 0, kBlock), want));
  // Overwriting across the cut point keeps the zeros right too.
  Put(15, 1, cut - 2, "ZZZZ");
  want.replace(cut - 2, 4, "ZZZZ");
  EXPECT_TRUE(Same(Get(15, 1, 0, kBlock), want));
}

TEST_F(BlockStoreTest, TruncateAtBlockBoundaryAndToZero) {
  std::string d = Pattern(2 * kChunk, 21);
  for (uint64_t i = 0; i < 4; i++) Put(16, i, 0, d);
  ASSERT_TRUE(store_->Truncate(16, 2ull * kBlock).ok());
  EXPECT_EQ(Indices(16), (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(Same(Get(16, 1, 0, kBlock), d));
  // Past the end: nothing changes.
  ASSERT_TRUE(store_->Truncate(16, 10ull * kBlock).ok());
  EXPECT_EQ(Indices(16), (std::vector<uint64_t>{0, 1}));
  ASSERT_TRUE(store_->Truncate(16, 0).ok());
  EXPECT_TRUE(Indices(16).empty());
  EXPECT_FALSE(std::filesystem::exists(Path(16, 0)));
  EXPECT_EQ(store_->Stats().used, 0u);
  EXPECT_EQ(store_->Stats().blocks, 0u);
  Put(16, 0, 10, "again");
  EXPECT_TRUE(Same(Get(16, 0, 0, 100), std::string(10, '\0') + "again"));
}

TEST_F(BlockStoreTest, TruncateInsideAChunkZeroesTheCutBytes) {
  std::string d = Pattern(kChunk, 22);
  Put(17, 0, 0, d);
  ASSERT_TRUE(store_->Truncate(17, 1000).ok());
  EXPECT_TRUE(Same(Get(17, 0, 0, kBlock), d.substr(0, 1000)));
  Put(17, 0, 2000, "x");
  EXPECT_TRUE(Same(Get(17, 0, 0, kBlock), d.substr(0, 1000) + std::string(1000, '\0') + "x"));
}

TEST_F(BlockStoreTest, DeleteRemovesEveryBlock) {
  for (uint64_t i = 0; i < 5; i++) Put(18, i * 7, 0, "data");
  Put(19, 0, 0, "other");
  ASSERT_TRUE(store_->Delete(18).ok());
  EXPECT_TRUE(Indices(18).empty());
  EXPECT_EQ(ReadErr(18, 0, 0, 4), ENOENT);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(Path(18, 0)).parent_path()));
  EXPECT_TRUE(Same(Get(19, 0, 0, 10), "other"));
  EXPECT_EQ(store_->Stats().blocks, 1u);
  EXPECT_EQ(store_->Stats().used, 5u);
  EXPECT_TRUE(store_->Delete(18).ok());  // idempotent
}

TEST_F(BlockStoreTest, ListIsSortedAndPerInode) {
  for (uint64_t i : {5ull, 1ull, 100ull, 3ull, 1ull << 40}) Put(20, i, 0, "x");
  Put(20 + 256, 2, 0, "same shard, other inode");
  EXPECT_EQ(Indices(20), (std::vector<uint64_t>{1, 3, 5, 100, 1ull << 40}));
  EXPECT_EQ(Indices(20 + 256), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(Indices(21).empty());
}

TEST_F(BlockStoreTest, StatsCountLengthsAndBlocks) {
  EXPECT_GT(store_->Stats().capacity, 0u);
  Put(22, 0, 0, std::string(1000, 'a'));
  Put(22, 1, 500, std::string(1000, 'b'));
  EXPECT_EQ(store_->Stats().used, 2500u);
  EXPECT_EQ(store_->Stats().blocks, 2u);
  Put(22, 0, 0, std::string(10, 'c'));  // inside the length: no change
  EXPECT_EQ(store_->Stats().used, 2500u);
  Put(22, 0, 1990, std::string(20, 'c'));  // extends block 0 to 2010
  EXPECT_EQ(store_->Stats().used, 3510u);
  BlockStoreOptions opts;
  opts.capacity = 12345;
  Reopen(opts);
  EXPECT_EQ(store_->Stats().capacity, 12345u);
}

// Every write and cut moves the block's generation; a replacement lands only
// on the generation it was computed against, and leaves exactly its bytes.
TEST_F(BlockStoreTest, GenerationsGuardReplacement) {
  auto gen = [&](uint64_t index) {
    auto r = store_->Read(30, index, 0, 0);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->generation : 0u;
  };
  std::string d = Pattern(3 * kChunk + 5, 3);
  Put(30, 0, 0, d);
  const uint32_t g1 = gen(0);
  EXPECT_NE(g1, 0u);
  Put(30, 0, 10, "xy");
  const uint32_t g2 = gen(0);
  EXPECT_NE(g2, g1);
  ASSERT_TRUE(store_->Truncate(30, 2 * kChunk).ok());
  const uint32_t g3 = gen(0);
  EXPECT_NE(g3, g2);
  // Computed against an older generation: refused, block untouched.
  std::string shorter = Pattern(1000, 4);
  EXPECT_EQ(store_->Replace(30, 0, shorter, g2).code(), ESTALE);
  EXPECT_EQ(gen(0), g3);
  EXPECT_EQ(Get(30, 0, 0, kBlock).size(), size_t{2 * kChunk});
  // On the current one: the block is exactly the new bytes, old tail gone.
  const uint64_t used = store_->Stats().used;
  ASSERT_TRUE(store_->Replace(30, 0, shorter, g3).ok());
  EXPECT_TRUE(Same(Get(30, 0, 0, kBlock), shorter));
  EXPECT_EQ(store_->Stats().used, used - 2 * kChunk + 1000);
  EXPECT_NE(gen(0), g3);
  // An absent block has generation 0: replacing creates it, once.
  EXPECT_EQ(ReadErr(30, 1, 0, 0), ENOENT);
  ASSERT_TRUE(store_->Replace(30, 1, d, 0).ok());
  EXPECT_TRUE(Same(Get(30, 1, 0, kBlock), d));
  EXPECT_EQ(store_->Replace(30, 1, shorter, 0).code(), ESTALE);
  EXPECT_EQ(store_->Stats().blocks, 2u);
  // An empty replacement leaves an empty block; a corrupt header counts as 0.
  ASSERT_TRUE(store_->Replace(30, 1, "", gen(1)).ok());
  EXPECT_EQ(Get(30, 1, 0, kBlock).size(), 0u);
  FlipByte(30, 0, 9);
  EXPECT_EQ(ReadErr(30, 0, 0, 10), EIO);
  ASSERT_TRUE(store_->Replace(30, 0, d, 0).ok());
  EXPECT_TRUE(Same(Get(30, 0, 0, kBlock), d));
  // Generations survive restart.
  const uint32_t before = gen(0);
  Reopen();
  EXPECT_EQ(gen(0), before);
}

TEST_F(BlockStoreTest, EverythingSurvivesReopen) {
  std::string d = Pattern(kBlock, 23);
  Put(23, 0, 0, d);
  Put(23, 9, 777, "sparse");
  Put(24, 3, 0, d.substr(0, 5000));
  ASSERT_TRUE(store_->Truncate(24, 3ull * kBlock + 4000).ok());
  ASSERT_TRUE(store_->Sync().ok());
  const StoreStats before = store_->Stats();
  Reopen();
  const StoreStats after = store_->Stats();
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.blocks, before.blocks);
  EXPECT_EQ(after.used, uint64_t{kBlock} + 777 + 6 + 4000);
  EXPECT_TRUE(Same(Get(23, 0, 0, kBlock), d));
  EXPECT_TRUE(Same(Get(23, 9, 0, kBlock), std::string(777, '\0') + "sparse"));
  EXPECT_TRUE(Same(Get(24, 3, 0, kBlock), d.substr(0, 4000)));
  EXPECT_EQ(Indices(23), (std::vector<uint64_t>{0, 9}));
}

TEST_F(BlockStoreTest, SyncNowWritesAreDurable) {
  ASSERT_TRUE(store_->Write(25, 0, 0, "durable", wire::kBlockSyncNow).ok());
  ASSERT_TRUE(store_->Write(25, 0, 7, "!", wire::kBlockSyncNow).ok());
  EXPECT_TRUE(Same(Get(25, 0, 0, 100), "durable!"));
  EXPECT_TRUE(store_->Sync().ok());
}

// Threads writing disjoint unaligned ranges of one block, and others reading
// it all the time: every read verifies, and the end state holds every write.
TEST_F(BlockStoreTest, ConcurrentWritersToOneBlock) {
  constexpr int kThreads = 8, kRounds = 40;
  constexpr uint32_t kSlice = 3 * kChunk / 2 + 11;
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::thread reader([&] {
    while (!done) {
      const int err = ReadErr(26, 0, 0, kBlock);
      if (err != 0 && err != ENOENT) read_errors++;
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int r = 0; r < kRounds; r++) {
        std::string d = Pattern(kSlice, t * 1000 + r);
        EXPECT_TRUE(store_->Write(26, 0, t * kSlice, d).ok());
      }
    });
  }
  for (auto& t : ts) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(read_errors.load(), 0);
  std::string all = Get(26, 0, 0, kBlock);
  ASSERT_EQ(all.size(), kThreads * kSlice);
  for (int t = 0; t < kThreads; t++)
    EXPECT_EQ(all.substr(t * kSlice, kSlice), Pattern(kSlice, t * 1000 + kRounds - 1));
  EXPECT_EQ(store_->Stats().used, kThreads * kSlice);
}

// Overlapping writes of whole ranges: the result is one writer's bytes.
TEST_F(BlockStoreTest, OverlappingWritersLeaveOneWinner) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; t++) {
    ts.emplace_back([&, t] {
      for (int r = 0; r < 30; r++)
        EXPECT_TRUE(store_->Write(27, 0, 1000, std::string(2 * kChunk, char('a' + t))).ok());
    });
  }
  for (auto& t : ts) t.join();
  std::string got = Get(27, 0, 1000, 2 * kChunk);
  EXPECT_EQ(got, std::string(2 * kChunk, got[0]));
}

TEST_F(BlockStoreTest, ConcurrentWritersToManyBlocks) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < 16; i++) {
        std::string d = Pattern(200000 + i, t * 100 + i);
        EXPECT_TRUE(store_->Write(28 + t % 2, t * 16 + i, 0, d).ok());
        auto r = store_->Read(28 + t % 2, t * 16 + i, 0, kBlock);
        EXPECT_TRUE(r.ok() && std::string(r->data(), r->size()) == d);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(store_->Stats().blocks, 128u);
  EXPECT_EQ(Indices(28).size() + Indices(29).size(), 128u);
}

// A disk that fills up (or fails) on demand.
class FaultyDisk : public DiskIo {
 public:
  std::atomic<int> fallocate_err{0};
  std::atomic<int64_t> pwrite_budget{-1};  // bytes that still fit; -1 = no limit
  int Fallocate(int fd, off_t off, off_t len) override {
    if (fallocate_err) return errno = fallocate_err, -1;
    return DiskIo::Fallocate(fd, off, len);
  }
  ssize_t PWrite(int fd, const void* buf, size_t n, off_t off) override {
    const int64_t budget = pwrite_budget;
    if (budget < 0) return DiskIo::PWrite(fd, buf, n, off);
    if (budget == 0) return errno = ENOSPC, -1;
    ssize_t w = DiskIo::PWrite(fd, buf, std::min<size_t>(n, budget), off);
    if (w > 0) pwrite_budget -= w;
    return w;
  }
};

TEST_F(BlockStoreTest, FullDiskReturnsEnospcAndKeepsOldData) {
  FaultyDisk disk;
  BlockStoreOptions opts;
  opts.io = &disk;
  Reopen(opts);
  std::string d = Pattern(kChunk, 30);
  Put(31, 0, 0, d);
  disk.fallocate_err = ENOSPC;
  EXPECT_EQ(store_->Write(31, 0, kChunk, Pattern(kChunk, 31)).code(), ENOSPC);
  EXPECT_EQ(store_->Write(31, 1, 0, "new block").code(), ENOSPC);
  EXPECT_TRUE(Same(Get(31, 0, 0, kBlock), d));
  EXPECT_EQ(Indices(31), (std::vector<uint64_t>{0}));
  EXPECT_EQ(store_->Stats().blocks, 1u);
  EXPECT_EQ(store_->Stats().used, kChunk);
  disk.fallocate_err = 0;
  // A write that fails halfway: an error, and never wrong bytes after it.
  disk.pwrite_budget = kChunk / 2;
  EXPECT_EQ(store_->Write(31, 0, 0, Pattern(2 * kChunk, 32)).code(), ENOSPC);
  int err = ReadErr(31, 0, 0, kChunk);
  EXPECT_TRUE(err == EIO || (err == 0 && Get(31, 0, 0, kChunk) == d));
  EXPECT_EQ(store_->Stats().used, kChunk);
  disk.pwrite_budget = -1;
  // Repaired by a full rewrite once space is back.
  Put(31, 0, 0, d);
  EXPECT_TRUE(Same(Get(31, 0, 0, kBlock), d));
}

}  // namespace
}  // namespace ringfs::blockd
