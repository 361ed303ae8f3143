#include "fuse/filesystem.h"

#include "gossip/join.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/block_version.h"
#include "common/log.h"

namespace ringfs::fuse {

stats::Table& FuseStats() {
  static stats::Table t("fuse", [](size_t i) -> std::string {
    static const char* kNames[] = {"open", "create", "read", "write", "flush", "release", "fsync", "lookup", "forget", "forgetmulti", "getattr", "setattr", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "readlink", "opendir", "readdir", "readdirplus", "releasedir", "statfs", "fsyncdir", "setxattr", "getxattr", "listxattr", "removexattr", "getlk", "setlk", "flock", "fallocate"};
    return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "op" + std::to_string(i);
  });
  return t;
}

namespace {
DirCache::Options DirCacheOptions(const Options& o) {
  DirCache::Options d;
  d.enabled = o.dir_cache && o.entry_timeout > 0;
  return d;
}
}  // namespace

Filesystem::Filesystem(Options opts) : opts_(std::move(opts)), dirs_(DirCacheOptions(opts_)) {}

void Filesystem::InvalidateAttr(uint64_t ino) {
  if (fuse_session* se = se_.load()) (void)fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);
}

namespace {
bool Before(const wire::Timespec& a, const wire::Timespec& b) {
  return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec);
}
}  // namespace

void Filesystem::Accessed(const std::shared_ptr<Inode>& inode, bool dir) {
  if (opts_.atime == Options::Atime::kNoatime || (dir && opts_.nodiratime)) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const wire::Timespec now{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!inode->have_attr) return;
    wire::Attr& a = inode->attr;
    if (!AtimeDue(a, now) || !Before(a.atime, now)) return;
    a.atime = now;
  }
  {
    std::lock_guard<std::mutex> lock(atime_mu_);
    atimes_[inode->ino] = now;
  }
  InvalidateAttr(inode->ino);  // the kernel's copy has the old one
}

bool Filesystem::AtimeDue(const wire::Attr& attr, const wire::Timespec& now) const {
  if (opts_.atime == Options::Atime::kNoatime) return false;
  if (opts_.atime == Options::Atime::kStrictatime) return true;
  wire::Attr a = attr;
  OverlayAtime(&a);
  // relatime: only an atime not after the last change, or a day old.
  return !Before(a.mtime, a.atime) || !Before(a.ctime, a.atime) || a.atime.sec + 86400 <= now.sec;
}

void Filesystem::OverlayAtime(wire::Attr* attr) const {
  std::lock_guard<std::mutex> lock(atime_mu_);
  if (atimes_.empty()) return;
  auto it = atimes_.find(attr->ino);
  if (it != atimes_.end() && Before(attr->atime, it->second)) attr->atime = it->second;
}

// Every second (lazytime: every minute) the access times stamped since go
// in one request; they stay in atimes_ until recorded, so a GETATTR
// answered meanwhile still shows them (OverlayAtime).
void Filesystem::AtimeLoop() {
  const auto every = std::chrono::milliseconds(opts_.lazytime ? opts_.lazy_flush_ms : opts_.atime_flush_ms);
  std::unique_lock<std::mutex> lock(atime_mu_);
  while (true) {
    atime_cv_.wait_for(lock, every, [&] { return atime_stop_; });
    const bool stop = atime_stop_;
    std::vector<wire::InodeTime> batch;
    for (const auto& [ino, t] : atimes_) batch.push_back({ino, t});
    lock.unlock();
    constexpr size_t kPerRequest = 4096;
    for (size_t i = 0; i < batch.size(); i += kPerRequest) {
      wire::MetaRequest m;
      m.atimes.assign(batch.begin() + i, batch.begin() + std::min(batch.size(), i + kPerRequest));
      wire::MetaReply r;
      Status st = MetaCall(wire::Op::kTouchAtimes, m, &r);
      if (!st.ok()) LOG_WARN("access times of %zu files: %s", m.atimes.size(), st.ToString().c_str());
    }
    lock.lock();
    for (const auto& t : batch) {
      auto it = atimes_.find(t.ino);
      if (it != atimes_.end() && it->second == t.time) atimes_.erase(it);
    }
    if (stop) return;
  }
}

void Filesystem::DropData(uint64_t ino) {
  data_->DropCache(ino);
  background_->Submit([this, ino] {
    if (fuse_session* se = se_.load()) (void)fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
  });
}

Filesystem::~Filesystem() { Stop(); }

void Filesystem::Start() {
  beat_ms_ = opts_.session_beat_ms;
  meta_ = std::make_unique<meta::Client>(opts_.meta);
  std::random_device rd;
  session_ = (uint64_t{rd()} << 32 | rd()) | 1;  // never 0
  wire::MetaReply map_rep;
  wire::MetaRequest map_req;
  Status map_st = meta_->Call(wire::Op::kGetMap, map_req, &map_rep);
  if (map_st.ok()) {
    blocks_.SetMap(map_rep.map);
    // Another client's change to a name: the kernel forgets its entry (or
    // its absence) at once instead of at the end of the entry time.
    dirs_.Start(
        map_rep.events_addr, session_,
        [this](uint64_t dir, const std::string& name) {
          if (fuse_session* se = se_.load())
            (void)fuse_lowlevel_notify_inval_entry(se, dir, name.data(), name.size());
        },
        [this](uint64_t ino) {
          DropFresh(ino, /*foreign=*/true);  // changed elsewhere: what this client learnt is old too
          InvalidateAttr(ino);
        });
  } else {
    LOG_ERROR("cannot read the cluster map from %s: %s", opts_.meta.c_str(), map_st.ToString().c_str());
  }
  StartGossip();
  // A replica whose copy failed its checksum no longer counts as holding
  // the block: the metadata service drops it and repairs it.
  blocks_.OnBadCopy([this](uint64_t ino, uint64_t index, uint32_t node,
                           const wire::BlockVersion& version) {
    wire::MetaRequest req;
    req.ino = ino;
    req.blocks.push_back(wire::BlockState{index, version, {node}});
    Status st = meta_->Call(wire::Op::kReportBadCopy, req, nullptr);
    LOG_WARN("ino %lu block %lu on node %u failed its checksum; reported: %s", (unsigned long)ino,
             (unsigned long)index, node, st.ToString().c_str());
  });
  data_ = std::make_unique<DataPath>(
      blocks_, opts_, session_,
      [this](uint64_t ino, uint64_t index) { return Committed(ino, index); },
      [this](uint64_t ino, uint64_t from, std::vector<wire::VersionRun>* runs, uint64_t* end,
             uint64_t* epoch) {
        ASSIGN_OR_RETURN(wire::MetaReply rep, GetBlocks(ino, from, 0));
        *runs = std::move(rep.runs);
        *end = rep.runs_end;
        *epoch = rep.attr.block_epoch;
        return Status::OK();
      });
  background_ = std::make_unique<ThreadPool>(1);
  map_thread_ = std::thread([this] { RefreshMapLoop(); });
  closer_ = std::thread([this] { CloseLoop(); });
  if (opts_.atime != Options::Atime::kNoatime) atimer_ = std::thread([this] { AtimeLoop(); });
}

// A subscriber to the cluster's gossip (never a member): liveness of every
// node as the cluster sees it, within seconds, and the newest map epoch.
// Without it (an older cluster) the map's liveness, re-read every second,
// is used.
void Filesystem::StartGossip() {
  auto view = gossip::Discover(opts_.meta, 3000);
  if (!view.ok()) {
    LOG_WARN("no gossip from %s (%s): liveness from the cluster map only", opts_.meta.c_str(),
             view.status().ToString().c_str());
    return;
  }
  gossip::Agent::Options go;
  go.observer = true;
  go.seeds = view->seeds;
  gossip_ = std::make_unique<gossip::ZmqGossip>(go);
  Status st = gossip_->Start();
  if (st.ok()) st = gossip_->MergeFullState(view->state);
  if (!st.ok()) {
    LOG_WARN("gossip: %s", st.ToString().c_str());
    gossip_.reset();
    return;
  }
  gossip::ZmqGossip* g = gossip_.get();
  blocks_.SetLiveness([g](uint32_t id) -> std::optional<bool> {
    auto m = g->Get(id);
    if (!m) return std::nullopt;
    return m->usable();
  });
}

void Filesystem::Stop() {
  if (stop_.exchange(true)) return;
  WaitForLockWaits();  // each ends within the service's lock wait
  dirs_.Stop();
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    closing_stop_ = true;
  }
  close_cv_.notify_all();
  if (closer_.joinable()) closer_.join();  // sends what is queued first
  {
    std::lock_guard<std::mutex> lock(atime_mu_);
    atime_stop_ = true;
  }
  atime_cv_.notify_all();
  if (atimer_.joinable()) atimer_.join();  // so do access times
  stop_cv_.notify_all();
  if (map_thread_.joinable()) map_thread_.join();
  blocks_.SetLiveness(nullptr);
  if (gossip_) gossip_->Stop();
  background_.reset();
  data_.reset();
}

void Filesystem::SessionBeat() {
  wire::MetaRequest req;
  req.session = session_;
  // Exclusive: no open or close is between the service and our table now,
  // so the list is exactly what the service should count for us.
  std::unique_lock<std::shared_mutex> guard(session_mu_);
  {
    // Closes still queued go first, so the list below is the whole truth.
    std::vector<uint64_t> queued;
    {
      std::lock_guard<std::mutex> l(close_mu_);
      queued.swap(closes_);
    }
    SendClosesLocked(std::move(queued));
  }
  std::vector<std::shared_ptr<Inode>> inodes;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    for (const auto& [ino, inode] : table_) inodes.push_back(inode);
  }
  for (const auto& inode : inodes) {
    std::lock_guard<std::mutex> lock(inode->mu);
    for (int i = 0; i < inode->open_count; i++) req.open_inos.push_back(inode->ino);
  }
  req.held_locks = held_locks_.HeldBy(1);
  wire::MetaReply rep;
  Status st = meta_->Call(wire::Op::kSessionBeat, req, &rep);
  if (!st.ok()) LOG_WARN("session beat: %s", st.ToString().c_str());
  // Beat four times within the service's timeout, whatever it is set to
  // (a session it drops loses its locks).
  if (st.ok() && rep.session_timeout_ms > 0)
    beat_ms_ = std::min(opts_.session_beat_ms, std::max(250, static_cast<int>(rep.session_timeout_ms / 4)));
}

void Filesystem::RefreshMapLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  auto next_beat = std::chrono::steady_clock::now();
  auto next_map = next_beat;
  while (!stop_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(gossip_ ? 100 : opts_.map_refresh_ms));
    if (stop_) break;
    lock.unlock();
    if (std::chrono::steady_clock::now() >= next_beat) {
      SessionBeat();
      next_beat = std::chrono::steady_clock::now() + std::chrono::milliseconds(beat_ms_.load());
    }
    // With gossip, the map is fetched when a newer epoch is announced (and
    // every map_fallback_ms in case an announcement was missed); without,
    // every map_refresh_ms.
    const auto now = std::chrono::steady_clock::now();
    const bool announced = gossip_ && gossip_->MaxMapEpoch() > blocks_.epoch();
    if (!gossip_ || announced || now >= next_map) {
      next_map = now + std::chrono::milliseconds(opts_.map_fallback_ms);
      wire::MetaReply rep;
      wire::MetaRequest req;
      Status st = meta_->Call(wire::Op::kGetMap, req, &rep);
      if (st.ok() && !rep.events_addr.empty()) dirs_.SetAddress(rep.events_addr);
      if (st.ok() && (rep.map.epoch != blocks_.epoch() || blocks_.map().nodes.size() != rep.map.nodes.size())) {
        blocks_.SetMap(rep.map);
      }
    }
    lock.lock();
  }
}

Status Filesystem::MetaCall(wire::Op op, wire::MetaRequest& req, wire::MetaReply* rep,
                            fuse_req_t freq) {
  if (freq) {
    const fuse_ctx* ctx = fuse_req_ctx(freq);
    req.uid = ctx->uid;
    req.gid = ctx->gid;
    req.umask = ctx->umask;
  }
  req.session = session_;  // namespace events name the client that made a change
  Status st = meta_->Call(op, req, rep);
  if (st.ok() && (op == wire::Op::kSetXattr || op == wire::Op::kRemoveXattr || op == wire::Op::kRename ||
                  op == wire::Op::kLink)) {
    // Attributes it changed (a moved inode's or an xattr's ctime) that a
    // FreshAttr answer would not have.
    DropFresh(req.ino);
    if (rep) DropFresh(rep->moved);
    if (op == wire::Op::kSetXattr || op == wire::Op::kRemoveXattr) {
      // Perhaps an ACL: its flags here are old until the inode is read again.
      if (auto inode = Find(req.ino)) {
        std::lock_guard<std::mutex> lock(inode->mu);
        inode->acl_known = false;
      }
    }
  }
  if (st.ok() && rep) {
    for (const wire::Attr& dir : rep->dirs) UpdateAttr(dir);
  }
  return st;
}

void Filesystem::DropFresh(uint64_t ino, bool foreign) {
  if (ino == 0) return;
  if (auto inode = Find(ino)) {
    std::unique_lock<std::mutex> lock(inode->mu);
    inode->fresh_until = {};
    if (foreign) inode->acl_known = false;  // its ACLs may have changed too
    if (!foreign || inode->open_count == 0) return;
    inode->attr_stale = true;
    // Open here and changed by another mount: what this mount (and its
    // kernel) cached of the data is checked soon, so open descriptors read
    // the other mount's committed writes within moments, not at the next
    // open. One check in flight per file; a change during it asks another.
    if (!S_ISREG(inode->attr.mode) || inode->wrote || inode->HasPendingWrites()) return;
    if (inode->reval_queued) {
      inode->reval_again = true;
      return;
    }
    inode->reval_queued = true;
    lock.unlock();
    background_->Submit([this, inode] {
      while (true) {
        Status st = Revalidate(inode->ino);
        if (!st.ok() && st.code() != ENOENT)
          LOG_WARN("revalidating %lu after another mount's change: %s", (unsigned long)inode->ino,
                   st.ToString().c_str());
        std::lock_guard<std::mutex> l(inode->mu);
        if (!inode->reval_again) {
          inode->reval_queued = false;
          return;
        }
        inode->reval_again = false;
      }
    });
  }
}

Status Filesystem::SyncMeta() {
  wire::MetaRequest req;
  wire::MetaReply rep;
  return meta_->Call(wire::Op::kSyncMeta, req, &rep);
}

std::optional<std::pair<wire::Attr, double>> Filesystem::FreshAttr(uint64_t ino) {
  auto inode = Find(ino);
  if (!inode) return std::nullopt;
  std::lock_guard<std::mutex> lock(inode->mu);
  auto now = std::chrono::steady_clock::now();
  if (!inode->have_attr || now >= inode->fresh_until) return std::nullopt;
  return std::make_pair(inode->attr, std::chrono::duration<double>(inode->fresh_until - now).count());
}

std::shared_ptr<Inode> Filesystem::Get(uint64_t ino) {
  std::lock_guard<std::mutex> lock(table_mu_);
  auto& slot = table_[ino];
  if (!slot) slot = std::make_shared<Inode>(ino);
  return slot;
}

std::shared_ptr<Inode> Filesystem::Find(uint64_t ino) {
  std::lock_guard<std::mutex> lock(table_mu_);
  auto it = table_.find(ino);
  return it == table_.end() ? nullptr : it->second;
}

double Filesystem::AttrTimeout(const wire::Attr& a) const {
  return S_ISDIR(a.mode) ? opts_.dir_attr_timeout : opts_.file_attr_timeout;
}

double Filesystem::AttrTimeout(const wire::Attr& a, const Source& src) {
  const double base = AttrTimeout(a);
  if (opts_.events_timeout <= base || src.seq == 0) return base;
  return dirs_.Trust(a.ino, 0, "", src.incarnation, src.seq) ? opts_.events_timeout : base;
}

void Filesystem::FillStat(const wire::Attr& a, struct stat* st) const {
  *st = {};
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_rdev = a.rdev;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = 1 << 20;  // large, so cp and friends use large buffers
  // Allocated bytes: the recorded blocks, none past the end (rounded to
  // 4 KiB there, as a local filesystem allocates). Holes count nothing.
  // Without a count (an old record, or writes not committed yet): the size.
  uint64_t bytes = (a.size + 511) & ~uint64_t{511};
  if (a.blocks != wire::kBlocksUnknown && S_ISREG(a.mode)) {
    const uint64_t end = (a.size + 4095) & ~uint64_t{4095};
    bytes = a.blocks > end / wire::kBlockSize ? end : a.blocks * uint64_t{wire::kBlockSize};
  }
  st->st_blocks = static_cast<blkcnt_t>(bytes / 512);
  wire::Attr shown = a;
  OverlayAtime(&shown);
  st->st_atim = {shown.atime.sec, shown.atime.nsec};
  st->st_mtim = {a.mtime.sec, a.mtime.nsec};
  st->st_ctim = {a.ctime.sec, a.ctime.nsec};
}

void Filesystem::Remember(const wire::Attr& attr, fuse_entry_param* e, const Source& src) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    auto& slot = table_[attr.ino];
    if (!slot) slot = std::make_shared<Inode>(attr.ino);
    slot->nlookup++;
    inode = slot;
  }
  wire::Attr shown = attr;
  bool own_writes;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->open_count == 0 || !inode->have_attr) {
      inode->attr = attr;
      inode->have_attr = true;
      inode->acl_known = true;
    }
    shown.size = inode->Size();
    if (shown.size != attr.size) shown.blocks = wire::kBlocksUnknown;  // writes not counted yet
    own_writes = inode->wrote || inode->HasPendingWrites();
  }
  *e = {};
  e->ino = attr.ino;
  e->generation = 1;
  FillStat(shown, &e->attr);
  e->attr_timeout = AttrTimeout(attr);
  e->entry_timeout = opts_.entry_timeout;
  if (opts_.events_timeout > opts_.entry_timeout && src.seq != 0 &&
      dirs_.Trust(attr.ino, src.dir, src.name, src.incarnation, src.seq)) {
    e->entry_timeout = opts_.events_timeout;
    // Attributes with this client's own writes in them are not the
    // service's: the kernel asks again, as before.
    if (!own_writes) e->attr_timeout = opts_.events_timeout;
  }
}

void Filesystem::Forget(uint64_t ino, uint64_t n) {
  std::shared_ptr<Inode> gone;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    auto it = table_.find(ino);
    if (it == table_.end()) return;
    auto& inode = it->second;
    inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
    if (inode->nlookup > 0 || ino == FUSE_ROOT_ID) return;
    gone = inode;
    table_.erase(it);
    // Under the table lock: a lookup that brings the inode back records its
    // grant after this, not before (DirCache's lock nests inside this one).
    dirs_.Untrack(ino);
  }
  bool reclaim;
  {
    std::lock_guard<std::mutex> lock(gone->mu);
    reclaim = gone->orphan;
  }
  data_->DropCache(ino);
  if (reclaim) {
    background_->Submit([this, ino] {
      wire::MetaRequest req;
      req.ino = ino;
      Status st = meta_->Call(wire::Op::kReclaim, req, nullptr);
      if (!st.ok()) LOG_WARN("reclaim %lu: %s", (unsigned long)ino, st.ToString().c_str());
    });
  }
}

void Filesystem::UpdateAttr(const wire::Attr& attr) {
  auto inode = Find(attr.ino);
  if (!inode) return;
  std::lock_guard<std::mutex> lock(inode->mu);
  inode->attr = attr;
  inode->have_attr = true;
  inode->acl_known = true;
  if (S_ISDIR(attr.mode)) {
    inode->fresh_until = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(opts_.dir_attr_timeout));
  }
}

void Filesystem::NoteUnlinked(const wire::Attr& victim, bool reclaimed) {
  if (victim.ino == 0) return;
  auto inode = Find(victim.ino);
  if (!inode) return;
  std::lock_guard<std::mutex> lock(inode->mu);
  inode->attr.nlink = victim.nlink;
  inode->attr.ctime = victim.ctime;
  if (victim.nlink == 0 && !reclaimed) inode->orphan = true;
}

Result<wire::MetaReply> Filesystem::GetBlocks(uint64_t ino, uint64_t from, uint32_t max_runs) {
  wire::MetaRequest req;
  req.ino = ino;
  req.cookie = from;
  req.max_entries = max_runs;  // 0: as many as fit
  wire::MetaReply rep;
  RETURN_IF_ERROR(meta_->Call(wire::Op::kGetBlocks, req, &rep));
  return rep;
}

Result<DataPath::Committed> Filesystem::Committed(uint64_t ino, uint64_t index) {
  ASSIGN_OR_RETURN(wire::MetaReply rep, GetBlocks(ino, index, 1));
  DataPath::Committed c;
  c.epoch = rep.attr.block_epoch;
  c.size = rep.attr.size;
  c.version = wire::BlockVersion{c.epoch, 0, 0};
  if (!rep.runs.empty() && rep.runs[0].first <= index && index - rep.runs[0].first < rep.runs[0].count)
    c.version = rep.runs[0].version;
  c.holders = std::move(rep.holders);
  return c;
}

void Filesystem::AdoptAttrLocked(Inode& inode, const wire::Attr& attr, uint64_t prev_version) {
  // Cached data stays valid only if nothing but this change happened since
  // it was cached: the file's data_version before it is the one we cached.
  // Otherwise the next open drops the kernel's page cache too.
  if (inode.cache_valid && prev_version == inode.cache_version) {
    inode.cache_version = attr.data_version;
  } else {
    data_->DropCache(inode.ino);
    inode.cache_valid = false;
  }
  inode.attr = attr;
  inode.have_attr = true;
  inode.acl_known = true;
}

std::vector<wire::BlockState> Filesystem::TakeUncommittedLocked(Inode& inode) {
  std::vector<wire::BlockState> out;
  for (auto& [index, b] : inode.uncommitted) out.push_back(std::move(b));
  inode.uncommitted.clear();
  return out;
}

void Filesystem::ReturnUncommittedLocked(Inode& inode, std::vector<wire::BlockState>& blocks) {
  for (auto& b : blocks) inode.uncommitted.emplace(b.index, std::move(b));  // newer ones stay
}

Status Filesystem::CommitWrites(const std::shared_ptr<Inode>& inode, bool publish_size) {
  std::lock_guard<std::mutex> commit(inode->commit_mu);
  std::vector<wire::BlockState> blocks;
  wire::MetaRequest req;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!inode->wrote && inode->uncommitted.empty()) return Status::OK();
    req.ino = inode->ino;
    req.size = publish_size ? inode->write_end : 0;
    blocks = TakeUncommittedLocked(*inode);
  }
  // The versions of many blocks go in several commits; the last one
  // publishes the size, once every block below it is recorded.
  constexpr size_t kPerCommit = 4096;
  wire::MetaReply rep;
  std::vector<uint64_t> superseded;
  Status st;
  size_t sent = 0;
  do {
    const size_t n = std::min(kPerCommit, blocks.size() - sent);
    req.blocks.assign(std::make_move_iterator(blocks.begin() + sent),
                      std::make_move_iterator(blocks.begin() + sent + n));
    const bool last = sent + n == blocks.size();
    wire::MetaRequest part = req;
    if (!last) part.size = 0;
    st = MetaCall(wire::Op::kCommitWrite, part, &rep);
    for (size_t i = 0; i < n; i++) blocks[sent + i] = std::move(req.blocks[i]);
    if (!st.ok()) break;
    superseded.insert(superseded.end(), rep.superseded.begin(), rep.superseded.end());
    sent += n;
  } while (sent < blocks.size());
  if (st.ok() && !superseded.empty()) st = Restamp(inode, blocks, superseded, rep.attr.block_epoch);
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!st.ok()) {
      std::vector<wire::BlockState> rest(std::make_move_iterator(blocks.begin() + sent),
                                         std::make_move_iterator(blocks.end()));
      ReturnUncommittedLocked(*inode, rest);
      return st;
    }
    AdoptAttrLocked(*inode, rep.attr, rep.prev_data_version);
    if (publish_size) inode->MarkCommitted(req.size);
  }
  // The commit set a new size and mtime the kernel may not have (it can
  // hold attributes for long, Remember): it asks again, and while the event
  // stream vouches for the commit's reply, the answer is that reply
  // (DoGetattr, FreshAttr), not a round trip.
  // Set before asking: another client's event arriving meanwhile clears it
  // (DropFresh), whichever side of the check it lands on.
  if (opts_.events_timeout > 0) {
    bool set = false;
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      if (!inode->wrote && !inode->HasPendingWrites()) {
        inode->fresh_until = std::chrono::steady_clock::now() +
                             std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(opts_.events_timeout));
        set = true;
      }
    }
    if (set && !dirs_.Trust(inode->ino, 0, "", rep.event_incarnation, rep.event_seq)) DropFresh(inode->ino);
  }
  InvalidateAttr(inode->ino);
  return Status::OK();
}

// Blocks the service did not record because a truncation (by another mount)
// began a newer epoch since this client learnt the file's. If the write came
// after that truncation, its copies still exist: a quorum of them move to a
// version of the current epoch (no bytes sent) and are committed again. If
// it came before, the truncation removed them and the write is rightly gone.
Status Filesystem::Restamp(const std::shared_ptr<Inode>& inode,
                           const std::vector<wire::BlockState>& sent,
                           const std::vector<uint64_t>& superseded, uint64_t epoch) {
  static const auto kNothing = std::make_shared<const std::string>();
  wire::MetaRequest again;
  again.ino = inode->ino;
  for (uint64_t index : superseded) {
    auto b = std::find_if(sent.begin(), sent.end(), [&](const auto& s) { return s.index == index; });
    if (b == sent.end()) continue;
    const wire::BlockVersion next = blockver::Next(b->version, epoch, session_);
    blockd::Client::WriteResult res;
    Status st = blocks_.Write(inode->ino, index, 0, kNothing, 0, 0, false, b->version, next, &res);
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->block_epoch = std::max(inode->block_epoch, epoch);
    const bool ours = inode->ExpectedLocked(index) == b->version;
    if (!st.ok()) {
      if (ours) inode->versions.erase(index);  // cut away after it was written
      continue;
    }
    if (ours) inode->SetVersionLocked(index, next);
    again.blocks.push_back(wire::BlockState{index, next, res.acked});
  }
  if (again.blocks.empty()) return Status::OK();
  wire::MetaReply rep;
  return MetaCall(wire::Op::kCommitWrite, again, &rep);
}

// Closes go to the service with the next open or create (TakeCloses), or
// in the background, several per request: a release costs no round trip. Until one arrives the service counts the file
// open a little longer, which only delays reclaiming an unlinked file.
void Filesystem::NoteClosed(uint64_t ino) {
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    if (closes_.empty()) oldest_close_ = std::chrono::steady_clock::now();
    closes_.push_back(ino);
  }
  close_cv_.notify_one();
}

std::vector<uint64_t> Filesystem::TakeCloses() {
  std::vector<uint64_t> out;
  std::lock_guard<std::mutex> lock(close_mu_);
  out.swap(closes_);
  return out;
}

void Filesystem::SendClosesLocked(std::vector<uint64_t> inos) {
  if (inos.empty()) return;
  wire::MetaRequest req;
  req.ino = inos.front();
  req.session = session_;
  req.open_inos = std::move(inos);
  Status st = meta_->Call(wire::Op::kClose, req, nullptr);
  if (!st.ok())
    LOG_WARN("%zu closes not recorded (%s): the next session beat corrects the service",
             req.open_inos.size(), st.ToString().c_str());
}

void Filesystem::CloseLoop() {
  std::unique_lock<std::mutex> lock(close_mu_);
  while (true) {
    close_cv_.wait(lock, [&] { return closing_stop_ || !closes_.empty(); });
    if (closes_.empty()) return;
    // Let a few gather, and give the next open or create the chance to
    // carry them (TakeCloses): a burst of small files then costs no request
    // of its own, even one process per file (a shell loop of cat: 1-2 ms
    // apart). So a close goes alone only once it has waited 20 ms; the price
    // is a file unlinked elsewhere reclaimed 20 ms later.
    const auto due = oldest_close_ + std::chrono::milliseconds(20);
    if (!closing_stop_ && closes_.size() < 64 && std::chrono::steady_clock::now() < due) {
      close_cv_.wait_until(lock, due, [&] { return closing_stop_ || closes_.size() >= 64; });
      continue;  // taken meanwhile, queued anew (a later due time), or due now
    }
    lock.unlock();
    {
      // Shared: a session beat (exclusive) sends what is queued itself.
      auto guard = SessionGuard();
      std::vector<uint64_t> batch;
      {
        std::lock_guard<std::mutex> l(close_mu_);
        batch.swap(closes_);
      }
      SendClosesLocked(std::move(batch));
    }
    lock.lock();
  }
}

// A failed flush publishes no size (bytes up to it are not all written),
// but the blocks that were written are still recorded at their versions.
Status Filesystem::FlushAndCommit(const std::shared_ptr<Inode>& inode, OpenFile* file) {
  Status st = data_->Flush(inode, file);
  Status commit = CommitWrites(inode, st.ok());
  return st.ok() ? commit : st;
}

}  // namespace ringfs::fuse

namespace ringfs::fuse {

// Cuts the file on the block nodes (the block the new size falls in moves
// to a new version on the replicas that hold the current one), then records
// the size, a new block epoch and that version. The blocks past the end are
// holes from then on, whatever a node that missed the cut still holds. A
// concurrent change of the cut block makes the service refuse (ESTALE): cut
// again on what is current.
Status Filesystem::Truncate(const std::shared_ptr<Inode>& inode, uint64_t size, wire::Attr* attr) {
  RETURN_IF_ERROR(FlushAndCommit(inode));
  // One truncation of a file at a time, cluster-wide: two mounts cutting
  // from the same committed version to different ones would leave no
  // replica at a version either could commit (common/lock_table.h). Released by
  // the SetAttr that records the cut, or below when there is none.
  static std::atomic<uint64_t> next_owner{1};
  wire::LockSpec lk;
  lk.kind = wire::LockKind::kTruncate;
  lk.type = wire::LockType::kWrite;
  lk.owner = next_owner++;
  lk.end = wire::kLockToEnd;
  lk.wait = true;
  Status st;
  while (true) {
    const auto asked = std::chrono::steady_clock::now();
    st = LockCall(wire::Op::kLock, inode->ino, lk);
    if (st.code() != ETIMEDOUT || stop_) break;
    PauseIfQuick(asked);
  }
  if (!st.ok()) return st;
  wire::LockSpec unlock = lk;
  unlock.type = wire::LockType::kUnlock;
  unlock.wait = false;
  for (int attempt = 0; attempt < 4; attempt++) {
    data_->BeginTruncate(inode);
    DataPath::Truncation t;
    st = data_->Cut(inode, size, &t);
    wire::MetaReply r;
    if (st.ok()) {
      wire::MetaRequest m;
      m.ino = inode->ino;
      m.mask = wire::kSetSize;
      m.size = size;
      m.epoch = t.epoch;
      m.cookie = t.cut_at;
      if (t.has_cut) m.blocks.push_back(t.cut);
      // The block daemons have cut already: the new size must not be lost
      // to a power loss of the metadata service once this returns.
      uint64_t had;
      {
        std::lock_guard<std::mutex> lock(inode->mu);
        had = std::max<uint64_t>(inode->attr.size, inode->Size());
      }
      m.sync = t.has_cut || size < had;
      m.lock = unlock;  // applied once the new size is recorded
      st = MetaCall(wire::Op::kSetAttr, m, &r);
    }
    if (!st.ok()) {
      data_->FinishTruncate(inode, nullptr);
      if (st.code() == ESTALE) continue;
      (void)LockCall(wire::Op::kLock, inode->ino, unlock);
      LOG_WARN("truncate of %lu to %lu: %s", (unsigned long)inode->ino, (unsigned long)size, st.ToString().c_str());
      return st;
    }
    t.epoch = r.attr.block_epoch;
    data_->FinishTruncate(inode, &t);
    std::lock_guard<std::mutex> lock(inode->mu);
    AdoptAttrLocked(*inode, r.attr, r.prev_data_version);
    *attr = r.attr;
    return Status::OK();
  }
  (void)LockCall(wire::Op::kLock, inode->ino, unlock);
  LOG_WARN("truncate of %lu to %lu: %s", (unsigned long)inode->ino, (unsigned long)size, st.ToString().c_str());
  return st;
}

}  // namespace ringfs::fuse
