// What this mount knows of whole directories: for a directory it created,
// or listed from start to end, the set of names in it, kept up to date by
// its own changes. A lookup of a name not in the set is answered ENOENT
// without asking the metadata service (a create's negative lookup, tar's
// and cp's probes).
//
// The knowledge lasts only while it can be trusted: another client's change
// to the directory arrives as a namespace event (meta/events.h) and drops
// it; a gap in the event sequence, a restarted service, or a stream silent
// for kSilenceMs drops everything. A lost event therefore costs a round
// trip, never a wrong answer beyond the entry-cache time the kernel is
// allowed anyway.
//
// The same stream lets the kernel keep entries and attributes for long
// (Trust): an answer read at event seq S is current for as long as no other
// client's event about it follows S. Each such grant is recorded; another
// client's change invalidates the kernel's entry or attributes at once, and a
// lost stream invalidates every grant, within kSilenceMs plus a poll.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/wire.h"

namespace ringfs::fuse {

class DirCache {
 public:
  static constexpr int kSilenceMs = 700;  // > 3 ticks of the publisher
  struct Options {
    bool enabled = true;
    size_t max_names = 100000;  // per directory; larger ones are never complete
    size_t max_dirs = 4096;     // directories tracked at once
  };
  // The event stream position before a request; Listed/Created compare it
  // with what arrived meanwhile.
  struct Mark {
    uint64_t incarnation = 0, seq = 0, gen = 0, local = 0;
  };
  static constexpr int kCatchUpMs = 2;    // Trust waits this long for the stream to reach a reply
  static constexpr int kRedoMs = 20;      // invalidations are sent again after this (see Loop)
  // (dir, name) changed by another client: the kernel's entry must go.
  using Invalidate = std::function<void(uint64_t dir, const std::string& name)>;
  // The attributes of `ino` changed elsewhere: the kernel's copy must go.
  using InvalidateInode = std::function<void(uint64_t ino)>;

  explicit DirCache(Options opts) : opts_(opts) {}
  ~DirCache();
  // Subscribes to `events_addr`; events from `session` (this mount) are ours.
  void Start(const std::string& events_addr, uint64_t session, Invalidate inval,
             InvalidateInode inval_inode = nullptr);
  // The publisher moved (a restarted service): subscribe there instead.
  void SetAddress(const std::string& events_addr);
  void Stop();

  Mark Begin(uint64_t dir);
  // A directory this mount just made: complete and empty.
  void Created(uint64_t dir, const Mark& m);
  // A listing read from the start to the end, whose first part was read at
  // event `seq` of `incarnation`.
  void Listed(uint64_t dir, const std::vector<std::string>& names, uint64_t incarnation, uint64_t seq,
              const Mark& m);
  void Added(uint64_t dir, const std::string& name);
  void Removed(uint64_t dir, const std::string& name);
  void Forget(uint64_t dir);
  // ENOENT can be answered for (dir, name) without asking.
  bool KnownAbsent(uint64_t dir, const std::string& name);

  // An answer about `ino` (and its name `name` in `dir`, when dir != 0),
  // read at event `seq` of `incarnation`: true if it is still current (the
  // stream is live and heard up to `seq`, waiting up to kCatchUpMs for it,
  // and no other client's event since names them), so the kernel may keep
  // it for long. The grant is recorded for invalidation on a lost stream.
  bool Trust(uint64_t ino, uint64_t dir, const std::string& name, uint64_t incarnation, uint64_t seq);
  // The kernel forgot `ino`: nothing of it to invalidate any more.
  void Untrack(uint64_t ino);
  // This mount removed or moved a name (the kernel moved its entry along).
  void Unnamed(uint64_t dir, const std::string& name);
  void Renamed(uint64_t dir, const std::string& name, uint64_t newdir, const std::string& newname,
               bool exchange = false);
  uint64_t granted() const { return granted_.load(); }

  // Counters, for tests and benchmarks.
  uint64_t answered() const { return answered_.load(); }
  uint64_t drops() const { return drops_.load(); }

 private:
  struct Dir {
    bool complete = false;
    uint64_t gen = 0;    // the stream generation it was completed in
    uint64_t local = 0;  // this mount's last change to it (local_ counter)
    std::unordered_set<std::string> names;
  };
  struct Invals {
    std::vector<wire::DirChange> names;
    std::vector<uint64_t> inodes;
    bool empty() const { return names.empty() && inodes.empty(); }
  };
  void Loop();
  void DropAllLocked();  // also moves every grant into lost_
  void Run(const Invals& v);
  // Drops the grant of (dir, name); returns the inode it led to (0: none).
  uint64_t TakeNameLocked(const std::pair<uint64_t, std::string>& key);
  bool LiveLocked(std::chrono::steady_clock::time_point now) const;
  void Complete(uint64_t dir, std::unordered_set<std::string> names, uint64_t incarnation, uint64_t seq,
                const Mark& m);

  const Options opts_;
  uint64_t session_ = 0;
  std::string addr_;  // under mu_
  Invalidate inval_;
  std::mutex mu_;
  std::unordered_map<uint64_t, Dir> dirs_;
  uint64_t incarnation_ = 0, seq_ = 0;
  uint64_t gen_ = 1;    // bumped when everything is dropped
  uint64_t local_ = 0;  // counts this mount's changes
  std::chrono::steady_clock::time_point heard_{};
  // Recent events of other clients: (seq, dir), for listings in flight.
  std::deque<std::pair<uint64_t, uint64_t>> recent_;
  static constexpr size_t kRecent = 8192;
  uint64_t forgotten_ = 0;  // the newest seq pushed out of recent_
  std::condition_variable heard_cv_;  // seq_ moved
  // Grants (Trust): names handed to the kernel for long, by (dir, name), and
  // each inode's names; inodes whose attributes were.
  std::map<std::pair<uint64_t, std::string>, uint64_t> named_;
  std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, std::string>>> names_of_;
  std::unordered_set<uint64_t> attrs_;
  Invals lost_;  // grants of a stream just lost, to invalidate (by Loop, unlocked)
  InvalidateInode inval_inode_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<uint64_t> answered_{0}, drops_{0}, granted_{0};
};

}  // namespace ringfs::fuse
