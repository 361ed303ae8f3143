#include "fuse/block_cache.h"

namespace ringfs::fuse {

std::shared_ptr<CachedBlock> BlockCache::Get(uint64_t ino, uint64_t index,
                                             const wire::BlockVersion& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find({ino, index});
  if (it == slots_.end() || !(it->second.block->version == version)) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.block;
}

std::shared_ptr<CachedBlock> BlockCache::GetOrCreate(uint64_t ino, uint64_t index,
                                                     const wire::BlockVersion& version,
                                                     bool* created) {
  std::lock_guard<std::mutex> lock(mu_);
  Key key{ino, index};
  auto it = slots_.find(key);
  if (it != slots_.end() && it->second.block->version == version) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    *created = false;
    return it->second.block;
  }
  if (it != slots_.end()) {  // another version: never served again
    if (it->second.block->ready) used_ -= it->second.block->data.data.size();
    lru_.erase(it->second.lru);
    slots_.erase(it);
  }
  auto e = std::make_shared<CachedBlock>();
  e->version = version;
  lru_.push_front(key);
  slots_.emplace(key, Slot{e, lru_.begin()});
  *created = true;
  return e;
}

void BlockCache::Wait(const std::shared_ptr<CachedBlock>& e) {
  std::unique_lock<std::mutex> lock(mu_);
  filled_.wait(lock, [&] { return e->ready; });
}

void BlockCache::Fill(uint64_t ino, uint64_t index, const std::shared_ptr<CachedBlock>& e,
                      Result<blockd::BlockData> r, const wire::BlockVersion* version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (version) e->version = *version;
  if (r.ok()) {
    e->data = std::move(r).value();
  } else {
    e->status = r.status();
  }
  e->ready = true;
  auto it = slots_.find({ino, index});
  if (it != slots_.end() && it->second.block == e) {
    if (e->status.ok()) {
      used_ += e->data.data.size();
    } else {
      lru_.erase(it->second.lru);  // failures are not cached
      slots_.erase(it);
    }
  }
  EvictLocked();
  filled_.notify_all();
}

void BlockCache::Erase(uint64_t ino, uint64_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find({ino, index});
  if (it == slots_.end()) return;
  if (it->second.block->ready) used_ -= it->second.block->data.data.size();
  lru_.erase(it->second.lru);
  slots_.erase(it);
}

void BlockCache::EraseInode(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.lower_bound({ino, 0});
  while (it != slots_.end() && it->first.first == ino) {
    if (it->second.block->ready) used_ -= it->second.block->data.data.size();
    lru_.erase(it->second.lru);
    it = slots_.erase(it);
  }
}

void BlockCache::EvictLocked() {
  while (used_ > budget_ && !lru_.empty()) {
    auto it = slots_.find(lru_.back());
    if (!it->second.block->ready) break;  // still loading: keep
    used_ -= it->second.block->data.data.size();
    lru_.pop_back();
    slots_.erase(it);
  }
}

}  // namespace ringfs::fuse
