// The pure rules of replica currency (common/block_version.h), including
// the inputs a stale replica, a lagging client or a hostile one produces.
#include "common/block_version.h"
#include "common/wire_printers.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <vector>


namespace ringfs::blockver {

std::ostream& operator<<(std::ostream& os, WriteCheck c) {
  switch (c) {
    case WriteCheck::kRefuse: return os << "kRefuse";
    case WriteCheck::kApply: return os << "kApply";
    case WriteCheck::kApplyFresh: return os << "kApplyFresh";
  }
  return os << "WriteCheck(" << static_cast<int>(c) << ")";
}
std::ostream& operator<<(std::ostream& os, CommitCheck c) {
  switch (c) {
    case CommitCheck::kReplace: return os << "kReplace";
    case CommitCheck::kMerge: return os << "kMerge";
    case CommitCheck::kIgnore: return os << "kIgnore";
    case CommitCheck::kInvalid: return os << "kInvalid";
  }
  return os << "CommitCheck(" << static_cast<int>(c) << ")";
}

namespace {

using wire::BlockVersion;
using wire::VersionRun;

BlockVersion V(uint64_t epoch, uint64_t height, uint64_t writer) {
  return BlockVersion{epoch, height, writer};
}
// "No block since truncation epoch `epoch`."
BlockVersion Absent(uint64_t epoch) { return BlockVersion{epoch, 0, 0}; }

TEST(BlockVersionTest, QuorumIsAMajority) {
  EXPECT_EQ(Quorum(1), 1u);
  EXPECT_EQ(Quorum(2), 2u);
  EXPECT_EQ(Quorum(3), 2u);
  EXPECT_EQ(Quorum(4), 3u);
  EXPECT_EQ(Quorum(5), 3u);
  // Any two quorums of the same replica set share a replica.
  for (size_t n = 1; n <= 16; n++) EXPECT_GT(2 * Quorum(n), n) << n;
}

TEST(BlockVersionTest, AbsentIsHeightZero) {
  EXPECT_TRUE(BlockVersion{}.absent());
  EXPECT_TRUE(Absent(7).absent());
  EXPECT_TRUE(V(7, 0, 9).absent());  // a writer does not make it a block
  EXPECT_FALSE(V(0, 1, 0).absent());
}

TEST(BlockVersionTest, NewerOrdersByEpochThenHeight) {
  EXPECT_TRUE(Newer(V(1, 2, 1), V(1, 1, 1)));
  EXPECT_FALSE(Newer(V(1, 1, 1), V(1, 2, 1)));
  // A later epoch wins over any height.
  EXPECT_TRUE(Newer(V(2, 1, 1), V(1, 100, 1)));
  EXPECT_FALSE(Newer(V(1, 100, 1), V(2, 1, 1)));
  // Not newer than itself, nor than the same (epoch, height) by another writer.
  EXPECT_FALSE(Newer(V(3, 3, 1), V(3, 3, 1)));
  EXPECT_FALSE(Newer(V(3, 3, 1), V(3, 3, 2)));
  EXPECT_FALSE(Newer(V(3, 3, 2), V(3, 3, 1)));
  // An absent version at a later epoch is "newer" by order alone.
  EXPECT_TRUE(Newer(Absent(4), V(3, 9, 1)));
}

TEST(BlockVersionTest, NextTakesTheMaxEpochAndOneMoreHeight) {
  EXPECT_EQ(Next(V(3, 5, 1), 2, 9), V(3, 6, 9));  // a lagging epoch never lowers it
  EXPECT_EQ(Next(V(3, 5, 1), 3, 9), V(3, 6, 9));
  EXPECT_EQ(Next(V(1, 5, 1), 4, 9), V(4, 6, 9));
  EXPECT_EQ(Next(Absent(0), 0, 7), V(0, 1, 7));
  EXPECT_EQ(Next(Absent(2), 5, 7), V(5, 1, 7));
  EXPECT_EQ(Next(Absent(6), 5, 7), V(6, 1, 7));
  // Always newer than the base.
  for (const BlockVersion& b : {V(0, 0, 0), V(2, 3, 4), Absent(9), V(9, 1, 1)})
    for (uint64_t e : {0, 1, 5, 10}) EXPECT_TRUE(Newer(Next(b, e, 1), b)) << b << " at " << e;
}

TEST(BlockVersionTest, CheckWriteWithARealBaseNeedsAnExactMatch) {
  const BlockVersion base = V(2, 5, 11);
  EXPECT_EQ(CheckWrite(true, base, base), WriteCheck::kApply);
  // Any field off: refused.
  EXPECT_EQ(CheckWrite(true, V(2, 5, 12), base), WriteCheck::kRefuse);  // another writer
  EXPECT_EQ(CheckWrite(true, V(2, 4, 11), base), WriteCheck::kRefuse);  // behind
  EXPECT_EQ(CheckWrite(true, V(2, 6, 11), base), WriteCheck::kRefuse);  // ahead
  EXPECT_EQ(CheckWrite(true, V(1, 5, 11), base), WriteCheck::kRefuse);  // older epoch
  EXPECT_EQ(CheckWrite(true, V(3, 5, 11), base), WriteCheck::kRefuse);  // newer epoch
  EXPECT_EQ(CheckWrite(true, BlockVersion{}, base), WriteCheck::kRefuse);  // unversioned/corrupt
  EXPECT_EQ(CheckWrite(true, Absent(2), base), WriteCheck::kRefuse);
  // A missing block is never at a real base, whatever `stored` says.
  EXPECT_EQ(CheckWrite(false, base, base), WriteCheck::kRefuse);
  EXPECT_EQ(CheckWrite(false, BlockVersion{}, base), WriteCheck::kRefuse);
}

TEST(BlockVersionTest, CheckWriteWithAnAbsentBase) {
  // A missing block takes it at any epoch.
  EXPECT_EQ(CheckWrite(false, BlockVersion{}, Absent(0)), WriteCheck::kApply);
  EXPECT_EQ(CheckWrite(false, BlockVersion{}, Absent(5)), WriteCheck::kApply);
  EXPECT_EQ(CheckWrite(false, V(9, 9, 9), Absent(5)), WriteCheck::kApply);  // `stored` unused
  // A block left over from before truncation E: discarded, then written.
  EXPECT_EQ(CheckWrite(true, V(4, 30, 2), Absent(5)), WriteCheck::kApplyFresh);
  EXPECT_EQ(CheckWrite(true, V(0, 1, 2), Absent(1)), WriteCheck::kApplyFresh);
  EXPECT_EQ(CheckWrite(true, BlockVersion{}, Absent(1)), WriteCheck::kApplyFresh);
  // One written at E or later is current (or ahead of the writer): refused.
  EXPECT_EQ(CheckWrite(true, V(5, 1, 2), Absent(5)), WriteCheck::kRefuse);
  EXPECT_EQ(CheckWrite(true, V(6, 1, 2), Absent(5)), WriteCheck::kRefuse);
  EXPECT_EQ(CheckWrite(true, V(0, 1, 2), Absent(0)), WriteCheck::kRefuse);
  // An existing block without a version (or a corrupt header) at epoch 0
  // is not "before" epoch 0.
  EXPECT_EQ(CheckWrite(true, BlockVersion{}, Absent(0)), WriteCheck::kRefuse);
  // A writer field on an absent base changes nothing: it is still absent.
  EXPECT_EQ(CheckWrite(true, V(4, 3, 1), V(5, 0, 77)), WriteCheck::kApplyFresh);
  EXPECT_EQ(CheckWrite(true, V(5, 3, 1), V(5, 0, 77)), WriteCheck::kRefuse);
  EXPECT_EQ(CheckWrite(false, BlockVersion{}, V(5, 0, 77)), WriteCheck::kApply);
}

TEST(BlockVersionTest, CheckCommitRefusesWhatNoClientSends) {
  const BlockVersion rec = V(2, 3, 4);
  for (const BlockVersion* r : {static_cast<const BlockVersion*>(nullptr), &rec}) {
    EXPECT_EQ(CheckCommit(r, BlockVersion{}, 2), CommitCheck::kInvalid);
    EXPECT_EQ(CheckCommit(r, Absent(2), 2), CommitCheck::kInvalid);
    EXPECT_EQ(CheckCommit(r, V(2, 0, 5), 2), CommitCheck::kInvalid);    // height 0
    EXPECT_EQ(CheckCommit(r, V(2, 9, 0), 2), CommitCheck::kInvalid);    // writer 0
    EXPECT_EQ(CheckCommit(r, V(3, 1, 5), 2), CommitCheck::kInvalid);    // a future epoch
    EXPECT_EQ(CheckCommit(r, V(UINT64_MAX, 1, 5), 2), CommitCheck::kInvalid);
  }
  // Even a copy of the record itself, when the record is bad.
  const BlockVersion bad = V(2, 3, 0);
  EXPECT_EQ(CheckCommit(&bad, bad, 2), CommitCheck::kInvalid);
}

TEST(BlockVersionTest, CheckCommitAgainstARecord) {
  const BlockVersion rec = V(2, 3, 4);
  // Newer: by epoch (whatever the height), then by height.
  EXPECT_EQ(CheckCommit(&rec, V(3, 1, 9), 3), CommitCheck::kReplace);
  EXPECT_EQ(CheckCommit(&rec, V(2, 4, 9), 2), CommitCheck::kReplace);
  EXPECT_EQ(CheckCommit(&rec, V(2, 4, 4), 5), CommitCheck::kReplace);
  // The same version: its holders are merged.
  EXPECT_EQ(CheckCommit(&rec, rec, 2), CommitCheck::kMerge);
  EXPECT_EQ(CheckCommit(&rec, rec, 7), CommitCheck::kMerge);
  // Older: ignored (a commit that lost a race, or a replay).
  EXPECT_EQ(CheckCommit(&rec, V(2, 2, 4), 2), CommitCheck::kIgnore);
  EXPECT_EQ(CheckCommit(&rec, V(1, 50, 4), 2), CommitCheck::kIgnore);
  // The same (epoch, height) by another writer: beside it, not newer.
  EXPECT_EQ(CheckCommit(&rec, V(2, 3, 5), 2), CommitCheck::kIgnore);
  EXPECT_EQ(CheckCommit(&rec, V(2, 3, 3), 2), CommitCheck::kIgnore);
}

TEST(BlockVersionTest, CheckCommitWithoutARecord) {
  // Taken only when written in the file's current epoch.
  EXPECT_EQ(CheckCommit(nullptr, V(4, 1, 1), 4), CommitCheck::kReplace);
  EXPECT_EQ(CheckCommit(nullptr, V(4, 17, 1), 4), CommitCheck::kReplace);
  EXPECT_EQ(CheckCommit(nullptr, V(0, 1, 1), 0), CommitCheck::kReplace);
  // Written before a truncation since: that block is gone.
  EXPECT_EQ(CheckCommit(nullptr, V(3, 9, 1), 4), CommitCheck::kIgnore);
  EXPECT_EQ(CheckCommit(nullptr, V(0, 1, 1), 1), CommitCheck::kIgnore);
}

TEST(BlockVersionTest, QuorumNewerNeedsAgreementOnSomethingNewer) {
  const BlockVersion expected = V(1, 4, 1);
  const BlockVersion ahead = V(1, 5, 2);
  // Nothing seen.
  EXPECT_EQ(QuorumNewer({}, expected, 2), std::nullopt);
  // A quorum agreeing on a newer version.
  EXPECT_EQ(QuorumNewer({ahead, ahead, expected}, expected, 2), ahead);
  EXPECT_EQ(QuorumNewer({expected, ahead, ahead}, expected, 2), ahead);
  EXPECT_EQ(QuorumNewer({ahead, ahead, ahead}, expected, 2), ahead);
  // One copy is not a quorum of three.
  EXPECT_EQ(QuorumNewer({ahead, expected, expected}, expected, 2), std::nullopt);
  // Newer copies that disagree: no quorum.
  EXPECT_EQ(QuorumNewer({ahead, V(1, 5, 3), V(1, 6, 2)}, expected, 2), std::nullopt);
  // Same (epoch, height), different writers: they do not agree.
  EXPECT_EQ(QuorumNewer({V(1, 5, 2), V(1, 5, 3)}, expected, 2), std::nullopt);
  // Agreement on the expected version itself, or on an older one, is not newer.
  EXPECT_EQ(QuorumNewer({expected, expected, expected}, expected, 2), std::nullopt);
  EXPECT_EQ(QuorumNewer({V(1, 3, 1), V(1, 3, 1), V(1, 3, 1)}, expected, 2), std::nullopt);
  EXPECT_EQ(QuorumNewer({V(1, 4, 9), V(1, 4, 9)}, expected, 2), std::nullopt);  // beside it
  // A newer epoch counts as newer.
  EXPECT_EQ(QuorumNewer({V(2, 1, 5), V(2, 1, 5), expected}, expected, 2), V(2, 1, 5));
}

TEST(BlockVersionTest, QuorumNewerNeverCountsAbsentVersions) {
  const BlockVersion expected = V(1, 4, 1);
  // Absent copies at a later epoch order as "newer" but hold nothing.
  EXPECT_EQ(QuorumNewer({Absent(5), Absent(5), Absent(5)}, expected, 2), std::nullopt);
  EXPECT_EQ(QuorumNewer({V(5, 0, 3), V(5, 0, 3)}, expected, 1), std::nullopt);
  EXPECT_EQ(QuorumNewer({BlockVersion{}, BlockVersion{}}, BlockVersion{}, 1), std::nullopt);
  // ... nor toward another version's agreement.
  const BlockVersion ahead = V(1, 5, 2);
  EXPECT_EQ(QuorumNewer({ahead, Absent(5), Absent(5)}, expected, 2), std::nullopt);
  EXPECT_EQ(QuorumNewer({Absent(5), ahead, ahead}, expected, 2), ahead);
}

TEST(BlockVersionTest, QuorumNewerIgnoresAMinorityVersion) {
  const BlockVersion expected = V(1, 4, 1);
  const BlockVersion majority = V(1, 5, 2), minority = V(1, 9, 3);  // the minority is newer still
  EXPECT_EQ(QuorumNewer({minority, majority, majority}, expected, 2), majority);
  EXPECT_EQ(QuorumNewer({majority, minority, majority}, expected, 2), majority);
  EXPECT_EQ(QuorumNewer({minority, majority, majority, majority, minority}, expected, 3),
            majority);
  EXPECT_EQ(QuorumNewer({minority, majority, minority, majority, expected}, expected, 3),
            std::nullopt);
  // A minority that is the only newer one: nothing.
  EXPECT_EQ(QuorumNewer({minority, expected, expected}, expected, 2), std::nullopt);
  // Quorum 1 (one replica): the single newer copy is enough.
  EXPECT_EQ(QuorumNewer({majority}, expected, 1), majority);
  // A quorum larger than the copies seen is never met.
  EXPECT_EQ(QuorumNewer({majority, majority}, expected, 3), std::nullopt);
}

TEST(BlockVersionTest, AppendRunMergesConsecutiveEqualVersions) {
  const BlockVersion a = V(1, 2, 3), b = V(1, 2, 4);
  std::vector<VersionRun> runs;
  AppendRun(runs, 0, a);
  AppendRun(runs, 1, a);
  AppendRun(runs, 2, a);
  EXPECT_EQ(runs, (std::vector<VersionRun>{{0, 3, a}}));
  AppendRun(runs, 3, b);  // next index, another version: a new run
  AppendRun(runs, 4, b);
  EXPECT_EQ(runs, (std::vector<VersionRun>{{0, 3, a}, {3, 2, b}}));
  AppendRun(runs, 6, b);  // a gap (a hole at 5): a new run, same version or not
  EXPECT_EQ(runs, (std::vector<VersionRun>{{0, 3, a}, {3, 2, b}, {6, 1, b}}));
  AppendRun(runs, 7, a);
  AppendRun(runs, 8, b);
  EXPECT_EQ(runs, (std::vector<VersionRun>{{0, 3, a}, {3, 2, b}, {6, 1, b}, {7, 1, a}, {8, 1, b}}));
  // Huge indices.
  std::vector<VersionRun> far;
  AppendRun(far, UINT64_MAX - 2, a);
  AppendRun(far, UINT64_MAX - 1, a);
  AppendRun(far, 1ull << 40, a);
  EXPECT_EQ(far, (std::vector<VersionRun>{{UINT64_MAX - 2, 2, a}, {1ull << 40, 1, a}}));
}

}  // namespace
}  // namespace ringfs::blockver
