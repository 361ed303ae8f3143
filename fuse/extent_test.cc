// Extent: a block's buffered writes as merged ranges.
#include <gtest/gtest.h>

#include <random>

#include "fuse/inode.h"

namespace ringfs::fuse {
namespace {

// Checks the ranges against a model of written bytes: disjoint, never
// touching (they merge), bytes counted, contents equal.
void Check(const Extent& e, const std::string& model, const std::vector<bool>& written) {
  size_t total = 0, prev_end = 0;
  bool first = true;
  for (const auto& [off, d] : e.ranges) {
    ASSERT_FALSE(d.empty());
    if (!first) ASSERT_GT(off, prev_end) << "ranges touch or overlap";
    first = false;
    prev_end = off + d.size();
    total += d.size();
    for (size_t i = 0; i < d.size(); i++) {
      ASSERT_TRUE(written[off + i]) << "byte " << off + i << " buffered but never written";
      ASSERT_EQ(d[i], model[off + i]) << "byte " << off + i;
    }
  }
  ASSERT_EQ(total, e.bytes);
  size_t want = 0;
  for (bool w : written) want += w;
  ASSERT_EQ(total, want);
}

TEST(Extent, RandomWritesMergeAndLaterBytesWin) {
  std::mt19937 rng(11);
  const size_t kSize = 1 << 20;
  for (int trial = 0; trial < 20; trial++) {
    Extent e;
    std::string model(kSize, '\0');
    std::vector<bool> written(kSize, false);
    for (int i = 0; i < 300; i++) {
      const uint32_t n = 1 + rng() % (rng() % 4 == 0 ? 70000 : 4096);
      const uint32_t off = rng() % (kSize - n);
      std::string data(n, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      e.Add(off, data.data(), n);
      model.replace(off, n, data);
      for (uint32_t k = 0; k < n; k++) written[off + k] = true;
    }
    Check(e, model, written);
  }
}

TEST(Extent, SequentialWritesStayOneRangeAndFillTheBlock) {
  Extent e;
  std::string chunk(1 << 20, 'x');
  for (uint32_t off = 0; off < wire::kBlockSize; off += chunk.size()) {
    EXPECT_FALSE(e.WholeTail());
    e.Add(off, chunk.data(), chunk.size());
    EXPECT_EQ(e.ranges.size(), 1u);
  }
  EXPECT_TRUE(e.WholeTail());
  EXPECT_EQ(e.bytes, wire::kBlockSize);
}

TEST(Extent, AWriteBridgingTwoRangesMergesThem) {
  Extent e;
  e.Add(0, "aaaa", 4);
  e.Add(10, "bbbb", 4);
  EXPECT_EQ(e.ranges.size(), 2u);
  e.Add(4, "cccccc", 6);  // touches both
  ASSERT_EQ(e.ranges.size(), 1u);
  EXPECT_EQ(e.ranges.begin()->second, "aaaaccccccbbbb");
  EXPECT_EQ(e.bytes, 14u);
  e.Add(2, "zz", 2);  // inside
  EXPECT_EQ(e.ranges.begin()->second, "aazzccccccbbbb");
  EXPECT_EQ(e.bytes, 14u);
}

}  // namespace
}  // namespace ringfs::fuse
