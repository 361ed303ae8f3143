#include "fuse/data_path.h"

#include <algorithm>
#include <cstring>
#include <chrono>
#include <thread>
#include <random>
#include <tuple>

#include "common/block_version.h"
#include "common/log.h"

namespace ringfs::fuse {

namespace {
constexpr uint64_t kBs = wire::kBlockSize;
constexpr uint32_t kChunk = 64 << 10;  // the block daemons' checksum unit
// Buffered ranges per block before it is uploaded (a random writer's).
constexpr size_t kMaxRanges = 1024;
// A write or read whose replicas moved on is retried on what they hold at
// most this often (each retry follows another writer's progress).
constexpr int kMaxRebase = 16;

uint32_t Jitter() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return static_cast<uint32_t>(rng());
}

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

DataPath::DataPath(blockd::Client& blocks, const Options& opts, uint64_t session,
                   VersionSource committed, RunSource runs)
    : blocks_(blocks),
      session_(session),
      committed_(std::move(committed)),
      runs_(std::move(runs)),
      opts_(opts),
      cache_(opts.cache_bytes),
      uploads_(opts.upload_threads),
      readers_(std::max(2, opts.readahead_blocks + 1)) {}

// ------------------------------------------------------------------ writes

void Extent::Add(uint32_t off, const char* p, size_t n) {
  const uint32_t end = off + static_cast<uint32_t>(n);
  // The first range that could touch [off, end): the one before `off`.
  auto it = ranges.upper_bound(off);
  if (it != ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.size() >= off) it = prev;
  }
  // Common case: extending or overwriting inside one range that nothing
  // after it touches (a sequential writer): in place.
  if (it != ranges.end() && it->first <= off) {
    auto next = std::next(it);
    if (next == ranges.end() || next->first > end) {
      std::string& d = it->second;
      const size_t rel = off - it->first;
      if (rel + n > d.size()) {
        if (n >= kChunk && d.capacity() < kBs - it->first) d.reserve(kBs - it->first);  // no regrowth
        bytes += rel + n - d.size();
        d.resize(rel + n);
      }
      std::memcpy(d.data() + rel, p, n);
      return;
    }
  }
  // General case: merge every range that overlaps or touches [off, end).
  uint32_t start = off, stop = end;
  auto last = it;
  while (last != ranges.end() && last->first <= end) {
    start = std::min(start, last->first);
    stop = std::max<uint32_t>(stop, last->first + static_cast<uint32_t>(last->second.size()));
    ++last;
  }
  std::string merged(stop - start, '\0');
  for (auto k = it; k != last; ++k) {
    std::memcpy(merged.data() + (k->first - start), k->second.data(), k->second.size());
    bytes -= k->second.size();
  }
  std::memcpy(merged.data() + (off - start), p, n);
  ranges.erase(it, last);
  bytes += merged.size();
  ranges.emplace(start, std::move(merged));
}

Status DataPath::Write(const std::shared_ptr<Inode>& inode, uint64_t off, const char* buf,
                       size_t size, const OpenFile* file) {
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (file && inode->error_seq > file->seen_error) return inode->last_error;
    Status st = ForEachBlock(off, size, [&](uint64_t index, uint32_t boff, size_t n, size_t done) {
      Extent& e = inode->dirty[index];
      const size_t before = e.bytes;
      e.Add(boff, buf + done, n);
      inode->dirty_bytes += e.bytes - before;
      // A streaming writer's full block goes at once; a random writer's
      // ranges gather until the block holds many of them.
      if (e.WholeTail() || e.ranges.size() >= kMaxRanges || e.bytes >= kBs) {
        Extent full = std::move(e);
        inode->dirty.erase(index);
        SubmitLocked(inode, index, std::move(full));
      }
      cache_.Erase(inode->ino, index);
      return Status::OK();
    });
    // Bounded buffering: past the limit, everything of this file goes.
    if (inode->dirty_bytes > opts_.inflight_bytes / 2) {
      auto dirty = std::move(inode->dirty);
      inode->dirty.clear();
      for (auto& [index, ext] : dirty) SubmitLocked(inode, index, std::move(ext));
    }
    (void)st;  // buffering cannot fail
    inode->write_end = std::max(inode->write_end, off + size);
    inode->wrote = true;
  }
  WaitForRoom();
  return Status::OK();
}

void DataPath::SubmitLocked(const std::shared_ptr<Inode>& inode, uint64_t index, Extent ext) {
  inode->dirty_bytes -= std::min(inode->dirty_bytes, ext.bytes);
  Upload u;
  if (ext.ranges.size() == 1) {
    u.ranges.push_back(wire::WriteRange{ext.ranges.begin()->first, static_cast<uint32_t>(ext.bytes)});
    u.data = std::make_shared<const std::string>(std::move(ext.ranges.begin()->second));
  } else {
    std::string all;
    all.reserve(ext.bytes);
    for (auto& [off, d] : ext.ranges) {
      u.ranges.push_back(wire::WriteRange{off, static_cast<uint32_t>(d.size())});
      all += d;
    }
    u.data = std::make_shared<const std::string>(std::move(all));
  }
  {
    std::lock_guard<std::mutex> lock(room_mu_);
    inflight_ += u.data->size();
  }
  inode->queued[index].push_back(std::move(u));
  if (inode->uploading.insert(index).second) {
    uploads_.Submit([this, inode, index] { Drain(inode, index); });
  }
}

void DataPath::Empty(const std::shared_ptr<Inode>& inode, uint64_t first, uint64_t last) {
  std::lock_guard<std::mutex> lock(inode->mu);
  for (uint64_t index = first; index < last; index++) {
    // Buffered bytes of the block are zeros now: not worth sending.
    auto d = inode->dirty.find(index);
    if (d != inode->dirty.end()) {
      inode->dirty_bytes -= std::min(inode->dirty_bytes, d->second.bytes);
      inode->dirty.erase(d);
    }
    // A hole already (as far as this client knows the file): nothing to free.
    const bool queued = inode->queued.count(index) || inode->uploading.count(index);
    if (!queued && index < inode->versions_end && inode->ExpectedLocked(index).absent()) continue;
    Upload u;
    u.data = std::make_shared<const std::string>();
    u.replace = true;
    inode->queued[index].push_back(std::move(u));
    if (inode->uploading.insert(index).second) uploads_.Submit([this, inode, index] { Drain(inode, index); });
    cache_.Erase(inode->ino, index);
  }
}

// Sends one extent to the block's replicas, built on the version this
// client expects the block at. Replicas that moved on (another writer, a
// truncation, or a repair) refuse it; then the write is rebased on what is
// current: the metadata service's committed version if that changed, or
// else a version a quorum of replicas agree on (another client's
// acknowledged writes, not committed yet). A replica left behind no longer
// holds the block's version, so it is never read until repaired.
Status DataPath::Send(const std::shared_ptr<Inode>& inode, uint64_t index, const Upload& u) {
  Status st;
  for (int attempt = 0; attempt < kMaxRebase; attempt++) {
    wire::BlockVersion base;
    uint64_t epoch;
    {
      std::unique_lock<std::mutex> lock(inode->mu);
      inode->idle.wait(lock, [&] { return !inode->truncating; });
      base = inode->ExpectedLocked(index);
      epoch = inode->block_epoch;
      inode->sending++;
    }
    const wire::BlockVersion next = blockver::Next(base, epoch, session_);
    blockd::Client::WriteResult res;
    st = blocks_.Write(inode->ino, index, u.ranges.empty() ? 0 : u.ranges.front().offset, u.data, 0,
                       u.data->size(), false, base, next, &res, &u.ranges,
                       u.replace ? static_cast<uint32_t>(wire::kBlockReplace) : 0u);
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      if (--inode->sending == 0) inode->idle.notify_all();
      if (st.ok()) {
        // Unless another open learnt a newer version meanwhile.
        if (inode->ExpectedLocked(index) == base) inode->SetVersionLocked(index, next);
        inode->uncommitted[index] = wire::BlockState{index, next, res.acked};
        inode->unsynced[index] = Inode::Unsynced{res.acked, ++inode->write_seq};
        return st;
      }
    }
    if (st.code() != ESTALE) return st;
    auto now = committed_(inode->ino, index);
    if (!now.ok()) return now.status();
    wire::BlockVersion rebase = now->version;
    if (rebase == base) {
      std::vector<wire::BlockVersion> held;
      for (const auto& [node, v] : res.refused) held.push_back(v);
      auto ahead = blockver::QuorumNewer(held, base, blocks_.Quorum());
      if (!ahead) {
        // Placed replicas behind the committed version: the block is moving
        // to them. Give them the committed copy from its holders, then write.
        size_t seeded = 0;
        for (const auto& [node, v] : res.refused)
          if (!blockver::Newer(v, base) && blocks_.Seed(inode->ino, index, base, now->holders, node, v).ok())
            seeded++;
        if (seeded > 0) continue;
        // Writers racing on one block can leave its replicas split with no
        // quorum on any version: then nobody can move on (ResolveSplit).
        auto top = ResolveSplit(inode, index, next, res);
        if (!top) {
          // Still moving under another writer (a copy to give was gone by
          // the time it was asked for): look again after a short, random
          // pause, so racing writers fall out of step.
          if (attempt + 1 < kMaxRebase) {
            std::this_thread::sleep_for(std::chrono::microseconds(500 + Jitter() % (2000u * (attempt + 1))));
            continue;
          }
          return Status::Error(EIO, "block " + std::to_string(index) + ": replicas disagree");
        }
        rebase = *top;
      } else {
        rebase = *ahead;
      }
    }
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->block_epoch = std::max(inode->block_epoch, now->epoch);
    inode->SetVersionLocked(index, rebase);
  }
  return st;
}

// Writers racing on one block can leave its replicas split with no quorum
// on any version, each holding a different writer's write: then nobody's
// next write finds a quorum to build on. This writer's write failed (no
// quorum), so its own copies are the ones it may give up: they take the
// newest of the others' versions (the same choice for every writer), which
// then has a quorum, or will once its writer does the same, and each writer
// writes its bytes again on top. Another writer's copy is never touched:
// it may be the other half of an acknowledged write this view saw late.
std::optional<wire::BlockVersion> DataPath::ResolveSplit(const std::shared_ptr<Inode>& inode, uint64_t index,
                                                         const wire::BlockVersion& mine,
                                                         const blockd::Client::WriteResult& res) {
  if (res.acked.empty()) return std::nullopt;  // nothing of ours to give up
  std::optional<wire::BlockVersion> top;
  for (const auto& [node, v] : res.refused) {
    if (v.absent() || v == mine) continue;
    // Newest by (epoch, height), then by writer: every writer picks the same.
    if (!top || std::tie(v.epoch, v.height, v.writer) > std::tie(top->epoch, top->height, top->writer)) top = v;
  }
  if (!top) return std::nullopt;
  std::vector<uint32_t> sources;
  for (const auto& [node, v] : res.refused)
    if (v == *top) sources.push_back(node);
  size_t given = 0;
  for (uint32_t node : res.acked)
    if (blocks_.Seed(inode->ino, index, *top, sources, node, mine).ok()) given++;
  if (given == 0) return std::nullopt;
  LOG_INFO("ino %lu block %lu: replicas split by racing writers; this write's %zu copies take the newest other",
           (unsigned long)inode->ino, (unsigned long)index, given);
  return top;
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
    Status st = Send(inode, index, u);
    if (!st.ok()) {
      LOG_WARN("upload ino %lu block %lu: %s", (unsigned long)inode->ino, (unsigned long)index,
               st.ToString().c_str());
      std::lock_guard<std::mutex> lock(inode->mu);
      inode->error_seq++;
      inode->last_error = st;
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

Status DataPath::Flush(const std::shared_ptr<Inode>& inode, OpenFile* file) {
  std::unique_lock<std::mutex> lock(inode->mu);
  const uint64_t before = inode->error_seq;
  auto dirty = std::move(inode->dirty);
  inode->dirty.clear();
  for (auto& [index, ext] : dirty) SubmitLocked(inode, index, std::move(ext));
  inode->idle.wait(lock, [&] { return inode->uploading.empty(); });
  const uint64_t seen = file ? file->seen_error : before;
  if (inode->error_seq == seen) return Status::OK();
  if (file) file->seen_error = inode->error_seq;
  return inode->last_error;
}

Status DataPath::Sync(const std::shared_ptr<Inode>& inode, OpenFile* file) {
  RETURN_IF_ERROR(Flush(inode, file));
  std::map<uint64_t, Inode::Unsynced> todo;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    todo = inode->unsynced;  // copied: a concurrent fsync needs them too
  }
  if (todo.empty()) return Status::OK();
  std::set<uint32_t> nodes, synced;
  for (const auto& [index, u] : todo) nodes.insert(u.holders.begin(), u.holders.end());
  Status st = blocks_.Sync(nodes, &synced);
  const size_t need = blocks_.Quorum();
  std::lock_guard<std::mutex> lock(inode->mu);
  for (const auto& [index, u] : todo) {
    size_t durable = 0;
    for (uint32_t id : u.holders) durable += synced.count(id);
    if (durable < std::min(need, u.holders.size()) || durable == 0)
      return Status::Error(EIO, "block " + std::to_string(index) + " durable on " +
                                    std::to_string(durable) + " nodes: " + st.ToString());
    auto it = inode->unsynced.find(index);
    if (it != inode->unsynced.end() && it->second.seq == u.seq) inode->unsynced.erase(it);
  }
  return Status::OK();
}

void DataPath::BeginTruncate(const std::shared_ptr<Inode>& inode) {
  std::unique_lock<std::mutex> lock(inode->mu);
  inode->idle.wait(lock, [&] { return !inode->truncating; });
  inode->truncating = true;
  // Uploads already on their way finish first; new ones wait for Finish.
  inode->idle.wait(lock, [&] { return inode->sending == 0; });
}

Status DataPath::Cut(const std::shared_ptr<Inode>& inode, uint64_t size, Truncation* t) {
  *t = Truncation{};
  t->size = size;
  for (int attempt = 0; attempt < kMaxRebase; attempt++) {
    // What is current, from the metadata service itself: this client's view
    // may be older than another mount's writes. Growing cuts at the old end.
    auto now = committed_(inode->ino, size / kBs);
    if (!now.ok()) return now.status();
    t->cut_at = std::min(size, now->size);
    const uint64_t k = t->cut_at / kBs;
    if (k != size / kBs) {
      now = committed_(inode->ino, k);
      if (!now.ok()) return now.status();
      if (std::min(size, now->size) != t->cut_at) continue;  // it changed meanwhile
    }
    t->epoch = now->epoch + 1;
    const wire::BlockVersion base = now->version;
    t->has_cut = t->cut_at % kBs != 0 && !base.absent();
    // Without a cut block, "absent at the new epoch": the epoch still fences
    // the drop of the blocks past the cut (a late delivery of this request
    // must not drop blocks written after it, which carry that epoch).
    const wire::BlockVersion next = t->has_cut ? blockver::Next(base, t->epoch, session_)
                                               : wire::BlockVersion{t->epoch, 0, 0};
    blockd::Client::TruncateResult res;
    RETURN_IF_ERROR(blocks_.Truncate(inode->ino, t->cut_at, base, next, &res));
    if (!t->has_cut) return Status::OK();
    std::vector<uint32_t> placed = blocks_.Replicas(inode->ino, k), cut;
    for (uint32_t id : res.cut)
      if (std::find(placed.begin(), placed.end(), id) != placed.end()) cut.push_back(id);
    for (const auto& [id, held] : res.refused)  // cut by an earlier attempt
      if (held == next && std::find(placed.begin(), placed.end(), id) != placed.end()) cut.push_back(id);
    if (cut.size() >= std::min(blocks_.Quorum(), placed.size())) {
      t->cut = wire::BlockState{k, next, cut};
      return Status::OK();
    }
    if (res.refused.empty())
      return Status::Error(EIO, "block " + std::to_string(k) + " cut on " + std::to_string(cut.size()) + " replicas");
    // Moving under a writer (its writes not committed yet): look again
    // after a short, random pause, once it has committed.
    if (attempt + 1 < kMaxRebase)
      std::this_thread::sleep_for(std::chrono::microseconds(500 + Jitter() % (2000u * (attempt + 1))));
  }
  return Status::Error(EIO, "file kept changing during the truncation");
}

void DataPath::FinishTruncate(const std::shared_ptr<Inode>& inode, const Truncation* done) {
  std::lock_guard<std::mutex> lock(inode->mu);
  if (done) {
    const uint64_t at = done->cut_at;
    const uint64_t keep = at / kBs + (at % kBs ? 1 : 0);
    inode->block_epoch = std::max(inode->block_epoch, done->epoch);
    inode->versions.erase(inode->versions.lower_bound(keep), inode->versions.end());
    for (auto it = inode->uncommitted.lower_bound(keep); it != inode->uncommitted.end();)
      it = inode->uncommitted.erase(it);
    if (done->has_cut) inode->versions[done->cut.index] = done->cut.version;
    else if (at % kBs) inode->versions.erase(at / kBs);
    inode->write_end = std::min(inode->write_end, done->size);
  }
  inode->truncating = false;
  inode->idle.notify_all();
  // After the cut: a read-ahead that raced it holds a version no longer expected.
  cache_.EraseInode(inode->ino);
}

// ------------------------------------------------------------------- reads

Result<wire::BlockVersion> DataPath::Expected(const std::shared_ptr<Inode>& inode, uint64_t index) {
  while (true) {
    uint64_t from;
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      if (index < inode->versions_end) return inode->ExpectedLocked(index);
      from = inode->versions_end;
    }
    // The next part of the file's versions, from where this client's view ends.
    std::vector<wire::VersionRun> runs;
    uint64_t end = UINT64_MAX, epoch = 0;
    RETURN_IF_ERROR(runs_(inode->ino, from, &runs, &end, &epoch));
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->versions_end == from) {
      if (end <= from) end = UINT64_MAX;  // no progress: take it as complete
      inode->LearnVersionsLocked(runs, from, end, epoch);
    }
  }
}

// Reads at the expected version. When no replica holds it: if the metadata
// service has committed a newer one, that is read (and expected from now
// on); if not, a newer version a quorum of replicas agree on is (another
// client's acknowledged writes, which include everything committed before
// them). Anything else is EIO: never older bytes.
Result<blockd::BlockData> DataPath::ReadBlock(const std::shared_ptr<Inode>& inode, uint64_t index,
                                              wire::BlockVersion want, uint32_t offset,
                                              uint32_t len, wire::BlockVersion* version) {
  for (int attempt = 0; attempt < kMaxRebase; attempt++) {
    *version = want;
    if (want.absent()) return blockd::BlockData{};  // a hole: no replica asked
    std::vector<wire::BlockVersion> seen;
    auto r = blocks_.Read(inode->ino, index, offset, len, want, &seen);
    if (r.ok() || r.status().code() != ESTALE) return r;
    auto now = committed_(inode->ino, index);
    if (!now.ok()) return now.status();
    wire::BlockVersion next = now->version;
    if (next == want) {
      // Still current: the block may be moving, its holders off the
      // placement this client computes (the placed ones were just asked).
      std::vector<uint32_t> elsewhere;
      const auto placed = blocks_.Replicas(inode->ino, index);
      for (uint32_t id : now->holders)
        if (std::find(placed.begin(), placed.end(), id) == placed.end()) elsewhere.push_back(id);
      if (!elsewhere.empty()) {
        auto moved = blocks_.Read(inode->ino, index, offset, len, want, &seen, &elsewhere);
        if (moved.ok()) return moved;
      }
      auto ahead = blockver::QuorumNewer(seen, want, blocks_.Quorum());
      if (!ahead) return Status::Error(EIO, r.status().message());
      next = *ahead;
    }
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->block_epoch = std::max(inode->block_epoch, now->epoch);
    if (inode->ExpectedLocked(index) == want) inode->SetVersionLocked(index, next);
    want = next;
  }
  return Status::Error(EIO, "block " + std::to_string(index) + " kept changing while read");
}

Status DataPath::FetchWhole(const std::shared_ptr<Inode>& inode, uint64_t index,
                            const wire::BlockVersion& want, std::shared_ptr<CachedBlock>* out) {
  const uint64_t ino = inode->ino;
  bool created = false;
  auto e = cache_.GetOrCreate(ino, index, want, &created);
  if (created) {
    wire::BlockVersion got;
    auto r = ReadBlock(inode, index, want, 0, kBs, &got);
    // Learnt a newer version on the way: the entry holds that one.
    cache_.Fill(ino, index, e, std::move(r), &got);
  } else {
    cache_.Wait(e);
  }
  *out = e;
  return e->status;
}

void DataPath::Prefetch(const std::shared_ptr<Inode>& inode, uint64_t index, uint64_t file_size) {
  if (index * kBs >= file_size) return;
  wire::BlockVersion want;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->dirty.count(index) || inode->uploading.count(index)) return;
    if (index >= inode->versions_end) return;  // not known here yet: read on demand
    want = inode->ExpectedLocked(index);
  }
  if (want.absent()) return;
  bool created = false;
  auto e = cache_.GetOrCreate(inode->ino, index, want, &created);
  if (!created) return;
  const uint64_t ino = inode->ino;
  readers_.Submit([this, ino, index, e, want] {
    // Only exactly the expected version: anything else is sorted out on demand.
    cache_.Fill(ino, index, e, blocks_.Read(ino, index, 0, kBs, want));
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
    ASSIGN_OR_RETURN(wire::BlockVersion want, Expected(inode, index));
    if (want.absent()) {  // a hole
      out.iov.push_back({const_cast<char*>(kZeros.data()), n});
      return Status::OK();
    }
    auto cached = cache_.Get(inode->ino, index, want);
    if (cached) {
      cache_.Wait(cached);
      if (!cached->status.ok()) return cached->status;
      add(cached->data, 0, cached);
    } else if (whole_blocks) {
      std::shared_ptr<CachedBlock> e;
      RETURN_IF_ERROR(FetchWhole(inode, index, want, &e));
      add(e->data, 0, e);
    } else {
      // A random read: fetch just the checksum chunks it touches.
      const uint32_t a = boff / kChunk * kChunk;
      const uint32_t b = static_cast<uint32_t>(
          std::min<uint64_t>(kBs, (boff + n + kChunk - 1) / kChunk * kChunk));
      wire::BlockVersion got;
      auto r = ReadBlock(inode, index, want, a, b - a, &got);
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
