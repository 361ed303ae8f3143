#include "common/lock_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace ringfs {
namespace {

using wire::LockKind;
using wire::LockSpec;
using wire::LockType;
constexpr uint64_t kEnd = wire::kLockToEnd;

LockSpec Posix(LockType t, uint64_t owner, uint64_t start, uint64_t end, bool wait = false) {
  LockSpec lk;
  lk.kind = LockKind::kPosix;
  lk.type = t;
  lk.owner = owner;
  lk.start = start;
  lk.end = end;
  lk.wait = wait;
  lk.pid = static_cast<uint32_t>(owner);
  return lk;
}
LockSpec Flock(LockType t, uint64_t owner, bool wait = false) {
  LockSpec lk = Posix(t, owner, 0, 0, wait);
  lk.kind = LockKind::kFlock;
  return lk;
}
const LockTable::Done kNoWait = [](const Status&) { FAIL() << "answered a request that did not wait"; };

// A waiting request's answer, once it comes.
struct Pending {
  std::promise<Status> p;
  std::future<Status> f = p.get_future();
  LockTable::Done Done() {
    return [this](const Status& st) { p.set_value(st); };
  }
  bool Ready() { return f.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready; }
  Status Get() { return f.get(); }
};

TEST(LockTableTest, ReadersShareWritersExclude) {
  LockTable t;
  EXPECT_TRUE(t.Acquire(1, 10, Posix(LockType::kRead, 7, 0, 99), kNoWait).ok());
  EXPECT_TRUE(t.Acquire(2, 10, Posix(LockType::kRead, 7, 50, 150), kNoWait).ok());
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 8, 90, 90), kNoWait).code(), EAGAIN);
  // Past both read locks, and on another inode: free.
  EXPECT_TRUE(t.Acquire(2, 10, Posix(LockType::kWrite, 8, 151, kEnd), kNoWait).ok());
  EXPECT_TRUE(t.Acquire(2, 11, Posix(LockType::kWrite, 8, 0, kEnd), kNoWait).ok());
  // The same owner number in another session is another owner.
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 7, 0, 0), kNoWait).code(), EAGAIN);
  wire::LockSpec c = t.Test(3, 10, Posix(LockType::kWrite, 1, 120, 130));
  EXPECT_EQ(c.type, LockType::kRead);
  EXPECT_EQ(c.start, 50u);
  EXPECT_EQ(c.end, 150u);
  EXPECT_EQ(t.Test(3, 10, Posix(LockType::kRead, 1, 0, 150)).type, LockType::kUnlock);
}

TEST(LockTableTest, UnlockSplitsAndSameTypeMerges) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, 99), kNoWait).ok());
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kUnlock, 7, 40, 59), kNoWait).ok());
  EXPECT_EQ(t.HeldCount(10), 2u);
  EXPECT_TRUE(t.Acquire(2, 10, Posix(LockType::kWrite, 1, 40, 59), kNoWait).ok());
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 1, 39, 39), kNoWait).code(), EAGAIN);
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 1, 60, 60), kNoWait).code(), EAGAIN);
  ASSERT_TRUE(t.Acquire(2, 10, Posix(LockType::kUnlock, 1, 0, kEnd), kNoWait).ok());
  // Adjacent ranges of one type become one lock; a middle of another type splits it.
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 40, 59), kNoWait).ok());
  EXPECT_EQ(t.HeldCount(10), 1u);
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kRead, 7, 10, 19), kNoWait).ok());
  EXPECT_EQ(t.HeldCount(10), 3u);
  EXPECT_TRUE(t.Acquire(2, 10, Posix(LockType::kRead, 1, 10, 19), kNoWait).ok());
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kRead, 1, 20, 20), kNoWait).code(), EAGAIN);
  // Unlocking everything of the owner leaves only the other session's.
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kUnlock, 7, 0, kEnd), kNoWait).ok());
  EXPECT_EQ(t.HeldCount(10), 1u);
  EXPECT_EQ(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, 10), kNoWait).code(), EAGAIN);
  EXPECT_EQ(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 5, 4), kNoWait).code(), EINVAL);
}

TEST(LockTableTest, WaiterIsGrantedWhenTheHolderUnlocks) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, kEnd), kNoWait).ok());
  Pending a, b;
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 1, 0, 9, true), a.Done()).code(), EINPROGRESS);
  EXPECT_EQ(t.Acquire(3, 10, Posix(LockType::kWrite, 1, 5, 20, true), b.Done()).code(), EINPROGRESS);
  EXPECT_FALSE(a.Ready());
  // A partial unlock that frees only a's range grants a alone.
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kUnlock, 7, 0, 9), kNoWait).ok());
  ASSERT_TRUE(a.Ready());
  EXPECT_TRUE(a.Get().ok());
  EXPECT_FALSE(b.Ready());
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kUnlock, 7, 0, kEnd), kNoWait).ok());
  EXPECT_FALSE(b.Ready());  // a still holds 5..9
  ASSERT_TRUE(t.Acquire(2, 10, Posix(LockType::kUnlock, 1, 0, kEnd), kNoWait).ok());
  ASSERT_TRUE(b.Ready());
  EXPECT_TRUE(b.Get().ok());
  EXPECT_EQ(t.Test(1, 10, Posix(LockType::kRead, 7, 20, 20)).type, LockType::kWrite);
}

TEST(LockTableTest, ConversionWaitsAndKeepsWhatItHeld) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kRead, 7, 0, kEnd), kNoWait).ok());
  ASSERT_TRUE(t.Acquire(2, 10, Posix(LockType::kRead, 8, 0, kEnd), kNoWait).ok());
  Pending up;
  EXPECT_EQ(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, kEnd, true), up.Done()).code(), EINPROGRESS);
  // Still a reader meanwhile: a third writer is refused.
  EXPECT_EQ(t.Acquire(3, 10, Posix(LockType::kWrite, 9, 0, 0), kNoWait).code(), EAGAIN);
  ASSERT_TRUE(t.Acquire(2, 10, Posix(LockType::kUnlock, 8, 0, kEnd), kNoWait).ok());
  ASSERT_TRUE(up.Ready());
  EXPECT_TRUE(up.Get().ok());
  EXPECT_EQ(t.HeldCount(10), 1u);
  EXPECT_EQ(t.Test(2, 10, Posix(LockType::kRead, 8, 0, 0)).type, LockType::kWrite);
}

TEST(LockTableTest, FlockIsPerOwnerAndIndependentOfPosix) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Flock(LockType::kWrite, 7), kNoWait).ok());
  EXPECT_TRUE(t.Acquire(2, 10, Posix(LockType::kWrite, 7, 0, kEnd), kNoWait).ok());
  EXPECT_EQ(t.Acquire(2, 10, Flock(LockType::kRead, 9), kNoWait).code(), EAGAIN);
  // Another description of the same session is another owner too.
  EXPECT_EQ(t.Acquire(1, 10, Flock(LockType::kRead, 8), kNoWait).code(), EAGAIN);
  // Downgrading lets readers in, and does not pile up a second lock.
  ASSERT_TRUE(t.Acquire(1, 10, Flock(LockType::kRead, 7), kNoWait).ok());
  EXPECT_TRUE(t.Acquire(2, 10, Flock(LockType::kRead, 9), kNoWait).ok());
  EXPECT_EQ(t.HeldCount(10), 3u);
}

TEST(LockTableTest, SessionExpiryReleasesAndEndsWaits) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Flock(LockType::kWrite, 7), kNoWait).ok());
  ASSERT_TRUE(t.Acquire(1, 11, Posix(LockType::kWrite, 7, 0, kEnd), kNoWait).ok());
  Pending waiter, mine;
  EXPECT_EQ(t.Acquire(2, 10, Flock(LockType::kWrite, 8, true), waiter.Done()).code(), EINPROGRESS);
  EXPECT_EQ(t.Acquire(1, 12, Posix(LockType::kWrite, 1, 0, 0), kNoWait).code(), 0);
  EXPECT_EQ(t.Acquire(3, 12, Posix(LockType::kWrite, 1, 0, 0, true), mine.Done()).code(), EINPROGRESS);
  t.DropSession(1);
  ASSERT_TRUE(waiter.Ready());
  EXPECT_TRUE(waiter.Get().ok());
  ASSERT_TRUE(mine.Ready());
  EXPECT_TRUE(mine.Get().ok());
  EXPECT_EQ(t.HeldCount(11), 0u);
  t.DropSession(3);
  Pending gone;
  EXPECT_EQ(t.Acquire(4, 10, Flock(LockType::kRead, 1, true), gone.Done()).code(), EINPROGRESS);
  t.DropSession(4);
  ASSERT_TRUE(gone.Ready());
  EXPECT_EQ(gone.Get().code(), ENOLCK);
}

TEST(LockTableTest, CancelEndsOnlyThatOwnersWait) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, kEnd), kNoWait).ok());
  Pending a, b;
  ASSERT_EQ(t.Acquire(2, 10, Posix(LockType::kRead, 1, 0, 0, true), a.Done()).code(), EINPROGRESS);
  ASSERT_EQ(t.Acquire(2, 10, Posix(LockType::kRead, 2, 0, 0, true), b.Done()).code(), EINPROGRESS);
  LockSpec cancel = Posix(LockType::kUnlock, 1, 0, 0);
  cancel.cancel = true;
  EXPECT_TRUE(t.Acquire(2, 10, cancel, kNoWait).ok());
  ASSERT_TRUE(a.Ready());
  EXPECT_EQ(a.Get().code(), EINTR);
  EXPECT_FALSE(b.Ready());
  t.DropSession(1);
  ASSERT_TRUE(b.Ready());
  EXPECT_TRUE(b.Get().ok());
}

TEST(LockTableTest, AWaitIsAnsweredAfterMaxWait) {
  LockTable t(std::chrono::milliseconds(50));
  ASSERT_TRUE(t.Acquire(1, 10, Flock(LockType::kWrite, 7), kNoWait).ok());
  Pending a;
  const auto start = LockTable::Clock::now();
  ASSERT_EQ(t.Acquire(2, 10, Flock(LockType::kWrite, 8, true), a.Done()).code(), EINPROGRESS);
  ASSERT_EQ(a.f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(a.Get().code(), ETIMEDOUT);
  EXPECT_GE(LockTable::Clock::now() - start, std::chrono::milliseconds(50));
  EXPECT_EQ(t.HeldCount(10), 1u);  // the holder is untouched
}

TEST(LockTableTest, DeadlockIsRefused) {
  LockTable t;
  ASSERT_TRUE(t.Acquire(1, 10, Posix(LockType::kWrite, 7, 0, 0), kNoWait).ok());
  ASSERT_TRUE(t.Acquire(2, 11, Posix(LockType::kWrite, 8, 0, 0), kNoWait).ok());
  Pending a;
  ASSERT_EQ(t.Acquire(1, 11, Posix(LockType::kWrite, 7, 0, 0, true), a.Done()).code(), EINPROGRESS);
  EXPECT_EQ(t.Acquire(2, 10, Posix(LockType::kWrite, 8, 0, 0, true), kNoWait).code(), EDEADLK);
  // flock waits are not checked (Linux does not either).
  ASSERT_TRUE(t.Acquire(2, 11, Posix(LockType::kUnlock, 8, 0, kEnd), kNoWait).ok());
  ASSERT_TRUE(a.Ready());
  EXPECT_TRUE(a.Get().ok());
}

}  // namespace
}  // namespace ringfs
