// Per-inode client state: what the kernel holds (lookup count), open files,
// buffered writes waiting to go out and what the caches are valid for.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"
#include "common/wire.h"

namespace ringfs::fuse {

// One block's buffered writes: ranges by offset, merged when they overlap
// or touch, so a random writer's many small writes go out as one message.
struct Extent {
  std::map<uint32_t, std::string> ranges;
  size_t bytes = 0;
  // Later bytes win where they overlap earlier ones.
  void Add(uint32_t off, const char* p, size_t n);
  // One range that reaches the end of the block: a streaming writer's.
  bool WholeTail() const {
    return ranges.size() == 1 && ranges.begin()->first + ranges.begin()->second.size() == wire::kBlockSize;
  }
};

// An extent frozen for upload: its ranges back to back in `data`.
struct Upload {
  std::vector<wire::WriteRange> ranges;
  std::shared_ptr<const std::string> data;
  bool replace = false;  // the data becomes the whole block (a punched hole: none)
};

// One open of a file (fuse_file_info::fh).
struct OpenFile {
  uint64_t seen_error = 0;  // Inode::error_seq already reported through it
  // Locks taken through this open (Inode::mu): fcntl lock owners, released
  // again at release for OFD locks (whose owner is the description, which
  // FUSE names at no flush), and whether it took a flock lock.
  std::set<uint64_t> lock_owners;
  bool flocked = false;
  // Opened O_DIRECT: the kernel's page cache is bypassed (FOPEN_DIRECT_IO),
  // a write is on the replicas when it returns, a read asks them.
  bool direct = false;
};

struct Inode {
  explicit Inode(uint64_t i) : ino(i) {}
  const uint64_t ino;

  uint64_t nlookup = 0;  // guarded by the inode table's lock

  std::mutex mu;
  std::condition_variable idle;  // signalled when a block's upload queue drains, or a truncation ends
  int open_count = 0;
  int dir_opens = 0;  // opendir without releasedir, through this mount
  bool reval_queued = false, reval_again = false;  // Filesystem::DropFresh
  // attr.xflags is current (no other mount's change heard since it was
  // learnt): the kernel's ACL lookups are answered from it.
  bool acl_known = false;
  // fcntl lock owners that took locks on this file through this mount: a
  // close (flush) by one of them drops its locks at the metadata service.
  std::set<uint64_t> lock_owners;
  bool orphan = false;  // nlink reached 0: reclaim when the kernel forgets it
  wire::Attr attr;
  bool have_attr = false;
  // Directories: `attr` came from the metadata service (a reply to this
  // client) and may be served without asking again until then, exactly as
  // long as the kernel itself would have cached it.
  std::chrono::steady_clock::time_point fresh_until{};
  // data_version that the kernel page cache and the block cache reflect.
  uint64_t cache_version = 0;
  bool cache_valid = false;

  std::map<uint64_t, Extent> dirty;                // block index -> buffered ranges
  size_t dirty_bytes = 0;                          // in `dirty`
  std::map<uint64_t, std::deque<Upload>> queued;   // block index -> uploads, in order
  std::set<uint64_t> uploading;                    // blocks with a drain task running
  uint64_t write_end = 0;  // end of the furthest byte written since the last commit
  bool wrote = false;      // written since the last commit
  // Another client changed it while open here: the next GETATTR asks the
  // service instead of answering from what open saw (the size stays this
  // open's, as its reads do: close-to-open).
  bool attr_stale = false;
  // Failed uploads, counted: each open file remembers the count it has
  // reported (OpenFile), so every flush and fsync that covers a failure
  // reports it, once per descriptor (as Linux's errseq does).
  uint64_t error_seq = 0;
  Status last_error;
  uint64_t next_read = 0;            // sequential-read detection
  // The kernel asks for security.capability before every write; remember a
  // "none" answer while the file is open instead of asking each time.
  bool no_caps = false;

  // Replica currency (docs/ARCHITECTURE.md): the version each block is
  // expected at: committed ones learnt at open, and this client's own
  // acknowledged writes. A block without an entry is a hole (absent at
  // block_epoch), up to `versions_end`; past it, ask the metadata service.
  uint64_t block_epoch = 0;
  std::map<uint64_t, wire::BlockVersion> versions;
  uint64_t versions_end = UINT64_MAX;
  // Blocks written since the last commit: the versions and holders the
  // commit records (it is what makes them the current ones).
  std::map<uint64_t, wire::BlockState> uncommitted;
  // fsync: blocks written since they were last made durable, with the
  // nodes that hold them and the write's sequence number.
  struct Unsynced {
    std::vector<uint32_t> holders;
    uint64_t seq = 0;
  };
  std::map<uint64_t, Unsynced> unsynced;
  uint64_t write_seq = 0;
  bool truncating = false;  // uploads wait while a truncation cuts the blocks
  int sending = 0;          // uploads on their way to the replicas
  std::mutex commit_mu;     // one commit at a time, so each sees the previous one's result

  wire::BlockVersion ExpectedLocked(uint64_t index) const {
    auto it = versions.find(index);
    if (it != versions.end()) return it->second;
    return wire::BlockVersion{block_epoch, 0, 0};  // a hole
  }
  void SetVersionLocked(uint64_t index, const wire::BlockVersion& v) {
    if (v.absent()) {
      versions.erase(index);
      block_epoch = std::max(block_epoch, v.epoch);
    } else {
      versions[index] = v;
    }
  }
  // Takes the committed versions an open (or kGetBlocks) returned, keeping
  // this client's own writes not yet committed.
  void LearnVersionsLocked(const std::vector<wire::VersionRun>& runs, uint64_t from, uint64_t end,
                           uint64_t epoch) {
    block_epoch = std::max(block_epoch, epoch);
    auto first = versions.lower_bound(from);
    auto last = end == UINT64_MAX ? versions.end() : versions.lower_bound(end);
    for (auto it = first; it != last;) it = uncommitted.count(it->first) ? std::next(it) : versions.erase(it);
    for (const auto& r : runs)
      for (uint64_t i = 0; i < r.count; i++)
        if (!uncommitted.count(r.first + i)) versions[r.first + i] = r.version;
    versions_end = end;
  }
  bool HasPendingWrites() const { return !dirty.empty() || !uploading.empty(); }
  // After a size of `size` was committed: forget the writes it covers.
  void MarkCommitted(uint64_t size) {
    if (!HasPendingWrites() && write_end <= size) {
      wrote = false;
      write_end = 0;
    }
  }
  // Size as this client sees it: the committed size or what it has written.
  uint64_t Size() const { return wrote ? std::max(attr.size, write_end) : attr.size; }
};

}  // namespace ringfs::fuse
