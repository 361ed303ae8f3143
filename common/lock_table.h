// Advisory locks across mounts: fcntl record locks (and OFD locks), flock
// locks, and the truncation lock that serializes cutting a file's blocks.
// Held in memory by the metadata service for (session, owner) pairs; a
// request that conflicts either fails (EAGAIN) or waits in a queue per
// inode, answered when the lock is granted, when its wait is cancelled
// (the caller was interrupted: EINTR), or when it has waited `max_wait`
// (ETIMEDOUT: the caller asks again, so a dead caller's wait never lingers).
// A session that expires loses its locks and waits.
//
// Semantics follow Linux: kinds never conflict with each other; two locks
// of one owner never conflict; fcntl locks split and merge by byte range
// and are converted in place (a waiting conversion keeps what it held);
// a flock lock is one per owner per file. A wait that would close a cycle
// of fcntl waiters fails with EDEADLK.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/wire.h"

namespace ringfs {

class LockTable {
 public:
  using Clock = std::chrono::steady_clock;
  // Answers a request that waited: OK (granted), EINTR, ETIMEDOUT, or the
  // session's expiry (ENOLCK). Called without the table's mutex held.
  using Done = std::function<void(const Status&)>;

  explicit LockTable(std::chrono::milliseconds max_wait = std::chrono::seconds(5));
  ~LockTable();
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  // Takes, converts or drops (type kUnlock) `lk` for `session`. Returns OK
  // when done at once, EAGAIN on a conflict without `lk.wait`, EDEADLK, or
  // EINPROGRESS when queued: then `done` answers it later (never before
  // Acquire returns). A cancel (`lk.cancel`) ends the owner's waits on
  // `ino` with EINTR and returns OK.
  Status Acquire(uint64_t session, uint64_t ino, const wire::LockSpec& lk, Done done);
  // The first held lock that conflicts with `lk` (type kUnlock if none).
  wire::LockSpec Test(uint64_t session, uint64_t ino, const wire::LockSpec& lk) const;
  // Drops every lock and wait of a session (it expired or said goodbye).
  void DropSession(uint64_t session);
  // Every lock a session holds, one per range (what it re-asserts after
  // the service restarted, from its own copy of the table).
  std::vector<wire::InodeLock> HeldBy(uint64_t session) const;
  // Held locks (tests and status).
  size_t HeldCount(uint64_t ino) const;

 private:
  struct Held {
    uint64_t session, owner;
    wire::LockKind kind;
    wire::LockType type;
    uint64_t start, end;
    uint32_t pid;
    wire::LockSpec Spec() const;  // as the wire describes it
  };
  struct Waiter {
    uint64_t session;
    wire::LockSpec lk;
    Done done;
    Clock::time_point deadline;
  };
  struct Inode {
    std::vector<Held> held;
    std::list<Waiter> waiters;  // in arrival order
  };
  using Answer = std::pair<Done, Status>;

  static bool Conflicts(const Held& h, uint64_t session, const wire::LockSpec& lk);
  const Held* FirstConflictLocked(const Inode& in, uint64_t session, const wire::LockSpec& lk) const;
  // Applies a grantable `lk` to the owner's locks (set, convert or drop).
  static void ApplyLocked(Inode& in, uint64_t session, const wire::LockSpec& lk);
  // Whether `session/lk` waiting would complete a cycle of waiters.
  bool WouldDeadlockLocked(uint64_t ino, uint64_t session, const wire::LockSpec& lk) const;
  // Grants what waiters can now have; appends their answers.
  void GrantLocked(uint64_t ino, std::vector<Answer>* out);
  void EraseIfEmptyLocked(uint64_t ino);
  void TimerLoop();

  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::map<uint64_t, Inode> inodes_;
  std::condition_variable timer_cv_;
  bool stop_ = false;
  std::thread timer_;  // started by the first wait
};

}  // namespace ringfs
