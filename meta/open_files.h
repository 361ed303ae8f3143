// Files open on clients, per client session. An open is counted by
// kGetAttr/kMknod with `opens`, ended by kClose; each client also beats every
// few seconds with the full list of what it has open, which replaces its
// entry (so a restarted service relearns it) and keeps the session alive.
// A session silent for the timeout is dropped with its opens (a crashed
// client). An unlinked file is reclaimed only when no session has it open:
// POSIX lets an open descriptor keep reading a file another mount removed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ringfs::meta {

class OpenFiles {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts an open; false (nothing counted) while `ino` is being reclaimed.
  bool Open(uint64_t session, uint64_t ino, Clock::time_point now);
  // Returns the opens of `ino` that remain across all sessions.
  uint64_t Close(uint64_t session, uint64_t ino, Clock::time_point now);
  // Replaces the session's opens with `inos` (an ino once per open). Returns
  // the inos no session has open any more.
  std::vector<uint64_t> Beat(uint64_t session, const std::vector<uint64_t>& inos,
                             Clock::time_point now);
  // Drops sessions silent since before `deadline`; returns the inos no
  // session has open any more.
  std::vector<uint64_t> Expire(Clock::time_point deadline, std::vector<uint64_t>* expired = nullptr);
  bool IsOpen(uint64_t ino) const;
  // Starts reclaiming `ino` unless some session has it open; until
  // EndReclaim, opens of it are refused, so none can slip in between the
  // check and the commit that deletes it.
  bool BeginReclaim(uint64_t ino);
  void EndReclaim(uint64_t ino);
  size_t Sessions() const;

 private:
  struct Session {
    Clock::time_point seen;
    std::map<uint64_t, uint64_t> open;  // ino → opens
  };
  // Takes `n` opens of `ino` off the total; appends it to `freed` at zero.
  void DropLocked(uint64_t ino, uint64_t n, std::vector<uint64_t>* freed);

  mutable std::mutex mu_;
  std::map<uint64_t, Session> sessions_;
  std::unordered_map<uint64_t, uint64_t> total_;  // ino → opens in all sessions
  std::unordered_map<uint64_t, int> reclaiming_;  // ino → reclaims in flight
};

}  // namespace ringfs::meta
