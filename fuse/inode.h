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

// A run of bytes to write into one block, starting at `start`.
struct Extent {
  uint32_t start = 0;
  std::string data;
};

// An extent frozen for upload.
struct Upload {
  uint32_t start = 0;
  std::shared_ptr<const std::string> data;
};

struct Inode {
  explicit Inode(uint64_t i) : ino(i) {}
  const uint64_t ino;

  uint64_t nlookup = 0;  // guarded by the inode table's lock

  std::mutex mu;
  std::condition_variable idle;  // signalled when a block's upload queue drains
  int open_count = 0;
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

  std::map<uint64_t, Extent> dirty;                // block index -> open extent
  std::map<uint64_t, std::deque<Upload>> queued;   // block index -> uploads, in order
  std::set<uint64_t> uploading;                    // blocks with a drain task running
  uint64_t write_end = 0;  // end of the furthest byte written since the last commit
  bool wrote = false;      // written since the last commit
  Status write_error;      // first failed upload since the last flush
  std::set<uint32_t> written_nodes;  // nodes to sync at fsync
  uint64_t next_read = 0;            // sequential-read detection
  // Replicas known to hold old bytes of a block, never read from: the
  // metadata service's list at open plus this client's own missed writes.
  std::set<wire::StaleReplica> stale;
  // This client's misses not yet recorded by the metadata service; they go
  // with the next commit (or truncation).
  std::vector<wire::StaleReplica> stale_unreported;
  // The kernel asks for security.capability before every write; remember a
  // "none" answer while the file is open instead of asking each time.
  bool no_caps = false;

  // Notes that `nodes` missed a write to block `index`; returns the marks
  // that are new (now also in stale_unreported).
  std::vector<wire::StaleReplica> NoteMissed(uint64_t index, const std::vector<uint32_t>& nodes) {
    std::vector<wire::StaleReplica> fresh;
    for (uint32_t id : nodes) {
      wire::StaleReplica r{index, id};
      if (stale.insert(r).second) fresh.push_back(r);
    }
    stale_unreported.insert(stale_unreported.end(), fresh.begin(), fresh.end());
    return fresh;
  }
  void MarkReported(const std::vector<wire::StaleReplica>& done) {
    std::erase_if(stale_unreported, [&](const wire::StaleReplica& r) {
      return std::find(done.begin(), done.end(), r) != done.end();
    });
  }
  std::vector<uint32_t> StaleNodes(uint64_t index) const {
    std::vector<uint32_t> out;
    for (auto it = stale.lower_bound({index, 0}); it != stale.end() && it->index == index; ++it)
      out.push_back(it->node);
    return out;
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
