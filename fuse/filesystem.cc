#include "fuse/filesystem.h"

#include <chrono>
#include <random>

#include "common/log.h"

namespace ringfs::fuse {

Filesystem::Filesystem(Options opts) : opts_(std::move(opts)) {}

Filesystem::~Filesystem() { Stop(); }

void Filesystem::Start() {
  meta_ = std::make_unique<meta::Client>(opts_.meta);
  std::random_device rd;
  session_ = (uint64_t{rd()} << 32 | rd()) | 1;  // never 0
  auto map = meta_->GetMap();
  if (map.ok()) {
    blocks_.SetMap(*map);
  } else {
    LOG_ERROR("cannot read the cluster map from %s: %s", opts_.meta.c_str(),
              map.status().ToString().c_str());
  }
  // A replica whose copy failed its checksum: stop reading it here and have
  // the metadata service mark it stale, which gets it repaired.
  blocks_.OnBadCopy([this](uint64_t ino, uint64_t index, uint32_t node) {
    if (auto inode = Find(ino)) {
      std::lock_guard<std::mutex> lock(inode->mu);
      inode->stale.insert({index, node});
    }
    Status st = ReportStale(ino, {{index, node}});
    LOG_WARN("ino %lu block %lu on node %u failed its checksum; reported: %s", (unsigned long)ino,
             (unsigned long)index, node, st.ToString().c_str());
  });
  data_ = std::make_unique<DataPath>(blocks_, opts_);
  data_->OnMissed([this](uint64_t ino, const std::vector<wire::StaleReplica>& missed) {
    return ReportStale(ino, missed);
  });
  background_ = std::make_unique<ThreadPool>(1);
  map_thread_ = std::thread([this] { RefreshMapLoop(); });
}

void Filesystem::Stop() {
  if (stop_.exchange(true)) return;
  stop_cv_.notify_all();
  if (map_thread_.joinable()) map_thread_.join();
  background_.reset();
  data_.reset();
}

void Filesystem::SessionBeat() {
  wire::MetaRequest req;
  req.session = session_;
  // Exclusive: no open or close is between the service and our table now,
  // so the list is exactly what the service should count for us.
  std::unique_lock<std::shared_mutex> guard(session_mu_);
  std::vector<std::shared_ptr<Inode>> inodes;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    for (const auto& [ino, inode] : table_) inodes.push_back(inode);
  }
  for (const auto& inode : inodes) {
    std::lock_guard<std::mutex> lock(inode->mu);
    for (int i = 0; i < inode->open_count; i++) req.open_inos.push_back(inode->ino);
  }
  Status st = meta_->Call(wire::Op::kSessionBeat, req, nullptr);
  if (!st.ok()) LOG_WARN("session beat: %s", st.ToString().c_str());
}

void Filesystem::RefreshMapLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  auto next_beat = std::chrono::steady_clock::now();
  while (!stop_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(opts_.map_refresh_ms));
    if (stop_) break;
    lock.unlock();
    if (std::chrono::steady_clock::now() >= next_beat) {
      SessionBeat();
      next_beat = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.session_beat_ms);
    }
    wire::MetaReply rep;
    wire::MetaRequest req;
    Status st = meta_->Call(wire::Op::kGetMap, req, &rep);
    if (st.ok() && (rep.map.epoch != blocks_.epoch() || blocks_.map().nodes.size() != rep.map.nodes.size())) {
      blocks_.SetMap(rep.map);
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
  if (req.opens) req.session = session_;
  Status st = meta_->Call(op, req, rep);
  if (st.ok() && rep) {
    for (const wire::Attr& dir : rep->dirs) UpdateAttr(dir);
  }
  return st;
}

std::optional<std::pair<wire::Attr, double>> Filesystem::FreshDirAttr(uint64_t ino) {
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
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_atim = {a.atime.sec, a.atime.nsec};
  st->st_mtim = {a.mtime.sec, a.mtime.nsec};
  st->st_ctim = {a.ctime.sec, a.ctime.nsec};
}

void Filesystem::Remember(const wire::Attr& attr, fuse_entry_param* e) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(table_mu_);
    auto& slot = table_[attr.ino];
    if (!slot) slot = std::make_shared<Inode>(attr.ino);
    slot->nlookup++;
    inode = slot;
  }
  wire::Attr shown = attr;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->open_count == 0 || !inode->have_attr) {
      inode->attr = attr;
      inode->have_attr = true;
    }
    shown.size = inode->Size();
  }
  *e = {};
  e->ino = attr.ino;
  e->generation = 1;
  FillStat(shown, &e->attr);
  e->attr_timeout = AttrTimeout(attr);
  e->entry_timeout = opts_.entry_timeout;
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
  if (S_ISDIR(attr.mode)) {
    inode->fresh_until = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(opts_.dir_attr_timeout));
  }
}

void Filesystem::NoteUnlinked(const wire::Attr& victim) {
  if (victim.ino == 0) return;
  auto inode = Find(victim.ino);
  if (!inode) return;
  std::lock_guard<std::mutex> lock(inode->mu);
  inode->attr.nlink = victim.nlink;
  inode->attr.ctime = victim.ctime;
  if (victim.nlink == 0) inode->orphan = true;
}

void Filesystem::AdoptAttrLocked(Inode& inode, const wire::Attr& attr) {
  // Our own change moves the version by at most one; any other jump means
  // another client wrote too, so cached data can no longer be trusted.
  const uint64_t v = attr.data_version;
  if (!(inode.cache_valid && (v == inode.cache_version || v == inode.cache_version + 1))) {
    data_->DropCache(inode.ino);
  }
  inode.cache_version = v;
  inode.cache_valid = true;
  inode.attr = attr;
  inode.have_attr = true;
}

Status Filesystem::CommitWrites(const std::shared_ptr<Inode>& inode) {
  wire::MetaRequest req;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!inode->wrote && inode->stale_unreported.empty()) return Status::OK();
    req.ino = inode->ino;
    req.size = inode->write_end;
    req.stale.swap(inode->stale_unreported);
  }
  wire::MetaReply rep;
  Status st = meta_->Call(wire::Op::kCommitWrite, req, &rep);
  std::lock_guard<std::mutex> lock(inode->mu);
  if (!st.ok()) {
    ReturnUnreportedLocked(*inode, req.stale);
    return st;
  }
  AdoptAttrLocked(*inode, rep.attr);
  inode->MarkCommitted(req.size);
  return Status::OK();
}

void Filesystem::NoteClosed(uint64_t ino) {
  wire::MetaRequest req;
  req.ino = ino;
  req.session = session_;
  Status st = meta_->Call(wire::Op::kClose, req, nullptr);
  if (!st.ok()) LOG_WARN("close of ino %lu not recorded: %s", (unsigned long)ino, st.ToString().c_str());
}

Status Filesystem::ReportStale(uint64_t ino, const std::vector<wire::StaleReplica>& stale) {
  wire::MetaRequest req;
  req.ino = ino;
  req.stale = stale;
  return meta_->Call(wire::Op::kReportStale, req, nullptr);
}

void Filesystem::ReturnUnreportedLocked(Inode& inode, const std::vector<wire::StaleReplica>& stale) {
  inode.stale_unreported.insert(inode.stale_unreported.end(), stale.begin(), stale.end());
}

Status Filesystem::FlushAndCommit(const std::shared_ptr<Inode>& inode) {
  Status st = data_->Flush(inode);
  Status commit = CommitWrites(inode);
  return st.ok() ? commit : st;
}

}  // namespace ringfs::fuse

namespace ringfs::fuse {

Status Filesystem::Truncate(const std::shared_ptr<Inode>& inode, uint64_t size, wire::Attr* attr) {
  RETURN_IF_ERROR(FlushAndCommit(inode));
  RETURN_IF_ERROR(data_->Truncate(inode, size));
  wire::MetaRequest m;
  m.ino = inode->ino;
  m.mask = wire::kSetSize;
  m.size = size;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    m.stale.swap(inode->stale_unreported);  // nodes the truncation missed
  }
  wire::MetaReply r;
  Status st = meta_->Call(wire::Op::kSetAttr, m, &r);
  std::lock_guard<std::mutex> lock(inode->mu);
  if (!st.ok()) {
    ReturnUnreportedLocked(*inode, m.stale);
    return st;
  }
  AdoptAttrLocked(*inode, r.attr);
  *attr = r.attr;
  return Status::OK();
}

}  // namespace ringfs::fuse
