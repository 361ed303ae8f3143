#include "blockd/block_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <thread>

#include "blockd/scrub.h"
#include "common/crc.h"
#include "common/wire.h"

namespace ringfs::blockd {
namespace {

constexpr uint32_t kBlock = wire::kBlockSize;
constexpr uint32_t kChunk = 64 << 10;
constexpr off_t kDataStart = 512;     // format 3: data after the 512-byte header
constexpr off_t kV2DataStart = 4096;  // format 2 (blocks from before format 3)

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

// The store's fixture; `v4_` picks the format it creates: 4 (the header in
// the file's xattr, data from offset 0) or 3 (a 512-byte header in the file).
class StoreFixture : public ::testing::Test {
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
  BlockStoreOptions Opts() const {
    BlockStoreOptions o;
    o.xattr_headers = v4_;
    return o;
  }
  void Reopen() { Reopen(Opts()); }
  void Reopen(BlockStoreOptions opts) {
    store_.reset();
    auto s = BlockStore::Open(dir_, opts);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Block 0 flat in its shard directory, the others in the inode's.
  std::string Path(uint64_t ino, uint64_t index) {
    char buf[64];
    if (index == 0) {
      snprintf(buf, sizeof buf, "/blocks/%02x/%lx.0", unsigned(ino & 0xff), ino);
    } else {
      snprintf(buf, sizeof buf, "/blocks/%02x/%lx/%lu", unsigned(ino & 0xff), ino, index);
    }
    return dir_ + buf;
  }
  std::string InodeDir(uint64_t ino) {
    char buf[64];
    snprintf(buf, sizeof buf, "/blocks/%02x/%lx", unsigned(ino & 0xff), ino);
    return dir_ + buf;
  }
  // Where the block's data starts in its file.
  off_t DataStart() const { return v4_ ? 0 : kDataStart; }
  // Header fields' offsets: in the xattr (format 4) or the file (format 3).
  off_t LengthFieldAt() const { return v4_ ? 5 : 9; }
  off_t FirstCrcAt() const { return v4_ ? 50 : 34; }
  std::string HeaderXattr(uint64_t ino, uint64_t index) {
    char buf[1024];
    const ssize_t n = getxattr(Path(ino, index).c_str(), "user.ringfs", buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, size_t(n));
  }
  void SetHeaderXattr(uint64_t ino, uint64_t index, const std::string& x) {
    ASSERT_EQ(setxattr(Path(ino, index).c_str(), "user.ringfs", x.data(), x.size(), 0), 0);
  }
  // Flips a byte of the block's header, wherever its format keeps it.
  void FlipHeaderByte(uint64_t ino, uint64_t index, off_t at) {
    if (!v4_) return FlipByte(ino, index, at);
    std::string x = HeaderXattr(ino, index);
    ASSERT_LT(size_t(at), x.size());
    x[at] ^= 0x40;
    SetHeaderXattr(ino, index, x);
  }
  // A header cut to its first n bytes (a torn header).
  void CutHeader(uint64_t ino, uint64_t index, size_t n) {
    if (!v4_) {
      ASSERT_EQ(truncate(Path(ino, index).c_str(), off_t(n)), 0);
      return;
    }
    SetHeaderXattr(ino, index, HeaderXattr(ino, index).substr(0, n));
  }
  // A block file created and never given a header (a crash right after).
  void EraseHeader(uint64_t ino, uint64_t index) {
    ASSERT_EQ(truncate(Path(ino, index).c_str(), 0), 0);
    if (v4_) ASSERT_EQ(removexattr(Path(ino, index).c_str(), "user.ringfs"), 0);
  }
  // Another block's file (data and header) under this block's name.
  void CopyBlock(uint64_t from_ino, uint64_t from, uint64_t to_ino, uint64_t to) {
    std::filesystem::copy_file(Path(from_ino, from), Path(to_ino, to),
                               std::filesystem::copy_options::overwrite_existing);
    if (v4_) SetHeaderXattr(to_ino, to, HeaderXattr(from_ino, from));
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

  bool v4_ = false;
  std::string dir_;
  std::unique_ptr<BlockStore> store_;
};

// Behaviour that holds in both formats runs in both.
class BlockStoreTest : public StoreFixture, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    v4_ = GetParam();
    StoreFixture::SetUp();
  }
};
std::string FormatName(const ::testing::TestParamInfo<bool>& p) { return p.param ? "Format4" : "Format3"; }
INSTANTIATE_TEST_SUITE_P(Formats, BlockStoreTest, ::testing::Bool(), FormatName);

// Random writes against an in-memory model, around chunk boundaries.
TEST_P(BlockStoreTest, RoundTripsAtManyOffsetsAndLengths) {
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

TEST_P(BlockStoreTest, AppendsAndSmallUnalignedWrites) {
  std::string model;
  for (int i = 0; i < 200; i++) {
    std::string d = Pattern(1000 + i * 37, i);
    Put(2, 0, model.size(), d);
    model += d;
  }
  EXPECT_TRUE(Same(Get(2, 0, 0, kBlock), model));
  EXPECT_TRUE(Same(Get(2, 0, 12345, 99999), model.substr(12345, 99999)));
}

TEST_P(BlockStoreTest, SparseGapsReadAsZeros) {
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

TEST_P(BlockStoreTest, OverwriteKeepsSurroundingBytes) {
  std::string a = Pattern(3 * kChunk, 1), b = Pattern(kChunk, 2);
  Put(4, 0, 0, a);
  Put(4, 0, kChunk / 2, b);
  a.replace(kChunk / 2, kChunk, b);
  EXPECT_TRUE(Same(Get(4, 0, 0, kBlock), a));
  EXPECT_EQ(store_->Stats().used, 3u * kChunk);
}

TEST_P(BlockStoreTest, ReadsArePartialPastTheEnd) {
  Put(5, 0, 0, "abcdef");
  EXPECT_TRUE(Same(Get(5, 0, 2, 100), "cdef"));
  EXPECT_TRUE(Same(Get(5, 0, 6, 100), ""));
  EXPECT_TRUE(Same(Get(5, 0, 1000, 10), ""));
  EXPECT_EQ(ReadErr(5, 1, 0, 10), ENOENT);
  EXPECT_EQ(ReadErr(6, 0, 0, 10), ENOENT);
}

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

// Many ranges in one write: chunks shared by ranges, gaps, growth past the
// end, and a version check that applies to all of them at once.
TEST_P(BlockStoreTest, MultiRangeWritesMatchAModel) {
  std::mt19937 rng(7);
  std::string model(300000, '\0');
  size_t len = 100000;
  std::string base = RandomBytes(rng, len);
  model.replace(0, len, base);
  Put(5, 0, 0, base);
  for (int round = 0; round < 20; round++) {
    std::vector<std::string> keep;
    keep.reserve(64);
    std::vector<BlockStore::Range> ranges;
    uint32_t off = rng() % 3000;
    while (ranges.size() < 50) {
      const uint32_t n = 1 + rng() % 5000;
      if (off + n > 300000) break;
      keep.push_back(RandomBytes(rng, n));
      ranges.push_back(BlockStore::Range{off, keep.back()});
      model.replace(off, n, keep.back());
      len = std::max<size_t>(len, off + n);
      off += n + (rng() % 3 == 0 ? 0 : 1 + rng() % 9000);  // touching, or gaps inside a chunk
    }
    ASSERT_TRUE(store_->WriteRanges(5, 0, ranges).ok()) << round;
    ASSERT_EQ(Get(5, 0, 0, 300000), model.substr(0, len)) << "round " << round;
  }
  Reopen();  // the checksums on disk agree with the bytes
  EXPECT_EQ(ReadErr(5, 0, 0, 300000), 0);
  // Out of order or overlapping: refused, nothing written.
  std::string a(10, 'a'), b(10, 'b');
  EXPECT_EQ(store_->WriteRanges(5, 0, {{100, a}, {105, b}}).code(), EINVAL);
  EXPECT_EQ(store_->WriteRanges(5, 0, {{200, a}, {100, b}}).code(), EINVAL);
  const std::string before = Get(5, 0, 0, 300000);
  EXPECT_EQ(before.substr(100, 10), model.substr(100, 10));
  // Versioned: all or nothing.
  wire::BlockVersion v1{1, 1, 9}, v2{1, 2, 9};
  WriteVersions fresh{wire::BlockVersion{}, v1};
  ASSERT_TRUE(store_->WriteRanges(6, 0, {{0, a}, {70000, b}}, 0, &fresh).ok());
  WriteVersions stale{v2, wire::BlockVersion{1, 3, 9}};
  EXPECT_EQ(store_->WriteRanges(6, 0, {{0, b}, {70000, a}}, 0, &stale).code(), ESTALE);
  EXPECT_EQ(Get(6, 0, 0, 10), a);
  EXPECT_EQ(Get(6, 0, 70000, 10), b);
  EXPECT_EQ(Get(6, 0, 10, 69990), std::string(69990, '\0'));
}

TEST_P(BlockStoreTest, RejectsRangesPastTheBlock) {
  EXPECT_EQ(store_->Write(7, 0, kBlock - 1, "ab").code(), EINVAL);
  EXPECT_EQ(store_->Write(7, 0, kBlock + 1, "a").code(), EINVAL);
  EXPECT_EQ(store_->Write(7, 0, 0, std::string(kBlock + 1, 'x')).code(), EINVAL);
  EXPECT_EQ(ReadErr(7, 0, kBlock, 1), EINVAL);
  EXPECT_EQ(ReadErr(7, 0, 1, kBlock), EINVAL);
  EXPECT_TRUE(store_->Write(7, 0, kBlock - 2, "ab").ok());
  EXPECT_TRUE(Indices(7) == std::vector<uint64_t>{0});
}

TEST_P(BlockStoreTest, CorruptDataIsEio) {
  std::string d = Pattern(4 * kChunk, 9);
  Put(8, 0, 0, d);
  FlipByte(8, 0, DataStart() + kChunk + 77);
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

TEST_P(BlockStoreTest, CorruptTailChunkIsEio) {
  std::string d = Pattern(kChunk + 500, 10);
  Put(9, 0, 0, d);
  FlipByte(9, 0, DataStart() + kChunk + 499);
  EXPECT_EQ(ReadErr(9, 0, kChunk, 1), EIO);
  // Appending to the bad chunk extends its old sum: still caught.
  Put(9, 0, kChunk + 500, "more");
  EXPECT_EQ(ReadErr(9, 0, kChunk, 1), EIO);
}

TEST_P(BlockStoreTest, CorruptHeaderIsEio) {
  std::string d = Pattern(2 * kChunk, 11);
  Put(10, 0, 0, d);
  FlipHeaderByte(10, 0, LengthFieldAt());
  EXPECT_EQ(ReadErr(10, 0, 0, 10), EIO);
  EXPECT_EQ(store_->Write(10, 0, 100, "x").code(), EIO);
  EXPECT_EQ(store_->Truncate(10, 5).code(), EIO);
  // A rewrite of every old byte from offset 0 (a repair) replaces the block.
  Put(10, 0, 0, d);
  EXPECT_TRUE(Same(Get(10, 0, 0, kBlock), d));

  FlipHeaderByte(10, 0, FirstCrcAt());
  EXPECT_EQ(ReadErr(10, 0, 0, 10), EIO);
}

TEST_P(BlockStoreTest, BlockFileUnderTheWrongNameIsEio) {
  Put(11, 0, 0, "zero");
  Put(11, 1, 0, "one!");
  CopyBlock(11, 0, 11, 1);
  EXPECT_EQ(ReadErr(11, 1, 0, 4), EIO);
}

// Data written but the header never updated: the old sums catch the new bytes.
TEST_P(BlockStoreTest, TornOverwriteIsEio) {
  Put(12, 0, 0, Pattern(kChunk, 1));
  Poke(12, 0, DataStart() + 10, "torn");
  EXPECT_EQ(ReadErr(12, 0, 0, kChunk), EIO);
}

// An extension whose header never landed leaves bytes past `length`; a later
// extension must not expose them.
TEST_P(BlockStoreTest, TornExtensionNeverResurfaces) {
  Put(13, 0, 0, "abc");
  Poke(13, 0, DataStart() + 3, Pattern(2 * kChunk, 5));
  EXPECT_TRUE(Same(Get(13, 0, 0, kBlock), "abc"));
  Put(13, 0, 3 * kChunk, "end");
  std::string want = "abc" + std::string(3 * kChunk - 3, '\0') + "end";
  EXPECT_TRUE(Same(Get(13, 0, 0, kBlock), want));
}

// A file created but not yet given a header (crash) holds nothing.
TEST_P(BlockStoreTest, EmptyFileIsAnEmptyBlock) {
  Put(14, 0, 0, "x");
  EraseHeader(14, 0);
  EXPECT_TRUE(Same(Get(14, 0, 0, 10), ""));
  Put(14, 0, 5, "y");
  EXPECT_TRUE(Same(Get(14, 0, 0, 10), std::string(5, '\0') + "y"));
}

TEST_P(BlockStoreTest, TruncateMidBlockThenExtendReadsZeros) {
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

TEST_P(BlockStoreTest, TruncateAtBlockBoundaryAndToZero) {
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

TEST_P(BlockStoreTest, TruncateInsideAChunkZeroesTheCutBytes) {
  std::string d = Pattern(kChunk, 22);
  Put(17, 0, 0, d);
  ASSERT_TRUE(store_->Truncate(17, 1000).ok());
  EXPECT_TRUE(Same(Get(17, 0, 0, kBlock), d.substr(0, 1000)));
  Put(17, 0, 2000, "x");
  EXPECT_TRUE(Same(Get(17, 0, 0, kBlock), d.substr(0, 1000) + std::string(1000, '\0') + "x"));
}

TEST_P(BlockStoreTest, DeleteRemovesEveryBlock) {
  for (uint64_t i = 0; i < 5; i++) Put(18, i * 7, 0, "data");
  Put(19, 0, 0, "other");
  ASSERT_TRUE(store_->Delete(18).ok());
  EXPECT_TRUE(Indices(18).empty());
  EXPECT_EQ(ReadErr(18, 0, 0, 4), ENOENT);
  EXPECT_FALSE(std::filesystem::exists(Path(18, 0)));
  EXPECT_FALSE(std::filesystem::exists(InodeDir(18)));
  EXPECT_TRUE(Same(Get(19, 0, 0, 10), "other"));
  EXPECT_EQ(store_->Stats().blocks, 1u);
  EXPECT_EQ(store_->Stats().used, 5u);
  EXPECT_TRUE(store_->Delete(18).ok());  // idempotent
}

TEST_P(BlockStoreTest, ListIsSortedAndPerInode) {
  for (uint64_t i : {5ull, 1ull, 100ull, 3ull, 1ull << 40}) Put(20, i, 0, "x");
  Put(20 + 256, 2, 0, "same shard, other inode");
  EXPECT_EQ(Indices(20), (std::vector<uint64_t>{1, 3, 5, 100, 1ull << 40}));
  EXPECT_EQ(Indices(20 + 256), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(Indices(21).empty());
}

TEST_P(BlockStoreTest, StatsCountLengthsAndBlocks) {
  EXPECT_GT(store_->Stats().capacity, 0u);
  Put(22, 0, 0, std::string(1000, 'a'));
  Put(22, 1, 500, std::string(1000, 'b'));
  EXPECT_EQ(store_->Stats().used, 2500u);
  EXPECT_EQ(store_->Stats().blocks, 2u);
  Put(22, 0, 0, std::string(10, 'c'));  // inside the length: no change
  EXPECT_EQ(store_->Stats().used, 2500u);
  Put(22, 0, 1990, std::string(20, 'c'));  // extends block 0 to 2010
  EXPECT_EQ(store_->Stats().used, 3510u);
  BlockStoreOptions opts = Opts();
  opts.capacity = 12345;
  Reopen(opts);
  EXPECT_EQ(store_->Stats().capacity, 12345u);
  // More than the disk has room for: what the disk really has (fallocate's
  // ENOSPC check and statfs rely on it).
  opts.capacity = uint64_t{1} << 60;
  Reopen(opts);
  struct statvfs vfs;
  ASSERT_EQ(statvfs(dir_.c_str(), &vfs), 0);
  const uint64_t room = store_->Stats().used + uint64_t{vfs.f_bavail} * vfs.f_frsize;
  EXPECT_LE(store_->Stats().capacity, room + (64u << 20));
  EXPECT_GE(store_->Stats().capacity + (64u << 20), room);
}

// --- Block versions (common/block_version.h): every write, cut and
// replacement lands only on the version it names as its base.

using wire::BlockVersion;

wire::BlockVersion V(uint64_t epoch, uint64_t height, uint64_t writer) {
  return wire::BlockVersion{epoch, height, writer};
}
// "No block since truncation `epoch`": the base of a write to a hole.
wire::BlockVersion Absent(uint64_t epoch) { return wire::BlockVersion{epoch, 0, 0}; }

}  // namespace
}  // namespace ringfs::blockd

namespace ringfs::wire {
std::ostream& operator<<(std::ostream& os, const BlockVersion& v) {
  return os << "{epoch " << v.epoch << ", height " << v.height << ", writer " << v.writer << "}";
}
}  // namespace ringfs::wire

namespace ringfs::blockd {
namespace {

class VersionFixture : public StoreFixture {
 protected:
  // The version the block holds (Read of nothing); fails the test on error.
  wire::BlockVersion VersionOf(uint64_t ino, uint64_t index) {
    auto r = store_->Read(ino, index, 0, 0);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->version : wire::BlockVersion{};
  }
  uint32_t LengthOf(uint64_t ino, uint64_t index) {
    auto r = store_->Read(ino, index, 0, 0);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->length : 0;
  }
  Status WriteV(uint64_t ino, uint64_t index, uint32_t off, const std::string& data,
                wire::BlockVersion base, wire::BlockVersion next,
                wire::BlockVersion* held = nullptr) {
    const WriteVersions v{base, next};
    return store_->Write(ino, index, off, data, 0, &v, held);
  }
  Status ReplaceV(uint64_t ino, uint64_t index, const std::string& data, wire::BlockVersion base,
                  wire::BlockVersion next, wire::BlockVersion* held = nullptr) {
    return store_->Replace(ino, index, data, WriteVersions{base, next}, held);
  }
  // A block at `v` holding `data` (created by a versioned write).
  void Make(uint64_t ino, uint64_t index, const std::string& data, wire::BlockVersion v) {
    wire::BlockVersion held;
    Status st = WriteV(ino, index, 0, data, Absent(v.epoch), v, &held);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(held, v);
  }
};

class BlockVersionStoreTest : public VersionFixture, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    v4_ = GetParam();
    VersionFixture::SetUp();
  }
};
INSTANTIATE_TEST_SUITE_P(Formats, BlockVersionStoreTest, ::testing::Bool(), FormatName);

// A truncation delivered late (after writes that followed it): blocks past
// the cut written at its epoch or later are kept; older ones go.
TEST_P(BlockVersionStoreTest, LateTruncateKeepsBlocksWrittenAfterIt) {
  ASSERT_TRUE(WriteV(40, 0, 0, "old", {}, V(2, 1, 7)).ok());
  ASSERT_TRUE(WriteV(40, 1, 0, "new", {}, V(3, 1, 7)).ok());
  ASSERT_TRUE(store_->Truncate(40, 0, nullptr, nullptr, /*fence_epoch=*/3).ok());
  auto l = store_->List(40);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<uint64_t>{1}));
  ASSERT_TRUE(store_->Truncate(40, 0, nullptr, nullptr, /*fence_epoch=*/4).ok());
  EXPECT_TRUE(store_->List(40)->empty());
}

TEST_P(BlockVersionStoreTest, WriteAppliesOnlyOnItsExactBase) {
  const std::string d = Pattern(3 * kChunk + 5, 40);
  wire::BlockVersion held;
  ASSERT_TRUE(WriteV(40, 0, 0, d, Absent(0), V(0, 1, 7), &held).ok());
  EXPECT_EQ(held, V(0, 1, 7));
  EXPECT_EQ(VersionOf(40, 0), V(0, 1, 7));
  ASSERT_TRUE(WriteV(40, 0, 10, "xy", V(0, 1, 7), V(0, 2, 7), &held).ok());
  EXPECT_EQ(held, V(0, 2, 7));
  std::string model = d;
  model.replace(10, 2, "xy");
  const uint64_t used = store_->Stats().used;

  // Every base but the exact one is refused: ESTALE, the held version
  // reported, bytes, length and version untouched (even by an extension).
  const wire::BlockVersion wrong[] = {
      V(0, 1, 7),   // behind
      V(0, 3, 7),   // ahead
      V(0, 2, 8),   // the right height, another writer
      V(1, 2, 7),   // another epoch
      Absent(0),    // "no block": there is one, written at epoch 0
      BlockVersion{},
  };
  for (const wire::BlockVersion& base : wrong) {
    held = V(99, 99, 99);
    EXPECT_EQ(WriteV(40, 0, 0, std::string(kChunk, 'X'), base, V(5, 5, 5), &held).code(), ESTALE)
        << base;
    EXPECT_EQ(held, V(0, 2, 7)) << base;
    EXPECT_EQ(WriteV(40, 0, kBlock - 4, "tail", base, V(5, 5, 5)).code(), ESTALE) << base;
    // An empty write moves a version too, so it is checked as well.
    EXPECT_EQ(WriteV(40, 0, 0, "", base, V(5, 5, 5)).code(), ESTALE) << base;
  }
  EXPECT_EQ(VersionOf(40, 0), V(0, 2, 7));
  EXPECT_EQ(LengthOf(40, 0), d.size());
  EXPECT_TRUE(Same(Get(40, 0, 0, kBlock), model));
  EXPECT_EQ(store_->Stats().used, used);
  EXPECT_EQ(store_->Stats().blocks, 1u);

  // The exact base still works after all that.
  ASSERT_TRUE(WriteV(40, 0, d.size(), "end", V(0, 2, 7), V(0, 3, 9), &held).ok());
  EXPECT_EQ(held, V(0, 3, 9));
  EXPECT_TRUE(Same(Get(40, 0, 0, kBlock), model + "end"));
  EXPECT_EQ(store_->Stats().used, used + 3);
}

TEST_P(BlockVersionStoreTest, RefusedWriteToAMissingBlockLeavesNoFile) {
  Make(41, 0, "keep", V(0, 1, 1));
  const StoreStats before = store_->Stats();
  wire::BlockVersion held = V(9, 9, 9);
  // A real base: the block is not there, so it is not at it.
  EXPECT_EQ(WriteV(41, 3, 0, "data", V(0, 1, 1), V(0, 2, 1), &held).code(), ESTALE);
  EXPECT_EQ(held, BlockVersion{});
  EXPECT_EQ(WriteV(41, 4, 100, "", V(2, 5, 1), V(2, 6, 1)).code(), ESTALE);
  EXPECT_EQ(WriteV(42, 0, 0, "new inode", V(0, 1, 1), V(0, 2, 1)).code(), ESTALE);
  EXPECT_EQ(Indices(41), (std::vector<uint64_t>{0}));
  EXPECT_TRUE(Indices(42).empty());
  EXPECT_FALSE(std::filesystem::exists(Path(41, 3)));
  EXPECT_FALSE(std::filesystem::exists(Path(41, 4)));
  EXPECT_FALSE(std::filesystem::exists(Path(42, 0)));
  EXPECT_EQ(ReadErr(41, 3, 0, 10), ENOENT);
  EXPECT_EQ(store_->Stats().blocks, before.blocks);
  EXPECT_EQ(store_->Stats().used, before.used);
  // Nothing was left behind for a restart to count either.
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, before.blocks);
  EXPECT_EQ(store_->Stats().used, before.used);
  EXPECT_EQ(Indices(41), (std::vector<uint64_t>{0}));
}

TEST_P(BlockVersionStoreTest, AbsentBaseTakesAMissingBlockOrOneFromAnOlderEpoch) {
  // A missing block: taken at any epoch; the bytes before the write are zeros.
  wire::BlockVersion held;
  ASSERT_TRUE(WriteV(43, 0, 500, "fresh", Absent(5), V(5, 1, 3), &held).ok());
  EXPECT_EQ(held, V(5, 1, 3));
  EXPECT_TRUE(Same(Get(43, 0, 0, kBlock), std::string(500, '\0') + "fresh"));
  EXPECT_EQ(store_->Stats().blocks, 1u);

  // A block written at epoch 1 is a leftover once the file is at epoch 2:
  // its old bytes go first, so only the new ones are read back.
  const std::string old = Pattern(3 * kChunk + 17, 43);
  Make(43, 1, old, V(1, 4, 2));
  const uint64_t used = store_->Stats().used;
  const uint32_t off = kChunk + 1000;
  ASSERT_TRUE(WriteV(43, 1, off, "new", Absent(2), V(2, 1, 6), &held).ok());
  EXPECT_EQ(held, V(2, 1, 6));
  EXPECT_EQ(VersionOf(43, 1), V(2, 1, 6));
  EXPECT_EQ(LengthOf(43, 1), off + 3);  // the end of the new write, not the old length
  EXPECT_TRUE(Same(Get(43, 1, 0, kBlock), std::string(off, '\0') + "new"));
  EXPECT_EQ(store_->Stats().used, used - old.size() + off + 3);
  EXPECT_EQ(store_->Stats().blocks, 2u);
  // The same from offset 0 with fewer bytes than the old block held.
  Make(43, 2, old, V(0, 9, 2));
  ASSERT_TRUE(WriteV(43, 2, 0, "ab", Absent(3), V(3, 1, 6)).ok());
  EXPECT_TRUE(Same(Get(43, 2, 0, kBlock), "ab"));

  // At the block's epoch or later, an absent base is refused: the block is
  // current (or ahead of the writer), and nothing changes.
  const std::string cur = Pattern(kChunk, 44);
  Make(43, 3, cur, V(4, 2, 1));
  for (uint64_t e : {4u, 3u, 0u}) {
    held = {};
    EXPECT_EQ(WriteV(43, 3, 0, "zz", Absent(e), V(e, 1, 6), &held).code(), ESTALE) << e;
    EXPECT_EQ(held, V(4, 2, 1));
  }
  EXPECT_EQ(VersionOf(43, 3), V(4, 2, 1));
  EXPECT_TRUE(Same(Get(43, 3, 0, kBlock), cur));
  // The block that took the fresh write is now at epoch 2: refused at 2 too.
  EXPECT_EQ(WriteV(43, 1, 0, "again", Absent(2), V(2, 1, 7)).code(), ESTALE);
  EXPECT_TRUE(Same(Get(43, 1, 0, kBlock), std::string(off, '\0') + "new"));
}

TEST_P(BlockVersionStoreTest, ReadWithWantRefusesAnyOtherVersion) {
  const std::string d = Pattern(2 * kChunk, 45);
  Make(45, 0, d, V(1, 2, 7));
  const wire::BlockVersion at = V(1, 2, 7);
  auto r = store_->Read(45, 0, 100, 1000, &at);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->refused);
  EXPECT_EQ(r->version, at);
  EXPECT_EQ(r->length, d.size());
  EXPECT_TRUE(Same(std::string(r->data(), r->size()), d.substr(100, 1000)));

  const wire::BlockVersion others[] = {
      V(1, 2, 8),  // the right height, another writer
      V(1, 1, 7), V(1, 3, 7), V(0, 2, 7), V(2, 2, 7), Absent(1), BlockVersion{},
  };
  for (const wire::BlockVersion& want : others) {
    auto o = store_->Read(45, 0, 0, kBlock, &want);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_TRUE(o->refused) << want;
    EXPECT_EQ(o->size(), 0u) << want;
    EXPECT_EQ(o->data(), nullptr) << want;
    EXPECT_EQ(o->version, at) << want;  // what it holds instead
    EXPECT_EQ(o->length, d.size()) << want;
    // Refused also where there would be nothing to read.
    auto past = store_->Read(45, 0, kBlock - 1, 1, &want);
    ASSERT_TRUE(past.ok());
    EXPECT_TRUE(past->refused) << want;
  }
  // At the right version past the end: nothing to read, not refused.
  auto past = store_->Read(45, 0, kBlock - 1, 1, &at);
  ASSERT_TRUE(past.ok());
  EXPECT_FALSE(past->refused);
  EXPECT_EQ(past->size(), 0u);
  // Without `want`, any version is served.
  EXPECT_TRUE(Same(Get(45, 0, 0, kBlock), d));
  // A missing block is ENOENT, wanted or not.
  auto missing = store_->Read(45, 1, 0, 10, &at);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ENOENT);
}

TEST_P(BlockVersionStoreTest, ReplaceLandsOnlyOnItsBaseAndLeavesExactlyItsBytes) {
  const std::string d = Pattern(3 * kChunk + 5, 46);
  Make(46, 0, d, V(1, 2, 7));
  const std::string shorter = Pattern(1000, 47);
  wire::BlockVersion held;
  // Not at the base: refused, the block untouched.
  for (const wire::BlockVersion& base : {V(1, 1, 7), V(1, 2, 8), V(1, 3, 7), BlockVersion{}}) {
    held = V(9, 9, 9);
    EXPECT_EQ(ReplaceV(46, 0, shorter, base, V(1, 3, 0)).code(), ESTALE) << base;
    EXPECT_EQ(ReplaceV(46, 0, shorter, base, V(1, 3, 0), &held).code(), ESTALE) << base;
    EXPECT_EQ(held, V(1, 2, 7)) << base;
  }
  EXPECT_EQ(VersionOf(46, 0), V(1, 2, 7));
  EXPECT_TRUE(Same(Get(46, 0, 0, kBlock), d));
  // At the base: exactly the new bytes (the old tail gone) at v.next.
  const uint64_t used = store_->Stats().used;
  ASSERT_TRUE(ReplaceV(46, 0, shorter, V(1, 2, 7), V(1, 3, 4), &held).ok());
  EXPECT_EQ(held, V(1, 3, 4));
  EXPECT_EQ(VersionOf(46, 0), V(1, 3, 4));
  EXPECT_EQ(LengthOf(46, 0), shorter.size());
  EXPECT_TRUE(Same(Get(46, 0, 0, kBlock), shorter));
  EXPECT_EQ(store_->Stats().used, used - d.size() + shorter.size());
  // ... and once only: the same replacement again is refused.
  EXPECT_EQ(ReplaceV(46, 0, d, V(1, 2, 7), V(1, 3, 4)).code(), ESTALE);
  EXPECT_TRUE(Same(Get(46, 0, 0, kBlock), shorter));
  // Growing works the same way.
  ASSERT_TRUE(ReplaceV(46, 0, d, V(1, 3, 4), V(1, 4, 4)).ok());
  EXPECT_TRUE(Same(Get(46, 0, 0, kBlock), d));

  // A missing block is at no version: BlockVersion{} creates it, once. An
  // "absent at epoch E" base is not BlockVersion{} and does not match.
  EXPECT_EQ(ReplaceV(46, 1, d, Absent(3), V(3, 1, 1), &held).code(), ESTALE);
  EXPECT_EQ(held, BlockVersion{});
  EXPECT_EQ(ReplaceV(46, 1, d, V(3, 1, 1), V(3, 2, 1)).code(), ESTALE);
  EXPECT_EQ(Indices(46), (std::vector<uint64_t>{0}));  // refusals leave no file
  EXPECT_FALSE(std::filesystem::exists(Path(46, 1)));
  ASSERT_TRUE(ReplaceV(46, 1, d, BlockVersion{}, V(3, 1, 1), &held).ok());
  EXPECT_EQ(held, V(3, 1, 1));
  EXPECT_EQ(VersionOf(46, 1), V(3, 1, 1));
  EXPECT_TRUE(Same(Get(46, 1, 0, kBlock), d));
  EXPECT_EQ(ReplaceV(46, 1, shorter, BlockVersion{}, V(3, 1, 1)).code(), ESTALE);
  EXPECT_EQ(store_->Stats().blocks, 2u);
  // An empty replacement leaves an empty block at v.next.
  ASSERT_TRUE(ReplaceV(46, 1, "", V(3, 1, 1), V(3, 2, 1)).ok());
  EXPECT_EQ(LengthOf(46, 1), 0u);
  EXPECT_EQ(VersionOf(46, 1), V(3, 2, 1));
  EXPECT_EQ(Get(46, 1, 0, kBlock).size(), 0u);

  // A corrupt header holds no version: only BlockVersion{} replaces it.
  FlipHeaderByte(46, 0, LengthFieldAt());
  EXPECT_EQ(ReadErr(46, 0, 0, 10), EIO);
  held = V(9, 9, 9);
  EXPECT_EQ(ReplaceV(46, 0, shorter, V(1, 4, 4), V(1, 5, 4), &held).code(), ESTALE);
  EXPECT_EQ(held, BlockVersion{});
  EXPECT_EQ(ReadErr(46, 0, 0, 10), EIO);
  ASSERT_TRUE(ReplaceV(46, 0, shorter, BlockVersion{}, V(1, 5, 4), &held).ok());
  EXPECT_EQ(held, V(1, 5, 4));
  EXPECT_EQ(VersionOf(46, 0), V(1, 5, 4));
  EXPECT_TRUE(Same(Get(46, 0, 0, kBlock), shorter));
  EXPECT_EQ(store_->Stats().used, shorter.size());
  EXPECT_EQ(store_->Stats().blocks, 2u);
}

TEST_P(BlockVersionStoreTest, TruncateMovesTheCutBlockOnlyFromItsBase) {
  const std::string d = Pattern(2 * kChunk, 48);
  for (uint64_t i = 0; i < 4; i++) Make(48, i, d, V(1, 1 + i, 7));
  const uint32_t cut = kChunk + 100;

  // At the base: cut and moved to next; the blocks past it go.
  WriteVersions cv{V(1, 2, 7), V(2, 3, 9)};
  TruncateResult out;
  ASSERT_TRUE(store_->Truncate(48, uint64_t{kBlock} + cut, &cv, &out).ok());
  EXPECT_TRUE(out.cut_exists);
  EXPECT_TRUE(out.cut_applied);
  EXPECT_EQ(out.version, V(2, 3, 9));
  EXPECT_EQ(VersionOf(48, 1), V(2, 3, 9));
  EXPECT_TRUE(Same(Get(48, 1, 0, kBlock), d.substr(0, cut)));
  EXPECT_EQ(Indices(48), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(VersionOf(48, 0), V(1, 1, 7));  // before the cut: untouched
  EXPECT_TRUE(Same(Get(48, 0, 0, kBlock), d));
  EXPECT_EQ(store_->Stats().used, d.size() + cut);

  // At another version: the cut block is left completely alone, but the
  // blocks past the cut are removed all the same.
  Make(48, 2, d, V(2, 1, 1));
  Make(48, 7, d, V(2, 1, 1));
  out = {};
  cv = {V(1, 2, 7), V(3, 4, 9)};  // the base it was at before
  ASSERT_TRUE(store_->Truncate(48, uint64_t{kBlock} + 50, &cv, &out).ok());
  EXPECT_TRUE(out.cut_exists);
  EXPECT_FALSE(out.cut_applied);
  EXPECT_EQ(out.version, V(2, 3, 9));  // what it holds
  EXPECT_EQ(VersionOf(48, 1), V(2, 3, 9));
  EXPECT_EQ(LengthOf(48, 1), cut);
  EXPECT_TRUE(Same(Get(48, 1, 0, kBlock), d.substr(0, cut)));
  EXPECT_EQ(Indices(48), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(store_->Stats().used, d.size() + cut);
  // Another writer at the right height is "another version" too.
  cv = {V(2, 3, 8), V(3, 4, 9)};
  out = {};
  ASSERT_TRUE(store_->Truncate(48, uint64_t{kBlock} + 50, &cv, &out).ok());
  EXPECT_FALSE(out.cut_applied);
  EXPECT_EQ(LengthOf(48, 1), cut);

  // A cut at the base that removes no bytes still moves the version.
  cv = {V(2, 3, 9), V(3, 4, 9)};
  out = {};
  ASSERT_TRUE(store_->Truncate(48, uint64_t{kBlock} + cut + 500, &cv, &out).ok());
  EXPECT_TRUE(out.cut_applied);
  EXPECT_EQ(out.version, V(3, 4, 9));
  EXPECT_EQ(VersionOf(48, 1), V(3, 4, 9));
  EXPECT_TRUE(Same(Get(48, 1, 0, kBlock), d.substr(0, cut)));

  // A cut falling in a hole: nothing to cut.
  Make(48, 5, d, V(3, 1, 1));
  cv = {V(3, 4, 9), V(4, 5, 9)};
  out = {};
  ASSERT_TRUE(store_->Truncate(48, 2ull * kBlock + 10, &cv, &out).ok());
  EXPECT_FALSE(out.cut_exists);
  EXPECT_FALSE(out.cut_applied);
  EXPECT_EQ(Indices(48), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(VersionOf(48, 1), V(3, 4, 9));

  // An unversioned cut (tools) keeps the block's version.
  ASSERT_TRUE(store_->Truncate(48, uint64_t{kBlock} + 10).ok());
  EXPECT_EQ(VersionOf(48, 1), V(3, 4, 9));
  EXPECT_TRUE(Same(Get(48, 1, 0, kBlock), d.substr(0, 10)));
}

TEST_P(BlockVersionStoreTest, VersionsSurviveRestart) {
  const std::string d = Pattern(kChunk + 3, 49);
  Make(49, 0, d, V(1, 1, 5));
  ASSERT_TRUE(WriteV(49, 0, 7, "abc", V(1, 1, 5), V(1, 2, 6)).ok());
  Make(49, 1, d, V(1, 1, 5));
  ASSERT_TRUE(ReplaceV(49, 1, "replaced", V(1, 1, 5), V(1, 2, 0)).ok());
  Make(49, 2, d, V(1, 1, 5));
  WriteVersions cv{V(1, 1, 5), V(2, 2, 5)};
  ASSERT_TRUE(store_->Truncate(49, 2ull * kBlock + 100, &cv).ok());
  Reopen();
  EXPECT_EQ(VersionOf(49, 0), V(1, 2, 6));
  EXPECT_EQ(VersionOf(49, 1), V(1, 2, 0));
  EXPECT_EQ(VersionOf(49, 2), V(2, 2, 5));
  std::string model = d;
  model.replace(7, 3, "abc");
  const wire::BlockVersion want = V(1, 2, 6);
  auto r = store_->Read(49, 0, 0, kBlock, &want);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->refused);
  EXPECT_TRUE(Same(std::string(r->data(), r->size()), model));
  // The rules hold across the restart.
  EXPECT_EQ(WriteV(49, 0, 0, "x", V(1, 1, 5), V(1, 2, 5)).code(), ESTALE);
  EXPECT_EQ(WriteV(49, 2, 0, "x", Absent(2), V(2, 1, 5)).code(), ESTALE);
  ASSERT_TRUE(WriteV(49, 0, 0, "x", V(1, 2, 6), V(1, 3, 6)).ok());
  EXPECT_EQ(VersionOf(49, 0), V(1, 3, 6));
}

// A block whose header is corrupt holds no version (epoch 0), so a write to
// a hole at a later epoch discards it and writes afresh (CheckWrite says
// kApplyFresh). The result must be a readable block holding the new bytes,
// whatever part of the header was damaged.
TEST_P(BlockVersionStoreTest, FreshWriteOverACorruptHeaderLeavesAReadableBlock) {
  // Damaged length field.
  Make(50, 0, Pattern(2 * kChunk, 50), V(1, 3, 1));
  FlipHeaderByte(50, 0, LengthFieldAt());
  ASSERT_EQ(ReadErr(50, 0, 0, 10), EIO);
  ASSERT_TRUE(WriteV(50, 0, 100, "fresh", Absent(2), V(2, 1, 4)).ok());
  EXPECT_EQ(VersionOf(50, 0), V(2, 1, 4));
  EXPECT_TRUE(Same(Get(50, 0, 0, kBlock), std::string(100, '\0') + "fresh"));
}

// A fresh write over a header whose ino/index are what is damaged leaves a
// header naming this block (it once named another: EIO on every read).
TEST_P(BlockVersionStoreTest, FreshWriteOverAMisplacedOrShortHeaderLeavesAReadableBlock) {
  // Another block's file under this name: the header names another index.
  Make(51, 0, "zero", V(1, 1, 1));
  Make(51, 1, "one!", V(1, 1, 1));
  CopyBlock(51, 0, 51, 1);
  ASSERT_EQ(ReadErr(51, 1, 0, 4), EIO);
  Status st = WriteV(51, 1, 0, "new1", Absent(2), V(2, 1, 4));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadErr(51, 1, 0, 4), 0) << "an acknowledged write left an unreadable block";
  if (ReadErr(51, 1, 0, 4) == 0) {
    EXPECT_EQ(Get(51, 1, 0, kBlock), "new1");
  }
  // A header cut short (torn file): its ino and index never made it to disk.
  Make(51, 2, "two!", V(1, 1, 1));
  CutHeader(51, 2, 10);
  ASSERT_EQ(ReadErr(51, 2, 0, 4), EIO);
  st = WriteV(51, 2, 0, "new2", Absent(2), V(2, 1, 4));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadErr(51, 2, 0, 4), 0) << "an acknowledged write left an unreadable block";
  if (ReadErr(51, 2, 0, 4) == 0) {
    EXPECT_EQ(Get(51, 2, 0, kBlock), "new2");
  }
}

TEST_P(BlockStoreTest, EverythingSurvivesReopen) {
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

TEST_P(BlockStoreTest, SyncNowWritesAreDurable) {
  ASSERT_TRUE(store_->Write(25, 0, 0, "durable", wire::kBlockSyncNow).ok());
  ASSERT_TRUE(store_->Write(25, 0, 7, "!", wire::kBlockSyncNow).ok());
  EXPECT_TRUE(Same(Get(25, 0, 0, 100), "durable!"));
  EXPECT_TRUE(store_->Sync().ok());
}

// Threads writing disjoint unaligned ranges of one block, and others reading
// it all the time: every read verifies, and the end state holds every write.
TEST_P(BlockStoreTest, ConcurrentWritersToOneBlock) {
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
TEST_P(BlockStoreTest, OverlappingWritersLeaveOneWinner) {
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

TEST_P(BlockStoreTest, ConcurrentWritersToManyBlocks) {
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
  // SetXattr of more than xattr_max bytes fails with xattr_err.
  std::atomic<int> xattr_err{0};
  std::atomic<size_t> xattr_max{0};
  std::atomic<bool> no_xattrs{false};  // a filesystem without them
  int SetXattr(int fd, const char* name, const void* value, size_t n) override {
    if (no_xattrs) return errno = ENOTSUP, -1;
    if (xattr_err && n > xattr_max) return errno = xattr_err, -1;
    return DiskIo::SetXattr(fd, name, value, n);
  }
  ssize_t GetXattr(int fd, const char* name, void* value, size_t n) override {
    if (no_xattrs) return errno = ENOTSUP, -1;
    return DiskIo::GetXattr(fd, name, value, n);
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

TEST_P(BlockStoreTest, FullDiskReturnsEnospcAndKeepsOldData) {
  FaultyDisk disk;
  BlockStoreOptions opts = Opts();
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

// --- On-disk formats. Format 3 (every block created now): a 512-byte
// header, the data from file offset 512. Format 2 (blocks of clusters from
// before format 3): a 4096-byte header area, the data from offset 4096; such
// blocks are used in place.

constexpr uint32_t kMagic = 0x42534652;
constexpr uint32_t kCrcSeed = 0xFFFFFFFF;

// Format 2's header as the store wrote it before format 3. Kept here, apart
// from block_store.cc, so the store is checked against the old format and
// not against itself.
struct V2Header {
  uint32_t magic = kMagic;
  uint32_t format = 2;
  uint32_t length = 0;
  uint32_t chunk_bytes = kChunk;
  uint64_t ino = 0;
  uint64_t index = 0;
  uint32_t crc[kBlock / kChunk] = {};
  wire::BlockVersion version;
  uint32_t reserved = 0;
  uint32_t header_crc = 0;  // of every byte above
};
static_assert(sizeof(V2Header) == 320);

uint32_t V2HeaderCrc(const V2Header& h) {
  return Crc32c(&h, offsetof(V2Header, header_crc), kCrcSeed);
}

uint32_t ChunkCrc(const std::string& data, uint32_t c) {
  const size_t n = std::min<size_t>(kChunk, data.size() - size_t{c} * kChunk);
  return Crc32c(data.data() + size_t{c} * kChunk, n, kCrcSeed);
}

uint32_t Chunks(size_t length) { return static_cast<uint32_t>((length + kChunk - 1) / kChunk); }

// Bytes 1..255: bytes cut off or read from a hole (zeros) are never right.
std::string NonZeroPattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(1 + rng() % 255);
  return s;
}

class FormatTest : public VersionFixture {
 protected:
  // A format 2 block file as the old store left it: the 320-byte header,
  // nothing (a hole) up to 4096, the data. `file_size` >= 0 sets the size.
  void WriteV2(uint64_t ino, uint64_t index, const std::string& data, wire::BlockVersion v,
               off_t file_size = -1) {
    const std::string path = Path(ino, index);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    V2Header h;
    h.ino = ino;
    h.index = index;
    h.length = static_cast<uint32_t>(data.size());
    h.version = v;
    for (uint32_t c = 0; c < Chunks(data.size()); c++) h.crc[c] = ChunkCrc(data, c);
    h.header_crc = V2HeaderCrc(h);
    int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &h, sizeof h, 0), ssize_t(sizeof h));
    if (!data.empty()) {
      ASSERT_EQ(pwrite(fd, data.data(), data.size(), kV2DataStart), ssize_t(data.size()));
    }
    if (file_size >= 0) {
      ASSERT_EQ(ftruncate(fd, file_size), 0);
    }
    close(fd);
  }
  // Reads a format 2 file the way the old store did, so what an older
  // binary would make of it: a block rewritten in place must stay valid.
  ::testing::AssertionResult ReadsAsV2(uint64_t ino, uint64_t index, const std::string& want,
                                       wire::BlockVersion want_version) {
    const std::string f = FileBytes(ino, index);
    if (f.size() < sizeof(V2Header))
      return ::testing::AssertionFailure() << "a file of " << f.size() << " bytes";
    V2Header h;
    memcpy(&h, f.data(), sizeof h);
    if (h.magic != kMagic || h.format != 2 || h.chunk_bytes != kChunk || h.ino != ino ||
        h.index != index || h.header_crc != V2HeaderCrc(h))
      return ::testing::AssertionFailure() << "not a valid format 2 header";
    if (!(h.version == want_version))
      return ::testing::AssertionFailure() << "at version " << h.version << ", want " << want_version;
    if (h.length != want.size())
      return ::testing::AssertionFailure() << "length " << h.length << ", want " << want.size();
    if (h.length > 0 && f.size() != size_t(kV2DataStart) + h.length)
      return ::testing::AssertionFailure() << "file of " << f.size() << " bytes for " << h.length;
    const std::string data = h.length ? f.substr(kV2DataStart) : std::string();
    for (uint32_t c = 0; c < Chunks(data.size()); c++)
      if (h.crc[c] != ChunkCrc(data, c)) return ::testing::AssertionFailure() << "chunk " << c;
    return Same(data, want);
  }
  std::string FileBytes(uint64_t ino, uint64_t index) {
    std::string s(std::filesystem::file_size(Path(ino, index)), '\0');
    int fd = open(Path(ino, index).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(pread(fd, s.data(), s.size(), 0), ssize_t(s.size()));
    close(fd);
    return s;
  }
  // Replaces the block file with `bytes` behind the store's back.
  void PutFile(uint64_t ino, uint64_t index, std::string_view bytes) {
    int fd = open(Path(ino, index).c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    close(fd);
  }
  uint32_t FormatOf(uint64_t ino, uint64_t index) {
    uint32_t f = 0;
    memcpy(&f, FileBytes(ino, index).data() + 4, sizeof f);
    return f;
  }
  off_t FileSize(uint64_t ino, uint64_t index) {
    return static_cast<off_t>(std::filesystem::file_size(Path(ino, index)));
  }
  int VerifyErr(uint64_t ino, uint64_t index) {
    wire::BlockVersion v;
    uint32_t len;
    return store_->Verify(ino, index, &v, &len).code();
  }

  // The block's file cut to `x` bytes must read as: an empty block at 0 (a
  // creation that died before its header), EIO while its header is short;
  // then every chunk whose bytes are all in the file reads right and every
  // other one is EIO, as is a whole read or a verify while any is missing.
  void CheckCut(uint64_t ino, uint64_t index, const std::string& file, const std::string& data,
                off_t start, size_t header_bytes, off_t x) {
    SCOPED_TRACE("file cut to " + std::to_string(x) + " bytes of " + std::to_string(file.size()));
    PutFile(ino, index, std::string_view(file).substr(0, x));
    auto whole = store_->Read(ino, index, 0, kBlock);
    if (x == 0) {
      ASSERT_TRUE(whole.ok()) << whole.status().ToString();
      EXPECT_EQ(whole->size(), 0u);
      EXPECT_EQ(whole->length, 0u);
      EXPECT_EQ(VerifyErr(ino, index), 0);
      return;
    }
    if (static_cast<size_t>(x) < header_bytes) {
      EXPECT_EQ(whole.ok() ? 0 : whole.status().code(), EIO);
      EXPECT_EQ(VerifyErr(ino, index), EIO);
      return;
    }
    if (static_cast<size_t>(x) >= start + data.size()) {
      ASSERT_TRUE(whole.ok()) << whole.status().ToString();
      EXPECT_TRUE(Same(std::string(whole->data(), whole->size()), data));
      EXPECT_EQ(VerifyErr(ino, index), 0);
    } else {
      EXPECT_EQ(whole.ok() ? 0 : whole.status().code(), EIO);
      EXPECT_EQ(VerifyErr(ino, index), EIO);
    }
    for (uint32_t c = 0; c < Chunks(data.size()); c++) {
      const size_t cs = size_t{c} * kChunk, n = std::min<size_t>(kChunk, data.size() - cs);
      auto r = store_->Read(ino, index, c * kChunk, kChunk);
      if (static_cast<size_t>(x) >= start + cs + n) {
        ASSERT_TRUE(r.ok()) << "chunk " << c << ": " << r.status().ToString();
        EXPECT_TRUE(Same(std::string(r->data(), r->size()), data.substr(cs, n))) << "chunk " << c;
      } else {
        EXPECT_EQ(r.ok() ? 0 : r.status().code(), EIO) << "chunk " << c;
      }
    }
  }
  // Cut points: every byte of a small file; of a larger one every byte of
  // the header, every 7th up to the first data bytes, both sides of every
  // chunk boundary and of the end, and random ones.
  std::vector<off_t> CutPoints(off_t size, off_t start, size_t header_bytes, uint32_t seed) {
    std::set<off_t> s;
    const off_t every = size <= 8192 ? size : static_cast<off_t>(header_bytes) + 16;
    for (off_t x = 0; x <= every; x++) s.insert(x);
    for (off_t x = every; x <= std::min<off_t>(size, start + 600); x += 7) s.insert(x);
    for (off_t c = start; c < size; c += kChunk)
      for (off_t d = -3; d <= 3; d++)
        if (c + d >= 0 && c + d <= size) s.insert(c + d);
    for (off_t x = std::max<off_t>(0, size - 8); x <= size; x++) s.insert(x);
    std::mt19937 rng(seed);
    for (int i = 0; i < 300; i++) s.insert(rng() % (size + 1));
    return std::vector<off_t>(s.begin(), s.end());
  }

  // A byte flipped at file offset `at`: caught (EIO on a whole read and a
  // verify; of a data byte, on a read of its chunk, the others reading
  // right) when `covered`, else (format 2's unused header space) harmless.
  void CheckFlip(uint64_t ino, uint64_t index, const std::string& data, off_t start, off_t at,
                 bool covered) {
    SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
    FlipByte(ino, index, at);
    auto whole = store_->Read(ino, index, 0, kBlock);
    if (covered) {
      EXPECT_EQ(whole.ok() ? 0 : whole.status().code(), EIO);
      EXPECT_EQ(VerifyErr(ino, index), EIO);
    } else {
      ASSERT_TRUE(whole.ok()) << whole.status().ToString();
      EXPECT_TRUE(Same(std::string(whole->data(), whole->size()), data));
      EXPECT_EQ(VerifyErr(ino, index), 0);
    }
    if (at >= start) {
      const uint32_t bad = static_cast<uint32_t>((at - start) / kChunk);
      for (uint32_t c = 0; c < Chunks(data.size()); c++) {
        auto r = store_->Read(ino, index, c * kChunk, 1);
        if (c == bad) {
          EXPECT_EQ(r.ok() ? 0 : r.status().code(), EIO) << "chunk " << c;
        } else {
          ASSERT_TRUE(r.ok()) << "chunk " << c << ": " << r.status().ToString();
          EXPECT_EQ(std::string(r->data(), r->size()), data.substr(size_t{c} * kChunk, 1));
        }
      }
    }
    FlipByte(ino, index, at);  // back
  }
};

TEST_F(FormatTest, NewBlocksHaveA512ByteHeaderAndSmallOnesShareItsFilesystemBlock) {
  const std::string small = Pattern(3000, 60);
  Put(60, 0, 0, small);
  EXPECT_EQ(FormatOf(60, 0), 3u);
  EXPECT_EQ(FileSize(60, 0), kDataStart + 3000);
  EXPECT_TRUE(Same(FileBytes(60, 0).substr(kDataStart), small));
  // The most a block can hold in the header's 4 KiB filesystem block.
  const std::string most = Pattern(4096 - kDataStart, 61);
  Put(60, 1, 0, most);
  EXPECT_EQ(FileSize(60, 1), 4096);
  ASSERT_TRUE(store_->Sync().ok());
  for (uint64_t i : {0, 1}) {
    struct stat st;
    ASSERT_EQ(stat(Path(60, i).c_str(), &st), 0);
    EXPECT_LE(st.st_blocks * 512, 4096) << "block " << i << ": header and data in one 4 KiB block";
  }
  const std::string full = Pattern(kBlock, 62);
  Put(60, 2, 0, full);
  EXPECT_EQ(FileSize(60, 2), kDataStart + kBlock);
  EXPECT_TRUE(Same(FileBytes(60, 2).substr(kDataStart), full));
  Put(60, 3, 5 * kChunk + 3, "x");
  EXPECT_EQ(FileSize(60, 3), kDataStart + 5 * kChunk + 4);
  EXPECT_TRUE(Same(Get(60, 3, 0, kBlock), std::string(5 * kChunk + 3, '\0') + "x"));
  ASSERT_TRUE(store_->Truncate(60, 2ull * kBlock + 100).ok());
  EXPECT_EQ(FileSize(60, 2), kDataStart + 100);
  EXPECT_TRUE(Same(Get(60, 2, 0, kBlock), full.substr(0, 100)));
  EXPECT_EQ(Indices(60), (std::vector<uint64_t>{0, 1, 2}));
  // An empty replacement leaves just the header.
  const wire::BlockVersion none;
  ASSERT_TRUE(ReplaceV(60, 4, "", none, V(0, 1, 1)).ok());
  EXPECT_EQ(FileSize(60, 4), kDataStart);
  EXPECT_EQ(VersionOf(60, 4), V(0, 1, 1));
}

// An existing cluster upgrades in place: blocks of format 2 are read,
// written, cut, verified, listed, dropped and deleted; a write or a cut
// keeps them in format 2 (still valid to an older binary), a replacement or
// a fresh write makes them format 3.
TEST_F(FormatTest, Format2BlocksAreUsedInPlace) {
  const std::string small = Pattern(3000, 63), mid = Pattern(3 * kChunk + 5, 64),
                    full = Pattern(kBlock, 65), tiny = Pattern(100, 66);
  WriteV2(61, 0, small, V(1, 1, 7));
  WriteV2(61, 1, mid, V(1, 2, 7));
  WriteV2(61, 2, full, V(1, 3, 7));
  WriteV2(61, 3, "", V(1, 4, 7), kV2DataStart);  // emptied (Replace with no bytes)
  WriteV2(61, 4, "", wire::BlockVersion{});      // the header of a new block, nothing more
  WriteV2(62, 0, tiny, V(1, 1, 1));
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, 6u);
  EXPECT_EQ(store_->Stats().used, small.size() + mid.size() + full.size() + tiny.size());

  // Reads, versions, lengths, verification and listing.
  EXPECT_TRUE(Same(Get(61, 0, 0, kBlock), small));
  EXPECT_TRUE(Same(Get(61, 1, kChunk - 10, kChunk + 20), mid.substr(kChunk - 10, kChunk + 20)));
  EXPECT_TRUE(Same(Get(61, 2, 0, kBlock), full));
  EXPECT_TRUE(Same(Get(61, 3, 0, kBlock), ""));
  EXPECT_TRUE(Same(Get(61, 4, 0, kBlock), ""));
  EXPECT_EQ(VersionOf(61, 1), V(1, 2, 7));
  EXPECT_EQ(VersionOf(61, 3), V(1, 4, 7));
  EXPECT_EQ(VersionOf(61, 4), wire::BlockVersion{});
  EXPECT_EQ(LengthOf(61, 2), kBlock);
  const wire::BlockVersion want = V(1, 3, 7), other = V(1, 3, 8);
  EXPECT_FALSE(store_->Read(61, 2, 0, 10, &want)->refused);
  EXPECT_TRUE(store_->Read(61, 2, 0, 10, &other)->refused);
  for (uint64_t i = 0; i < 5; i++) {
    wire::BlockVersion v;
    uint32_t len;
    EXPECT_TRUE(store_->Verify(61, i, &v, &len).ok()) << i;
  }
  EXPECT_EQ(Indices(61), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  auto shard = store_->ListShard(61);
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ(shard->size(), 5u);

  // Writes land in place and keep the block in format 2.
  std::string m1 = mid;
  ASSERT_TRUE(WriteV(61, 1, kChunk + 10, "hello", V(1, 2, 7), V(1, 3, 7)).ok());
  m1.replace(kChunk + 10, 5, "hello");
  const std::string more = Pattern(2000, 67);
  ASSERT_TRUE(WriteV(61, 0, small.size(), more, V(1, 1, 7), V(1, 2, 7)).ok());
  std::string m0 = small + more;
  ASSERT_TRUE(WriteV(61, 3, 10, "abc", V(1, 4, 7), V(1, 5, 7)).ok());
  const std::string m3 = std::string(10, '\0') + "abc";
  Put(61, 2, kBlock - 100, "tail");
  std::string m2 = full;
  m2.replace(kBlock - 100, 4, "tail");
  EXPECT_EQ(WriteV(61, 1, 0, "x", V(1, 2, 7), V(1, 9, 9)).code(), ESTALE);
  EXPECT_TRUE(ReadsAsV2(61, 0, m0, V(1, 2, 7)));
  EXPECT_TRUE(ReadsAsV2(61, 1, m1, V(1, 3, 7)));
  EXPECT_TRUE(ReadsAsV2(61, 2, m2, V(1, 3, 7)));
  EXPECT_TRUE(ReadsAsV2(61, 3, m3, V(1, 5, 7)));
  EXPECT_TRUE(Same(Get(61, 0, 0, kBlock), m0));
  EXPECT_TRUE(Same(Get(61, 1, 0, kBlock), m1));
  EXPECT_TRUE(Same(Get(61, 2, 0, kBlock), m2));
  EXPECT_TRUE(Same(Get(61, 3, 0, kBlock), m3));

  // A cut keeps the format too; the blocks past it go.
  WriteVersions cv{V(1, 3, 7), V(2, 4, 7)};
  TruncateResult out;
  ASSERT_TRUE(store_->Truncate(61, uint64_t{kBlock} + 1000, &cv, &out).ok());
  EXPECT_TRUE(out.cut_applied);
  EXPECT_EQ(Indices(61), (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(ReadsAsV2(61, 1, m1.substr(0, 1000), V(2, 4, 7)));
  EXPECT_TRUE(Same(Get(61, 1, 0, kBlock), m1.substr(0, 1000)));
  EXPECT_EQ(store_->Stats().used, m0.size() + 1000 + tiny.size());

  // Rot in either part is caught.
  FlipByte(61, 1, kV2DataStart + 500);
  EXPECT_EQ(ReadErr(61, 1, 0, 10), EIO);
  EXPECT_EQ(VerifyErr(61, 1), EIO);
  FlipByte(61, 1, kV2DataStart + 500);
  FlipByte(61, 0, 100);
  EXPECT_EQ(ReadErr(61, 0, 0, 10), EIO);
  EXPECT_EQ(VerifyErr(61, 0), EIO);
  FlipByte(61, 0, 100);

  // A replacement makes the block format 3.
  ASSERT_TRUE(ReplaceV(61, 1, "replaced", V(2, 4, 7), V(2, 5, 7)).ok());
  EXPECT_EQ(FormatOf(61, 1), 3u);
  EXPECT_EQ(FileSize(61, 1), kDataStart + 8);
  EXPECT_TRUE(Same(Get(61, 1, 0, kBlock), "replaced"));
  // So does a fresh write over a leftover from an older epoch.
  ASSERT_TRUE(WriteV(61, 0, 10, "fresh", Absent(3), V(3, 1, 9)).ok());
  EXPECT_EQ(FormatOf(61, 0), 3u);
  EXPECT_EQ(FileSize(61, 0), kDataStart + 15);
  EXPECT_TRUE(Same(Get(61, 0, 0, kBlock), std::string(10, '\0') + "fresh"));
  EXPECT_EQ(VersionOf(61, 0), V(3, 1, 9));
  // And a rewrite of every byte of a block whose header is corrupt.
  const std::string two = Pattern(2 * kChunk, 68);
  WriteV2(63, 0, two, V(1, 1, 1));
  Reopen();
  FlipByte(63, 0, 9);
  EXPECT_EQ(ReadErr(63, 0, 0, 10), EIO);
  EXPECT_EQ(store_->Write(63, 0, 100, "x").code(), EIO);
  Put(63, 0, 0, two);
  EXPECT_EQ(FormatOf(63, 0), 3u);
  EXPECT_TRUE(Same(Get(63, 0, 0, kBlock), two));

  // Drops and deletes, with the counts right before and after a restart.
  wire::BlockVersion held;
  EXPECT_EQ(store_->Drop(62, 0, V(1, 1, 2), &held).code(), ESTALE);
  EXPECT_EQ(held, V(1, 1, 1));
  ASSERT_TRUE(store_->Drop(62, 0, V(1, 1, 1)).ok());
  EXPECT_EQ(ReadErr(62, 0, 0, 10), ENOENT);
  const StoreStats before = store_->Stats();
  EXPECT_EQ(before.blocks, 3u);
  EXPECT_EQ(before.used, 15u + 8u + two.size());
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, before.blocks);
  EXPECT_EQ(store_->Stats().used, before.used);
  ASSERT_TRUE(store_->Delete(61).ok());
  EXPECT_TRUE(Indices(61).empty());
  EXPECT_EQ(store_->Stats().blocks, 1u);
  EXPECT_EQ(store_->Stats().used, two.size());
}

// A format 2 block whose header is corrupt counts its bytes from 4096, so
// the store's used bytes stay right through a scan and its removal.
TEST_F(FormatTest, CorruptBlocksOfEitherFormatAreCountedAndRemoved) {
  WriteV2(64, 0, Pattern(5000, 69), V(1, 1, 1));
  Put(64, 1, 0, Pattern(5000, 70));
  FlipByte(64, 0, 40);  // a checksum: the format field still says 2
  FlipByte(64, 1, 40);
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, 2u);
  EXPECT_EQ(store_->Stats().used, 10000u);
  EXPECT_EQ(ReadErr(64, 0, 0, 1), EIO);
  EXPECT_EQ(ReadErr(64, 1, 0, 1), EIO);
  ASSERT_TRUE(store_->Truncate(64, 0).ok());
  EXPECT_EQ(store_->Stats().blocks, 0u);
  EXPECT_EQ(store_->Stats().used, 0u);
}

TEST_F(FormatTest, ScrubVerifiesBlocksOfBothFormats) {
  WriteV2(70, 0, Pattern(2 * kChunk, 71), V(1, 1, 1));
  WriteV2(70, 1, Pattern(3000, 72), V(1, 2, 1));
  Make(70, 2, Pattern(2 * kChunk, 73), V(1, 1, 1));
  Make(70, 3, Pattern(3000, 74), V(1, 3, 1));
  WriteV2(71, 0, Pattern(100, 75), V(1, 1, 1));
  Make(71, 1, Pattern(100, 76), V(1, 1, 1));
  Reopen();
  FlipByte(70, 1, kV2DataStart + 2999);  // data, format 2
  FlipByte(70, 3, kDataStart + 1234);    // data, format 3
  FlipByte(71, 0, 40);                   // header, format 2
  FlipByte(71, 1, 400);                  // header, format 3 (its spare bytes)
  std::mutex mu;
  std::map<std::pair<uint64_t, uint64_t>, wire::BlockVersion> bad;
  Scrubber::Options o;
  o.rate = 1ull << 40;
  o.pass_pause_ms = 10;
  Scrubber scrub(store_.get(), o, [&](uint64_t ino, uint64_t index, const wire::BlockVersion& v) {
    std::lock_guard<std::mutex> lock(mu);
    bad[{ino, index}] = v;
  });
  scrub.Start();
  for (int i = 0; i < 3000 && scrub.passes() < 2; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  scrub.Stop();
  ASSERT_GE(scrub.passes(), 2u);
  std::lock_guard<std::mutex> lock(mu);
  const std::map<std::pair<uint64_t, uint64_t>, wire::BlockVersion> want = {
      {{70, 1}, V(1, 2, 1)},  // the header is good: its version
      {{70, 3}, V(1, 3, 1)},
      {{71, 0}, wire::BlockVersion{}},  // the header is bad: none
      {{71, 1}, wire::BlockVersion{}},
  };
  EXPECT_EQ(bad, want);
}

TEST_F(FormatTest, EveryCutOfABlockFileIsEioOrTheRightBytes) {
  struct Case {
    bool v2;
    size_t length;
  };
  for (const Case& c : {Case{false, 3000}, Case{false, 2 * kChunk + 777}, Case{true, 3000},
                        Case{true, 2 * kChunk + 777}}) {
    SCOPED_TRACE(std::string(c.v2 ? "format 2, " : "format 3, ") + std::to_string(c.length) + " bytes");
    const uint64_t ino = 80 + c.v2, index = c.length;
    const std::string data = NonZeroPattern(c.length, static_cast<uint32_t>(c.length));
    if (c.v2) {
      WriteV2(ino, index, data, V(1, 1, 1));
    } else {
      Make(ino, index, data, V(1, 1, 1));
    }
    const off_t start = c.v2 ? kV2DataStart : kDataStart;
    const size_t header_bytes = c.v2 ? sizeof(V2Header) : size_t(kDataStart);
    const std::string file = FileBytes(ino, index);
    ASSERT_EQ(file.size(), start + c.length);
    for (off_t x : CutPoints(static_cast<off_t>(file.size()), start, header_bytes,
                             static_cast<uint32_t>(index))) {
      CheckCut(ino, index, file, data, start, header_bytes, x);
      if (HasFatalFailure()) return;
    }
    PutFile(ino, index, file);
    EXPECT_TRUE(Same(Get(ino, index, 0, kBlock), data));
  }
}

TEST_F(FormatTest, AFlippedByteAnywhereIsCaught) {
  // Format 3: every byte of the file is covered, the header's spare bytes too.
  const std::string small = NonZeroPattern(3000, 90), big = NonZeroPattern(2 * kChunk + 777, 91);
  Make(90, 0, small, V(1, 1, 1));
  Make(90, 1, big, V(1, 1, 1));
  for (off_t at = 0; at < kDataStart + off_t(small.size()); at++)
    CheckFlip(90, 0, small, kDataStart, at, true);
  for (off_t at = 0; at < kDataStart + off_t(big.size()); at += at < kDataStart ? 1 : 97)
    CheckFlip(90, 1, big, kDataStart, at, true);
  for (off_t c = kDataStart; c < kDataStart + off_t(big.size()); c += kChunk)
    for (off_t at : {c - 1, c, c + 1}) CheckFlip(90, 1, big, kDataStart, at, true);
  CheckFlip(90, 1, big, kDataStart, kDataStart + off_t(big.size()) - 1, true);
  // Format 2: its header and data are covered; the rest of its 4 KiB header
  // area never was (nothing reads it), so a flip there changes nothing read.
  WriteV2(91, 0, small, V(1, 1, 1));
  WriteV2(91, 1, big, V(1, 1, 1));
  for (off_t at = 0; at < kV2DataStart + off_t(small.size()); at++)
    CheckFlip(91, 0, small, kV2DataStart, at, at < off_t(sizeof(V2Header)) || at >= kV2DataStart);
  for (off_t at = 0; at < kV2DataStart + off_t(big.size()); at += at < off_t(sizeof(V2Header)) ? 1 : 97)
    CheckFlip(91, 1, big, kV2DataStart, at, at < off_t(sizeof(V2Header)) || at >= kV2DataStart);
  // The one format change that moves the data: 3 <-> 2. Caught both ways.
  for (uint64_t ino : {90, 91}) {
    for (uint64_t index : {0, 1}) {
      const std::string f = FileBytes(ino, index);
      std::string g = f;
      g[4] = ino == 90 ? 2 : 3;
      PutFile(ino, index, g);
      EXPECT_EQ(ReadErr(ino, index, 0, 1), EIO) << ino << "/" << index;
      EXPECT_EQ(VerifyErr(ino, index), EIO) << ino << "/" << index;
      PutFile(ino, index, f);
      EXPECT_EQ(ReadErr(ino, index, 0, 1), 0);
    }
  }
}

// --- Format 4: the header in the `user.ringfs` xattr, the data from file
// offset 0; block 0 flat in its shard directory.
class Format4Test : public FormatTest {
 protected:
  void SetUp() override {
    v4_ = true;
    FormatTest::SetUp();
  }
  bool HasXattr(uint64_t ino, uint64_t index) {
    return getxattr(Path(ino, index).c_str(), "user.ringfs", nullptr, 0) >= 0;
  }
  blkcnt_t Allocated(uint64_t ino, uint64_t index) {
    struct stat st;
    EXPECT_EQ(stat(Path(ino, index).c_str(), &st), 0);
    return st.st_blocks * 512;
  }
};

TEST_F(Format4Test, NewBlocksKeepTheirHeaderInTheInodeAndTheirDataFromOffset0) {
  const std::string page = Pattern(4096, 80);
  Put(80, 0, 0, page);
  EXPECT_TRUE(Same(FileBytes(80, 0), page));
  EXPECT_EQ(HeaderXattr(80, 0).size(), 56u);  // 52 + one chunk's crc
  // One 4 KiB filesystem block for a 4 KiB block (format 3: two).
  EXPECT_EQ(Allocated(80, 0), 4096);
  // Block 0 lies flat in its shard: no directory for a one-block inode.
  EXPECT_TRUE(std::filesystem::is_regular_file(Path(80, 0)));
  EXPECT_FALSE(std::filesystem::exists(InodeDir(80)));
  // Up to 3 chunks the header still fits the inode (64 bytes).
  const std::string three = Pattern(3 * kChunk, 81);
  Put(80, 1, 0, three);
  EXPECT_EQ(HeaderXattr(80, 1).size(), 64u);
  EXPECT_EQ(Allocated(80, 1), 3 * kChunk);
  EXPECT_TRUE(std::filesystem::is_directory(InodeDir(80)));
  const std::string full = Pattern(kBlock, 82);
  Put(80, 2, 0, full);
  EXPECT_EQ(HeaderXattr(80, 2).size(), 52u + 4 * (kBlock / kChunk));
  EXPECT_TRUE(Same(FileBytes(80, 2), full));
  ASSERT_TRUE(store_->Truncate(80, 2ull * kBlock + 100).ok());
  EXPECT_EQ(FileSize(80, 2), 100);
  EXPECT_EQ(HeaderXattr(80, 2).size(), 56u);
  EXPECT_TRUE(Same(Get(80, 2, 0, kBlock), full.substr(0, 100)));
  EXPECT_EQ(Indices(80), (std::vector<uint64_t>{0, 1, 2}));
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, 3u);
  EXPECT_EQ(store_->Stats().used, 4096u + 3 * kChunk + 100);
  EXPECT_TRUE(Same(Get(80, 1, 0, kBlock), three));
  ASSERT_TRUE(store_->Delete(80).ok());
  EXPECT_FALSE(std::filesystem::exists(Path(80, 0)));
  EXPECT_FALSE(std::filesystem::exists(InodeDir(80)));
}

// The data file cut anywhere (a crash during an extension, a lost page):
// the chunks wholly in the file read right, the others are EIO. The header
// cut anywhere, flipped anywhere or lost with data left is EIO; lost with
// an empty file, a creation that died: an empty block.
TEST_F(Format4Test, EveryCutOrFlipOfDataOrHeaderIsEioOrTheRightBytes) {
  const std::string data = NonZeroPattern(3 * kChunk + 777, 83);
  Put(84, 0, 0, data);
  const std::string file = FileBytes(84, 0), header = HeaderXattr(84, 0);
  for (off_t x : CutPoints(off_t(file.size()), 0, 0, 84)) {
    SCOPED_TRACE("data cut to " + std::to_string(x));
    PutFile(84, 0, std::string_view(file).substr(0, x));
    EXPECT_EQ(ReadErr(84, 0, 0, kBlock), size_t(x) >= data.size() ? 0 : EIO);
    EXPECT_EQ(VerifyErr(84, 0), size_t(x) >= data.size() ? 0 : EIO);
    for (uint32_t c = 0; c < Chunks(data.size()); c++) {
      const size_t cs = size_t{c} * kChunk, n = std::min<size_t>(kChunk, data.size() - cs);
      if (size_t(x) >= cs + n) {
        EXPECT_TRUE(Same(Get(84, 0, c * kChunk, kChunk), data.substr(cs, n))) << "chunk " << c;
      } else {
        EXPECT_EQ(ReadErr(84, 0, c * kChunk, kChunk), EIO) << "chunk " << c;
      }
    }
  }
  PutFile(84, 0, file);
  EXPECT_TRUE(Same(Get(84, 0, 0, kBlock), data));
  for (size_t n = 0; n < header.size(); n++) {
    SetHeaderXattr(84, 0, header.substr(0, n));
    EXPECT_EQ(ReadErr(84, 0, 0, 1), EIO) << "header cut to " << n;
  }
  for (size_t at = 0; at < header.size(); at++) {
    std::string bad = header;
    bad[at] ^= 0x01;
    SetHeaderXattr(84, 0, bad);
    EXPECT_EQ(ReadErr(84, 0, 0, 1), EIO) << "header byte " << at;
    EXPECT_EQ(VerifyErr(84, 0), EIO) << "header byte " << at;
  }
  SetHeaderXattr(84, 0, header);
  for (off_t at = 0; at < off_t(data.size()); at += at < 600 ? 1 : 4099)
    CheckFlip(84, 0, data, 0, at, true);
  EXPECT_TRUE(Same(Get(84, 0, 0, kBlock), data));
  ASSERT_EQ(removexattr(Path(84, 0).c_str(), "user.ringfs"), 0);
  EXPECT_EQ(ReadErr(84, 0, 0, 1), EIO) << "data without a header";
  ASSERT_EQ(truncate(Path(84, 0).c_str(), 0), 0);
  EXPECT_EQ(ReadErr(84, 0, 0, 1), 0) << "a creation that died before its header";
  EXPECT_EQ(LengthOf(84, 0), 0u);
}

// A store of format 2 and 3 blocks reads and writes them in place; a
// replacement, or a fresh write discarding the old bytes, makes format 4.
TEST_F(Format4Test, OlderFormatsAreUsedInPlaceAndBecomeFormat4WhenDiscarded) {
  const std::string a = Pattern(5000, 85), b = Pattern(2 * kChunk + 3, 86);
  WriteV2(85, 1, a, V(1, 1, 1));
  v4_ = false;
  Reopen();
  Make(85, 2, b, V(1, 1, 1));
  v4_ = true;
  Reopen();
  EXPECT_EQ(store_->Stats().blocks, 2u);
  EXPECT_FALSE(HasXattr(85, 1));
  EXPECT_FALSE(HasXattr(85, 2));
  EXPECT_EQ(FormatOf(85, 2), 3u);
  EXPECT_TRUE(Same(Get(85, 1, 0, kBlock), a));
  EXPECT_TRUE(Same(Get(85, 2, 0, kBlock), b));
  // Writes in place keep the format.
  ASSERT_TRUE(WriteV(85, 1, 10, "xyz", V(1, 1, 1), V(1, 2, 1)).ok());
  ASSERT_TRUE(WriteV(85, 2, kChunk, "xyz", V(1, 1, 1), V(1, 2, 1)).ok());
  EXPECT_FALSE(HasXattr(85, 1));
  EXPECT_FALSE(HasXattr(85, 2));
  std::string a2 = a, b2 = b;
  a2.replace(10, 3, "xyz");
  b2.replace(kChunk, 3, "xyz");
  EXPECT_TRUE(ReadsAsV2(85, 1, a2, V(1, 2, 1)));
  EXPECT_TRUE(Same(Get(85, 2, 0, kBlock), b2));
  // A replacement discards the bytes: format 4.
  ASSERT_TRUE(ReplaceV(85, 1, b, V(1, 2, 1), V(1, 3, 1)).ok());
  EXPECT_TRUE(HasXattr(85, 1));
  EXPECT_TRUE(Same(FileBytes(85, 1), b));
  // So does a fresh write over an older epoch.
  ASSERT_TRUE(WriteV(85, 2, 7, "fresh", Absent(2), V(2, 1, 1)).ok());
  EXPECT_TRUE(HasXattr(85, 2));
  EXPECT_TRUE(Same(FileBytes(85, 2), std::string(7, '\0') + "fresh"));
  Reopen();
  EXPECT_TRUE(Same(Get(85, 1, 0, kBlock), b));
  EXPECT_EQ(VersionOf(85, 2), V(2, 1, 1));
  EXPECT_EQ(store_->Stats().used, b.size() + 12);
  // A format 4 block on a store told to make format 3 stays format 4.
  v4_ = false;
  Reopen();
  ASSERT_TRUE(ReplaceV(85, 1, a, V(1, 3, 1), V(1, 4, 1)).ok());
  EXPECT_TRUE(HasXattr(85, 1));
  EXPECT_TRUE(Same(Get(85, 1, 0, kBlock), a));
}

// Stores from before flat block 0 kept it at <ino hex>/0; Open moves it.
TEST_F(Format4Test, Block0OfAnOlderStoreMovesOutOfItsInodeDirectory) {
  const std::string d0 = Pattern(100, 87), d1 = Pattern(200, 88), e0 = Pattern(300, 89);
  Put(87, 0, 0, d0);
  Put(87, 1, 0, d1);
  Put(88, 0, 0, e0);
  Put(89, 0, 0, "flat");
  Put(89, 2, 0, "two");
  store_.reset();
  for (uint64_t ino : {87, 88}) {
    std::filesystem::create_directories(InodeDir(ino));
    std::filesystem::rename(Path(ino, 0), InodeDir(ino) + "/0");
  }
  // Both names (an older binary run on the store after this one): the flat
  // block is kept, the other ignored.
  std::filesystem::copy_file(Path(89, 2), InodeDir(89) + "/0");
  Reopen();
  EXPECT_TRUE(std::filesystem::is_regular_file(Path(87, 0)));
  EXPECT_TRUE(std::filesystem::is_regular_file(Path(88, 0)));
  EXPECT_FALSE(std::filesystem::exists(InodeDir(87) + "/0"));
  EXPECT_FALSE(std::filesystem::exists(InodeDir(88))) << "an empty inode directory left";
  EXPECT_TRUE(Same(Get(87, 0, 0, kBlock), d0));
  EXPECT_TRUE(Same(Get(87, 1, 0, kBlock), d1));
  EXPECT_TRUE(Same(Get(88, 0, 0, kBlock), e0));
  EXPECT_EQ(Get(89, 0, 0, kBlock), "flat");
  EXPECT_EQ(Indices(89), (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(store_->Stats().blocks, 5u);
  EXPECT_EQ(store_->Stats().used, 100u + 200 + 300 + 4 + 3);
  auto shard = store_->ListShard(87 & 0xff);
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ(shard.value(), (std::vector<std::pair<uint64_t, uint64_t>>{{87, 0}, {87, 1}}));
  ASSERT_TRUE(store_->Reset().ok());
  EXPECT_TRUE(Indices(87).empty());
  EXPECT_TRUE(Indices(88).empty());
}

// A header outgrowing the inode needs a filesystem block: on a full disk
// the write fails before any byte changes, and the old block reads whole.
TEST_F(Format4Test, AHeaderLeavingTheInodeOnAFullDiskKeepsTheOldBlock) {
  FaultyDisk disk;
  BlockStoreOptions opts = Opts();
  opts.io = &disk;
  Reopen(opts);
  const std::string d = Pattern(kChunk, 90);
  Put(90, 0, 0, d);
  disk.xattr_max = 64;  // what fits the inode
  disk.xattr_err = ENOSPC;
  EXPECT_EQ(store_->Write(90, 0, 100, Pattern(4 * kChunk, 91)).code(), ENOSPC);
  EXPECT_TRUE(Same(Get(90, 0, 0, kBlock), d));
  EXPECT_EQ(store_->Stats().used, kChunk);
  // Inside the inode it still works.
  Put(90, 0, 100, "small");
  disk.xattr_err = 0;
  const std::string big = Pattern(4 * kChunk, 92);
  Put(90, 0, 0, big);
  EXPECT_TRUE(Same(Get(90, 0, 0, kBlock), big));
}

// Without user xattrs (tmpfs before 6.6, ext4 mounted nouser_xattr) new
// blocks are format 3.
TEST_F(Format4Test, AFilesystemWithoutXattrsGetsFormat3) {
  FaultyDisk disk;
  disk.no_xattrs = true;
  BlockStoreOptions opts = Opts();
  opts.io = &disk;
  Reopen(opts);
  const std::string d = Pattern(3000, 93);
  Put(93, 0, 0, d);
  EXPECT_FALSE(HasXattr(93, 0));
  EXPECT_EQ(FormatOf(93, 0), 3u);
  EXPECT_EQ(FileSize(93, 0), kDataStart + 3000);
  EXPECT_TRUE(Same(Get(93, 0, 0, kBlock), d));
}

}  // namespace
}  // namespace ringfs::blockd
