// The metadata journal: an append-only log of the store's changes, the
// device that makes an acknowledgement durable (docs/ARCHITECTURE.md,
// "Metadata journal").
//
// A record is one committed write transaction's physical changes (its LMDB
// puts and deletes, encoded by lmdb::Txn), numbered by a sequence that grows
// by one per record and never repeats:
//
//   u32 magic "RJNL" | u32 payload length | u64 seq | u32 crc32c | u32 0 | payload
//
// The crc covers the length, the seq and the payload, so a torn or damaged
// record is recognised and everything from it on is dropped at recovery:
// what remains is exactly a prefix of what was written, in order. Records
// live in segment files DIR/<first seq, 16 hex digits>.jnl; a segment is
// synced before the next one is started, so only the newest one can have a
// torn tail.
//
// Append() writes the record into the page cache before it returns (it
// survives any process being killed). A flusher thread makes it reach the
// disk: it starts a flush at most flush_interval_ms / 2 after the first
// record not yet on disk, or at once when someone waits (WhenDurable, Sync,
// strict mode). Concurrent waiters share one flush. Segments whose records a
// checkpoint covers are removed by Release(). The same records, read in
// order, are what a standby service or a point-in-time restore would replay.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace ringfs::meta {

struct JournalOptions {
  std::string dir;                       // segment files live here (created if missing)
  int flush_interval_ms = 10;            // an ack reaches disk within about this long
  uint64_t segment_bytes = 64ull << 20;  // a new segment once one reaches this size
  bool strict = false;                   // a waiter is always present: flush at once
};

struct JournalStats {
  uint64_t written_seq = 0;  // the newest record in the page cache
  uint64_t durable_seq = 0;  // every record up to here is on disk
  uint64_t flushes = 0;
  uint64_t max_lag_us = 0;   // longest a record waited for the disk (since start)
  uint64_t segments = 0;
  uint64_t bytes = 0;        // in all segments
};

namespace journal {

constexpr uint32_t kMagic = 0x4C4E4A52;  // "RJNL" little-endian
constexpr size_t kHeaderBytes = 24;
constexpr uint32_t kMaxPayload = 256u << 20;

// One record, encoded (header + payload).
std::string Encode(uint64_t seq, std::string_view payload);
// Decodes the record at the front of `buf`. Returns its total size, or 0 if
// `buf` does not start with a whole, intact record.
size_t Decode(std::string_view buf, uint64_t* seq, std::string_view* payload);
// "DIR/0000000000000001.jnl" for first seq 1.
std::string SegmentName(uint64_t first_seq);

}  // namespace journal

class Journal {
 public:
  // Called for each intact record with seq > `after`, in order.
  using Apply = std::function<Status(uint64_t seq, std::string_view payload)>;

  // Opens the journal in opts.dir and replays it: every record after
  // `after` goes to `apply`. The first damaged record ends the journal: the
  // segment is cut there and later segments are removed (logged). Records
  // must continue `after` without a gap (EUCLEAN otherwise: changes are
  // missing, and serving on would hide it).
  static Result<std::unique_ptr<Journal>> Open(JournalOptions opts, uint64_t after, const Apply& apply);
  ~Journal();  // flushes what was written, stops the flusher

  // Appends one record; returns its seq once it is in the page cache. Not
  // concurrent with itself (the store's write lock orders records).
  Result<uint64_t> Append(std::string_view payload);

  uint64_t written_seq() const;
  uint64_t durable_seq() const;
  // Runs `done` (on the flusher thread, or here if already true) once every
  // record up to `seq` is on disk; asks for a flush now.
  void WhenDurable(uint64_t seq, std::function<void()> done);
  // Blocks until everything written before the call is on disk.
  Status Sync();
  // Removes the segments whose records are all at or below `seq` (a
  // checkpoint covers them); never the one being written.
  Status Release(uint64_t seq);
  JournalStats stats() const;
  bool strict() const { return opts_.strict; }

 private:
  struct Segment {
    uint64_t first = 0;
    std::string path;
  };
  struct File;  // an open segment, closed when the last user drops it

  explicit Journal(JournalOptions opts) : opts_(std::move(opts)) {}
  Status Recover(uint64_t after, const Apply& apply);
  Status StartSegment(uint64_t first);  // under mu_
  void FlushLoop();

  const JournalOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // the flusher waits here
  std::condition_variable done_cv_;  // Sync() waits here
  std::vector<Segment> segments_;    // oldest first; the last is being written
  std::shared_ptr<File> cur_;
  uint64_t cur_size_ = 0;
  uint64_t written_ = 0, durable_ = 0;
  uint64_t flushes_ = 0, max_lag_us_ = 0, bytes_ = 0;
  bool broken_ = false;  // a failed write could not be undone: refuse more
  bool urgent_ = false;  // someone waits: flush without the interval's delay
  bool stop_ = false;
  std::chrono::steady_clock::time_point first_unsynced_{};
  std::multimap<uint64_t, std::function<void()>> waiters_;
  std::thread flusher_;
};

}  // namespace ringfs::meta
