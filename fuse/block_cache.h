// Clean block cache: whole blocks fetched for sequential readers, kept LRU
// within a byte budget. Entries are dropped per inode when another client's
// write is noticed at open (close-to-open) or when this client writes a block.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "blockd/client.h"

namespace ringfs::fuse {

struct CachedBlock {
  wire::BlockVersion version;  // the version these bytes are
  blockd::BlockData data;  // `length` bytes from offset 0; zeros beyond
  Status status;
  bool ready = false;
};

class BlockCache {
 public:
  explicit BlockCache(uint64_t budget) : budget_(budget) {}

  // Returns the entry for (ino, index) at `version` (one at another version
  // is dropped: it is never served). `created` is set when the caller must
  // fill a new entry (and then call Fill).
  std::shared_ptr<CachedBlock> GetOrCreate(uint64_t ino, uint64_t index,
                                           const wire::BlockVersion& version, bool* created);
  std::shared_ptr<CachedBlock> Get(uint64_t ino, uint64_t index, const wire::BlockVersion& version);
  // Waits until `e` is filled.
  void Wait(const std::shared_ptr<CachedBlock>& e);
  // `version`: the version the bytes really are, if not the one asked for.
  void Fill(uint64_t ino, uint64_t index, const std::shared_ptr<CachedBlock>& e,
            Result<blockd::BlockData> r, const wire::BlockVersion* version = nullptr);
  void Erase(uint64_t ino, uint64_t index);
  void EraseInode(uint64_t ino);

 private:
  using Key = std::pair<uint64_t, uint64_t>;
  struct Slot {
    std::shared_ptr<CachedBlock> block;
    std::list<Key>::iterator lru;
  };
  void EvictLocked();

  const uint64_t budget_;
  uint64_t used_ = 0;
  std::mutex mu_;
  std::condition_variable filled_;
  std::map<Key, Slot> slots_;
  std::list<Key> lru_;  // front = most recent
};

}  // namespace ringfs::fuse
