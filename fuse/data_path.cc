#include "fuse/data_path.h"

#include <algorithm>
#include <cstring>

namespace ringfs::fuse {

namespace {
constexpr uint64_t kBs = wire::kBlockSize;
constexpr uint32_t kChunk = 64 << 10;  // the block daemons' checksum unit

// Calls fn(index, offset in block, length, bytes done before) for each
// block's share of [off, off + size), stopping at the first error.
template <class Fn>
Status ForEachBlock(uint64_t off, size_t size, Fn&& fn) {
  size_t done = 0;
  while (done < size) {
    const uint64_t pos = off + done;
    const uint32_t boff = static_cast<uint32_t>(pos % kBs);
    const size_t n = std::min<size_t>(size - done, kBs - boff);
    RETURN_IF_ERROR(fn(pos / kBs, boff, n, done));
    done += n;
  }
  return Status::OK();
}
}  // namespace

DataPath::DataPath(blockd::Client& blocks, const Options& opts)
    : blocks_(blocks),
      opts_(opts),
      cache_(opts.cache_bytes),
      uploads_(opts.upload_threads),
      readers_(std::max(2, opts.readahead_blocks + 1)) {}

// ------------------------------------------------------------------ writes

Status DataPath::Write(const std::shared_ptr<Inode>& inode, uint64_t off, const char* buf,
                       size_t size) {
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!inode->write_error.ok()) return inode->write_error;
    Status st = ForEachBlock(off, size, [&](uint64_t index, uint32_t boff, size_t n, size_t done) {
      auto it = inode->dirty.find(index);
      if (it != inode->dirty.end()) {
        Extent& e = it->second;
        const uint32_t end = e.start + static_cast<uint32_t>(e.data.size());
        if (boff >= e.start && boff <= end) {  // overlaps or extends the open extent
          if (boff + n > end) e.data.resize(boff + n - e.start);
          std::memcpy(e.data.data() + (boff - e.start), buf + done, n);
        } else {
          Extent old = std::move(e);
          inode->dirty.erase(it);
          SubmitLocked(inode, index, std::move(old));
          it = inode->dirty.end();
        }
      }
      if (it == inode->dirty.end()) {
        Extent e;
        e.start = boff;
        if (n >= kChunk) e.data.reserve(kBs - boff);  // a streaming writer: no regrowth
        e.data.assign(buf + done, n);
        it = inode->dirty.emplace(index, std::move(e)).first;
      }
      if (it->second.start + it->second.data.size() == kBs) {  // block tail complete: send
        Extent full = std::move(it->second);
        inode->dirty.erase(it);
        SubmitLocked(inode, index, std::move(full));
      }
      cache_.Erase(inode->ino, index);
      return Status::OK();
    });
    (void)st;  // buffering cannot fail
    inode->write_end = std::max(inode->write_end, off + size);
    inode->wrote = true;
  }
  WaitForRoom();
  return Status::OK();
}

void DataPath::SubmitLocked(const std::shared_ptr<Inode>& inode, uint64_t index, Extent ext) {
  Upload u{ext.start, std::make_shared<const std::string>(std::move(ext.data))};
  {
    std::lock_guard<std::mutex> lock(room_mu_);
    inflight_ += u.data->size();
  }
  inode->queued[index].push_back(std::move(u));
  if (inode->uploading.insert(index).second) {
    uploads_.Submit([this, inode, index] { Drain(inode, index); });
  }
}

// Uploads one block's queue in order, so overlapping extents land in the
// order they were written.
void DataPath::Drain(std::shared_ptr<Inode> inode, uint64_t index) {
  while (true) {
    Upload u;
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      auto q = inode->queued.find(index);
      if (q == inode->queued.end() || q->second.empty()) {
        inode->queued.erase(index);
        inode->uploading.erase(index);
        inode->idle.notify_all();
        return;
      }
      u = std::move(q->second.front());
      q->second.pop_front();
    }
    std::vector<uint32_t> nodes, missed;
    std::vector<wire::StaleReplica> fresh;
    Status st = blocks_.Write(inode->ino, index, u.start, u.data, 0, u.data->size(), false, &nodes,
                              &missed);
    cache_.Erase(inode->ino, index);  // a read-ahead may have raced the upload
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      if (!st.ok() && inode->write_error.ok()) inode->write_error = st;
      inode->written_nodes.insert(nodes.begin(), nodes.end());
      fresh = inode->NoteMissed(index, missed);
    }
    // Recorded at once, not only with the next commit: a client that dies
    // before closing must not leave a replica's old bytes unrecorded.
    if (!fresh.empty() && report_missed_ && report_missed_(inode->ino, fresh).ok()) {
      std::lock_guard<std::mutex> lock(inode->mu);
      inode->MarkReported(fresh);
    }
    {
      std::lock_guard<std::mutex> lock(room_mu_);
      inflight_ -= u.data->size();
    }
    room_cv_.notify_all();
  }
}

void DataPath::WaitForRoom() {
  std::unique_lock<std::mutex> lock(room_mu_);
  room_cv_.wait(lock, [&] { return inflight_ <= opts_.inflight_bytes; });
}

Status DataPath::Flush(const std::shared_ptr<Inode>& inode) {
  std::unique_lock<std::mutex> lock(inode->mu);
  auto dirty = std::move(inode->dirty);
  inode->dirty.clear();
  for (auto& [index, ext] : dirty) SubmitLocked(inode, index, std::move(ext));
  inode->idle.wait(lock, [&] { return inode->uploading.empty(); });
  Status st = inode->write_error;
  inode->write_error = Status::OK();
  return st;
}

Status DataPath::Sync(const std::shared_ptr<Inode>& inode) {
  RETURN_IF_ERROR(Flush(inode));
  std::set<uint32_t> nodes;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    nodes.swap(inode->written_nodes);
  }
  if (nodes.empty()) return Status::OK();
  return blocks_.Sync(nodes);
}

Status DataPath::Truncate(const std::shared_ptr<Inode>& inode, uint64_t size) {
  RETURN_IF_ERROR(Flush(inode));
  cache_.EraseInode(inode->ino);
  uint64_t old_size;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    old_size = inode->Size();
  }
  std::vector<uint32_t> missed;
  RETURN_IF_ERROR(blocks_.Truncate(inode->ino, size, &missed));
  std::lock_guard<std::mutex> lock(inode->mu);
  inode->write_end = std::min(inode->write_end, size);
  // A node the truncation did not reach keeps the old bytes of every block
  // it holds from the new end on.
  if (!missed.empty() && old_size > size) {
    for (uint64_t index = size / kBs; index <= (old_size - 1) / kBs; index++) {
      std::vector<uint32_t> placed = blocks_.Replicas(inode->ino, index), hit;
      for (uint32_t id : missed)
        if (std::find(placed.begin(), placed.end(), id) != placed.end()) hit.push_back(id);
      inode->NoteMissed(index, hit);
    }
  }
  return Status::OK();
}

// ------------------------------------------------------------------- reads

std::vector<uint32_t> DataPath::StaleNodes(const std::shared_ptr<Inode>& inode, uint64_t index) {
  std::lock_guard<std::mutex> lock(inode->mu);
  return inode->StaleNodes(index);
}

Status DataPath::FetchWhole(const std::shared_ptr<Inode>& inode, uint64_t index,
                            std::shared_ptr<CachedBlock>* out) {
  const uint64_t ino = inode->ino;
  bool created = false;
  auto e = cache_.GetOrCreate(ino, index, &created);
  if (created) {
    cache_.Fill(ino, index, e, blocks_.Read(ino, index, 0, kBs, StaleNodes(inode, index)));
  } else {
    cache_.Wait(e);
  }
  *out = e;
  return e->status;
}

void DataPath::Prefetch(const std::shared_ptr<Inode>& inode, uint64_t index, uint64_t file_size) {
  if (index * kBs >= file_size) return;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->dirty.count(index) || inode->uploading.count(index)) return;
  }
  bool created = false;
  auto e = cache_.GetOrCreate(inode->ino, index, &created);
  if (!created) return;
  const uint64_t ino = inode->ino;
  readers_.Submit([this, ino, index, e, avoid = StaleNodes(inode, index)] {
    cache_.Fill(ino, index, e, blocks_.Read(ino, index, 0, kBs, avoid));
  });
}

Result<ReadReply> DataPath::Read(const std::shared_ptr<Inode>& inode, uint64_t off, size_t size,
                                 uint64_t file_size) {
  static const std::string kZeros(kBs, '\0');
  ReadReply out;
  if (off >= file_size || size == 0) return out;
  size = std::min<uint64_t>(size, file_size - off);
  bool sequential;
  {
    std::unique_lock<std::mutex> lock(inode->mu);
    if (inode->HasPendingWrites()) {
      lock.unlock();
      RETURN_IF_ERROR(Flush(inode));
      lock.lock();
    }
    sequential = off == inode->next_read || size >= kChunk;
    inode->next_read = off + size;
  }
  // Files that fit easily in the cache are fetched a block at a time even when
  // read randomly: after one pass every read is a cache hit.
  const bool whole_blocks = sequential || file_size <= opts_.cache_bytes / 2;
  RETURN_IF_ERROR(ForEachBlock(off, size, [&](uint64_t index, uint32_t boff, size_t n, size_t) {
    // `d` holds bytes [base, base + d.length) of the block; the rest is zeros.
    auto add = [&](const blockd::BlockData& d, uint32_t base, std::shared_ptr<const void> owner) {
      const uint64_t have_end = base + d.length;
      size_t k = 0;
      if (boff < have_end) {
        k = std::min<uint64_t>(n, have_end - boff);
        out.iov.push_back({const_cast<char*>(d.data.data<char>()) + (boff - base), k});
        out.hold.push_back(std::move(owner));
      }
      if (k < n) out.iov.push_back({const_cast<char*>(kZeros.data()), n - k});
    };
    auto cached = cache_.Get(inode->ino, index);
    if (cached) {
      cache_.Wait(cached);
      if (!cached->status.ok()) return cached->status;
      add(cached->data, 0, cached);
    } else if (whole_blocks) {
      std::shared_ptr<CachedBlock> e;
      RETURN_IF_ERROR(FetchWhole(inode, index, &e));
      add(e->data, 0, e);
    } else {
      // A random read: fetch just the checksum chunks it touches.
      const uint32_t a = boff / kChunk * kChunk;
      const uint32_t b = static_cast<uint32_t>(
          std::min<uint64_t>(kBs, (boff + n + kChunk - 1) / kChunk * kChunk));
      auto r = blocks_.Read(inode->ino, index, a, b - a, StaleNodes(inode, index));
      if (!r.ok()) return r.status();
      auto owned = std::make_shared<blockd::BlockData>(std::move(r).value());
      add(*owned, a, owned);
    }
    if (sequential) {
      for (int k = 1; k <= opts_.readahead_blocks; k++) Prefetch(inode, index + k, file_size);
      // A sequential reader has passed this block's predecessors and the
      // kernel's page cache now holds them: free them here so their memory is
      // reused for the next fetches instead of growing the heap page by page
      // (a fresh page costs a fault and zeroing, more than copying it).
      if (index >= 2) cache_.Erase(inode->ino, index - 2);
    }
    return Status::OK();
  }));
  return out;
}

}  // namespace ringfs::fuse
