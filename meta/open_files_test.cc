#include "meta/open_files.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ringfs::meta {
namespace {

using std::chrono::seconds;
using Vec = std::vector<uint64_t>;

Vec Sorted(Vec v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(OpenFilesTest, CountsOpensAcrossSessions) {
  OpenFiles f;
  const auto t = OpenFiles::Clock::now();
  f.Open(1, 10, t);
  f.Open(1, 10, t);
  f.Open(2, 10, t);
  EXPECT_TRUE(f.IsOpen(10));
  EXPECT_EQ(f.Close(1, 10, t), 2u);
  EXPECT_EQ(f.Close(2, 10, t), 1u);
  EXPECT_EQ(f.Close(1, 10, t), 0u);
  EXPECT_FALSE(f.IsOpen(10));
  // A close nobody counted (after a restart, say) changes nothing.
  EXPECT_EQ(f.Close(3, 10, t), 0u);
  EXPECT_EQ(f.Close(1, 10, t), 0u);
}

TEST(OpenFilesTest, BeatReplacesASessionsOpens) {
  OpenFiles f;
  const auto t = OpenFiles::Clock::now();
  f.Open(1, 10, t);
  f.Open(1, 11, t);
  f.Open(2, 11, t);
  // Session 1 now holds 11 twice and 12; 10 is free, 11 stays open.
  EXPECT_EQ(Sorted(f.Beat(1, {11, 12, 11}, t)), Vec{10});
  EXPECT_FALSE(f.IsOpen(10));
  EXPECT_EQ(f.Close(2, 11, t), 2u);
  // A service that restarted learns a session's opens from its first beat.
  OpenFiles fresh;
  EXPECT_TRUE(fresh.Beat(7, {42}, t).empty());
  EXPECT_TRUE(fresh.IsOpen(42));
  EXPECT_EQ(fresh.Sessions(), 1u);
}

TEST(OpenFilesTest, SilentSessionsExpireWithTheirOpens) {
  OpenFiles f;
  const auto t = OpenFiles::Clock::now();
  f.Open(1, 10, t);
  f.Open(2, 10, t + seconds(30));
  f.Open(1, 11, t);
  EXPECT_EQ(Sorted(f.Expire(t + seconds(20))), Vec{11});  // 10 is still open in session 2
  EXPECT_EQ(f.Sessions(), 1u);
  EXPECT_TRUE(f.IsOpen(10));
  EXPECT_EQ(Sorted(f.Expire(t + seconds(60))), Vec{10});
  EXPECT_EQ(f.Sessions(), 0u);
}

// A reclaim and an open of the same file exclude each other: the reclaim
// starts only if nobody has it open, and until it ends an open is refused
// (it would read a file about to be deleted).
TEST(OpenFilesTest, AReclaimAndAnOpenExcludeEachOther) {
  OpenFiles f;
  const auto t = OpenFiles::Clock::now();
  ASSERT_TRUE(f.Open(1, 10, t));
  EXPECT_FALSE(f.BeginReclaim(10));  // open: its last close reclaims it
  f.Close(1, 10, t);
  ASSERT_TRUE(f.BeginReclaim(10));
  EXPECT_FALSE(f.Open(2, 10, t));  // refused while being reclaimed
  EXPECT_FALSE(f.IsOpen(10));
  EXPECT_TRUE(f.Open(2, 11, t));  // other files are not affected
  f.EndReclaim(10);
  EXPECT_TRUE(f.Open(2, 10, t));
  // Expired sessions are named, so the service can forget them.
  std::vector<uint64_t> expired;
  f.Expire(t + seconds(60), &expired);
  EXPECT_EQ(expired, (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace ringfs::meta
