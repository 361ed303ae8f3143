#include "common/lock_table.h"

#include <algorithm>
#include <set>

namespace ringfs {

using wire::LockKind;
using wire::LockSpec;
using wire::LockType;

namespace {

// flock and truncation locks cover the whole file whatever was asked.
LockSpec Normalized(const LockSpec& in) {
  LockSpec lk = in;
  if (lk.kind != LockKind::kPosix) {
    lk.start = 0;
    lk.end = wire::kLockToEnd;
  }
  return lk;
}

bool Overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) { return a0 <= b1 && b0 <= a1; }
// [a0, a1] ends right before [b0, b1] starts, or the other way round.
bool Adjacent(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
  return (a1 != UINT64_MAX && a1 + 1 == b0) || (b1 != UINT64_MAX && b1 + 1 == a0);
}

}  // namespace

wire::LockSpec LockTable::Held::Spec() const {
  wire::LockSpec lk;
  lk.kind = kind;
  lk.type = type;
  lk.owner = owner;
  lk.start = start;
  lk.end = end;
  lk.pid = pid;
  return lk;
}

LockTable::LockTable(std::chrono::milliseconds max_wait) : max_wait_(max_wait) {}

LockTable::~LockTable() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

bool LockTable::Conflicts(const Held& h, uint64_t session, const LockSpec& lk) {
  if (h.kind != lk.kind || lk.type == LockType::kUnlock) return false;
  if (h.session == session && h.owner == lk.owner) return false;
  if (h.type != LockType::kWrite && lk.type != LockType::kWrite) return false;
  return Overlap(h.start, h.end, lk.start, lk.end);
}

const LockTable::Held* LockTable::FirstConflictLocked(const Inode& in, uint64_t session,
                                                      const LockSpec& lk) const {
  for (const Held& h : in.held)
    if (Conflicts(h, session, lk)) return &h;
  return nullptr;
}

void LockTable::ApplyLocked(Inode& in, uint64_t session, const LockSpec& lk) {
  uint64_t start = lk.start, end = lk.end;
  std::vector<Held> keep;
  keep.reserve(in.held.size() + 2);
  for (const Held& h : in.held) {
    const bool mine = h.session == session && h.owner == lk.owner && h.kind == lk.kind;
    if (!mine) {
      keep.push_back(h);
      continue;
    }
    const bool same = lk.type != LockType::kUnlock && h.type == lk.type;
    if (same && (Overlap(h.start, h.end, start, end) || Adjacent(h.start, h.end, start, end))) {
      // Merged into the new lock.
      start = std::min(start, h.start);
      end = std::max(end, h.end);
      continue;
    }
    if (!Overlap(h.start, h.end, lk.start, lk.end)) {
      keep.push_back(h);
      continue;
    }
    // Replaced or unlocked where they overlap: the parts outside stay.
    if (h.start < lk.start) {
      Held left = h;
      left.end = lk.start - 1;
      keep.push_back(left);
    }
    if (h.end > lk.end) {
      Held right = h;
      right.start = lk.end + 1;
      keep.push_back(right);
    }
  }
  if (lk.type != LockType::kUnlock)
    keep.push_back(Held{session, lk.owner, lk.kind, lk.type, start, end, lk.pid});
  in.held = std::move(keep);
}

bool LockTable::WouldDeadlockLocked(uint64_t ino, uint64_t session, const LockSpec& lk) const {
  if (lk.kind != LockKind::kPosix) return false;
  using Owner = std::pair<uint64_t, uint64_t>;
  const Owner me{session, lk.owner};
  // Owners `lk` would wait for, then the owners those wait for, and so on.
  std::vector<Owner> todo;
  std::set<Owner> seen;
  auto blockers = [&](const Inode& in, uint64_t s, const LockSpec& want) {
    for (const Held& h : in.held)
      if (Conflicts(h, s, want)) {
        Owner o{h.session, h.owner};
        if (seen.insert(o).second) todo.push_back(o);
      }
  };
  blockers(inodes_.at(ino), session, lk);
  while (!todo.empty()) {
    const Owner o = todo.back();
    todo.pop_back();
    if (o == me) return true;
    for (const auto& [other_ino, in] : inodes_)
      for (const Waiter& w : in.waiters)
        if (w.session == o.first && w.lk.owner == o.second && w.lk.kind == LockKind::kPosix)
          blockers(in, w.session, w.lk);
  }
  return false;
}

Status LockTable::Acquire(uint64_t session, uint64_t ino, const LockSpec& request, Done done) {
  const LockSpec lk = Normalized(request);
  if (lk.start > lk.end) return Status::Error(EINVAL, "lock range ends before it starts");
  std::vector<Answer> answers;
  Status st = Status::OK();
  {
    std::lock_guard<std::mutex> lock(mu_);
    Inode& in = inodes_[ino];
    if (lk.cancel) {
      for (auto it = in.waiters.begin(); it != in.waiters.end();) {
        if (it->session == session && it->lk.owner == lk.owner && it->lk.kind == lk.kind) {
          answers.emplace_back(std::move(it->done), Status::Error(EINTR, "lock wait interrupted"));
          it = in.waiters.erase(it);
        } else {
          ++it;
        }
      }
    } else if (const Held* h = FirstConflictLocked(in, session, lk)) {
      (void)h;
      if (!lk.wait) {
        st = Status::Error(EAGAIN, "locked by another owner");
      } else if (WouldDeadlockLocked(ino, session, lk)) {
        st = Status::Error(EDEADLK, "waiting would deadlock");
      } else {
        in.waiters.push_back(Waiter{session, lk, std::move(done), Clock::now() + max_wait_});
        st = Status::Error(EINPROGRESS, "waiting");
        if (!timer_.joinable()) timer_ = std::thread([this] { TimerLoop(); });
        timer_cv_.notify_all();
      }
    } else {
      ApplyLocked(in, session, lk);
      // Less held (an unlock, a downgrade): waiters may go now.
      GrantLocked(ino, &answers);
    }
    EraseIfEmptyLocked(ino);
  }
  for (auto& [fn, s] : answers) fn(s);
  return st;
}

LockSpec LockTable::Test(uint64_t session, uint64_t ino, const LockSpec& request) const {
  const LockSpec lk = Normalized(request);
  LockSpec out;
  out.kind = lk.kind;
  out.type = LockType::kUnlock;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return out;
  if (const Held* h = FirstConflictLocked(it->second, session, lk)) out = h->Spec();
  return out;
}

void LockTable::GrantLocked(uint64_t ino, std::vector<Answer>* out) {
  Inode& in = inodes_[ino];
  for (auto it = in.waiters.begin(); it != in.waiters.end();) {
    if (FirstConflictLocked(in, it->session, it->lk)) {
      ++it;
      continue;
    }
    ApplyLocked(in, it->session, it->lk);
    out->emplace_back(std::move(it->done), Status::OK());
    it = in.waiters.erase(it);
  }
}

void LockTable::EraseIfEmptyLocked(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second.held.empty() && it->second.waiters.empty()) inodes_.erase(it);
}

void LockTable::DropSession(uint64_t session) {
  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> touched;
    for (auto& [ino, in] : inodes_) {
      const size_t before = in.held.size() + in.waiters.size();
      std::erase_if(in.held, [&](const Held& h) { return h.session == session; });
      for (auto it = in.waiters.begin(); it != in.waiters.end();) {
        if (it->session == session) {
          answers.emplace_back(std::move(it->done), Status::Error(ENOLCK, "session expired"));
          it = in.waiters.erase(it);
        } else {
          ++it;
        }
      }
      if (in.held.size() + in.waiters.size() != before) touched.push_back(ino);
    }
    for (uint64_t ino : touched) {
      GrantLocked(ino, &answers);
      EraseIfEmptyLocked(ino);
    }
  }
  for (auto& [fn, s] : answers) fn(s);
}

std::vector<wire::InodeLock> LockTable::HeldBy(uint64_t session) const {
  std::vector<wire::InodeLock> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [ino, in] : inodes_)
    for (const Held& h : in.held)
      if (h.session == session) out.push_back(wire::InodeLock{ino, h.Spec()});
  return out;
}

size_t LockTable::HeldCount(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? 0 : it->second.held.size();
}

void LockTable::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    Clock::time_point next = Clock::time_point::max();
    std::vector<Answer> answers;
    const auto now = Clock::now();
    std::vector<uint64_t> emptied;
    for (auto& [ino, in] : inodes_) {
      for (auto it = in.waiters.begin(); it != in.waiters.end();) {
        if (it->deadline <= now) {
          answers.emplace_back(std::move(it->done), Status::Error(ETIMEDOUT, "still locked: ask again"));
          it = in.waiters.erase(it);
        } else {
          next = std::min(next, it->deadline);
          ++it;
        }
      }
      if (in.held.empty() && in.waiters.empty()) emptied.push_back(ino);
    }
    for (uint64_t ino : emptied) inodes_.erase(ino);
    if (!answers.empty()) {
      lock.unlock();
      for (auto& [fn, s] : answers) fn(s);
      lock.lock();
      continue;
    }
    if (next == Clock::time_point::max())
      timer_cv_.wait(lock);
    else
      timer_cv_.wait_until(lock, next);
  }
}

}  // namespace ringfs
