#include "fuse/dir_cache.h"

#include <algorithm>

#include <zmq.hpp>

#include "common/codec.h"
#include "common/log.h"
#include "common/rpc.h"

namespace ringfs::fuse {

using Clock = std::chrono::steady_clock;

DirCache::~DirCache() { Stop(); }

void DirCache::Start(const std::string& events_addr, uint64_t session, Invalidate inval,
                     InvalidateInode inval_inode) {
  if (!opts_.enabled || events_addr.empty()) return;
  session_ = session;
  inval_ = std::move(inval);
  inval_inode_ = std::move(inval_inode);
  addr_ = events_addr;
  thread_ = std::thread([this] { Loop(); });
}

void DirCache::SetAddress(const std::string& events_addr) {
  std::lock_guard<std::mutex> lock(mu_);
  addr_ = events_addr;
}

void DirCache::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool DirCache::LiveLocked(Clock::time_point now) const {
  return incarnation_ != 0 && now - heard_ < std::chrono::milliseconds(kSilenceMs);
}

void DirCache::DropAllLocked() {
  for (auto& [ino, d] : dirs_) {
    d.complete = false;
    d.names.clear();
  }
  gen_++;
  drops_++;
  // Whatever the kernel was told it may keep for long can no longer be
  // kept up to date: it goes, now.
  for (auto& [key, ino] : named_) lost_.names.push_back({key.first, key.second});
  lost_.inodes.insert(lost_.inodes.end(), attrs_.begin(), attrs_.end());
  named_.clear();
  names_of_.clear();
  attrs_.clear();
}

void DirCache::Run(const Invals& v) {
  if (inval_)
    for (const auto& c : v.names) inval_(c.dir, c.name);
  if (inval_inode_)
    for (uint64_t ino : v.inodes) inval_inode_(ino);
}

void DirCache::Loop() {
  std::unique_ptr<zmq::socket_t> sub_ptr;
  std::string connected;
  bool silent = true;
  // Invalidations are sent twice: a reply the kernel was still taking in
  // when the first went (a lookup answered just before the event arrived)
  // is caught by the second.
  Invals redo;
  Clock::time_point redo_at{};
  auto run_twice = [&](const Invals& v) {
    if (v.empty()) return;
    Run(v);
    if (redo.empty()) redo_at = Clock::now() + std::chrono::milliseconds(kRedoMs);
    redo.names.insert(redo.names.end(), v.names.begin(), v.names.end());
    redo.inodes.insert(redo.inodes.end(), v.inodes.begin(), v.inodes.end());
  };
  auto flush_lost = [&] {
    Invals lost;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::swap(lost, lost_);
    }
    run_twice(lost);
  };
  while (!stop_) {
    flush_lost();
    if (!redo.empty() && Clock::now() >= redo_at) {
      Run(redo);
      redo = Invals{};
    }
    std::string want;
    {
      std::lock_guard<std::mutex> lock(mu_);
      want = addr_;
    }
    if (want != connected || !sub_ptr) {
      sub_ptr.reset();
      connected = want;
      try {
        sub_ptr = std::make_unique<zmq::socket_t>(rpc::Context(), zmq::socket_type::sub);
        sub_ptr->set(zmq::sockopt::rcvhwm, 100000);
        sub_ptr->set(zmq::sockopt::linger, 0);
        sub_ptr->set(zmq::sockopt::maxmsgsize, int64_t{16} << 20);
        sub_ptr->set(zmq::sockopt::subscribe, "");
        sub_ptr->connect(want);
      } catch (const zmq::error_t& e) {
        LOG_WARN("namespace events from %s: %s; every lookup asks the service", want.c_str(), e.what());
        sub_ptr.reset();
        {
          std::lock_guard<std::mutex> lock(mu_);
          DropAllLocked();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
    }
    zmq::socket_t& sub = *sub_ptr;
    zmq::pollitem_t item = {sub.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(redo.empty() ? 100 : kRedoMs));
    } catch (const zmq::error_t&) {
      continue;
    }
    const auto now = Clock::now();
    if (!(item.revents & ZMQ_POLLIN)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!silent && !LiveLocked(now)) {
        silent = true;
        DropAllLocked();  // nothing heard: changes may be going unheard
      }
      continue;
    }
    zmq::message_t msg;
    if (!sub.recv(msg, zmq::recv_flags::dontwait)) continue;
    wire::DirEvents ev;
    if (!codec::Decode(std::string_view(msg.data<char>(), msg.size()), ev).ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      DropAllLocked();  // an event we cannot read is an event missed
      continue;
    }
    Invals foreign;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool tick = ev.tick();
      const bool in_order = ev.incarnation == incarnation_ && ev.seq == (tick ? seq_ : seq_ + 1);
      if (!in_order) {
        DropAllLocked();
        incarnation_ = ev.incarnation;
      }
      seq_ = ev.seq;
      heard_ = now;
      silent = false;
      if (!tick && ev.session != session_) {
        auto note = [&](uint64_t ino) { recent_.emplace_back(ev.seq, ino); };
        for (const auto& c : ev.changes) {
          auto it = dirs_.find(c.dir);
          if (it != dirs_.end()) {
            it->second.complete = false;
            it->second.names.clear();
          }
          note(c.dir);
        }
        for (uint64_t ino : ev.inodes) note(ino);
        while (recent_.size() > kRecent) {
          forgotten_ = recent_.front().first;
          recent_.pop_front();
        }
        foreign.names = std::move(ev.changes);
        foreign.inodes = std::move(ev.inodes);
      }
    }
    heard_cv_.notify_all();
    // The kernel may hold this name (or its absence), or these attributes:
    // tell it now, and once more in a moment.
    run_twice(foreign);
  }
}

bool DirCache::Trust(uint64_t ino, uint64_t dir, const std::string& name, uint64_t incarnation,
                     uint64_t seq) {
  if (!opts_.enabled || incarnation == 0) return false;
  std::unique_lock<std::mutex> lock(mu_);
  if (incarnation != incarnation_) return false;
  // A reply usually arrives just before the event published ahead of it.
  if (seq_ < seq)
    heard_cv_.wait_for(lock, std::chrono::milliseconds(kCatchUpMs),
                       [&] { return seq_ >= seq || incarnation_ != incarnation; });
  if (incarnation != incarnation_ || seq_ < seq || forgotten_ > seq || !LiveLocked(Clock::now()))
    return false;
  for (auto it = recent_.rbegin(); it != recent_.rend() && it->first > seq; ++it)
    if (it->second == ino || (dir != 0 && it->second == dir)) return false;
  attrs_.insert(ino);
  if (dir != 0) {
    auto key = std::make_pair(dir, name);
    auto it = named_.find(key);
    if (it == named_.end() || it->second != ino) {  // new, or the name now leads elsewhere
      TakeNameLocked(key);
      named_.emplace(key, ino);
      names_of_[ino].push_back(std::move(key));
    }
  }
  granted_++;
  return true;
}

void DirCache::Untrack(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  attrs_.erase(ino);
  auto it = names_of_.find(ino);
  if (it == names_of_.end()) return;
  for (const auto& key : it->second) {
    auto n = named_.find(key);
    if (n != named_.end() && n->second == ino) named_.erase(n);
  }
  names_of_.erase(it);
}

uint64_t DirCache::TakeNameLocked(const std::pair<uint64_t, std::string>& key) {
  auto n = named_.find(key);
  if (n == named_.end()) return 0;
  const uint64_t ino = n->second;
  auto& names = names_of_[ino];
  names.erase(std::remove(names.begin(), names.end(), key), names.end());
  named_.erase(n);
  return ino;
}

void DirCache::Unnamed(uint64_t dir, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  TakeNameLocked({dir, name});
}

void DirCache::Renamed(uint64_t dir, const std::string& name, uint64_t newdir, const std::string& newname,
                       bool exchange) {
  std::lock_guard<std::mutex> lock(mu_);
  // The kernel moved its entries, timeouts and all: they are ours to
  // invalidate under their new names. What a replaced name led to is gone.
  auto put = [&](const std::pair<uint64_t, std::string>& key, uint64_t ino) {
    if (ino == 0) return;
    named_[key] = ino;
    names_of_[ino].push_back(key);
  };
  const auto from = std::make_pair(dir, name), to = std::make_pair(newdir, newname);
  const uint64_t moved = TakeNameLocked(from), replaced = TakeNameLocked(to);
  put(to, moved);
  if (exchange) put(from, replaced);
}

DirCache::Mark DirCache::Begin(uint64_t) {
  std::lock_guard<std::mutex> lock(mu_);
  return Mark{incarnation_, seq_, gen_, local_};
}

void DirCache::Complete(uint64_t dir, std::unordered_set<std::string> names, uint64_t incarnation,
                        uint64_t seq, const Mark& m) {
  if (!opts_.enabled || names.size() > opts_.max_names) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!LiveLocked(Clock::now()) || gen_ != m.gen || incarnation == 0 || incarnation != incarnation_) return;
  // Another client's change to it since `seq`, or one too old to tell.
  if (forgotten_ > seq) return;
  for (auto it = recent_.rbegin(); it != recent_.rend() && it->first > seq; ++it)
    if (it->second == dir) return;
  if (dirs_.size() >= opts_.max_dirs && !dirs_.count(dir)) {
    // Full: forget the directories not complete first, then everything.
    for (auto it = dirs_.begin(); it != dirs_.end();) it = it->second.complete ? std::next(it) : dirs_.erase(it);
    if (dirs_.size() >= opts_.max_dirs) dirs_.clear();
  }
  Dir& d = dirs_[dir];
  if (d.local > m.local) return;  // this mount changed it meanwhile: the listing may predate that
  d.complete = true;
  d.gen = gen_;
  d.names = std::move(names);
}

void DirCache::Created(uint64_t dir, const Mark& m) { Complete(dir, {}, m.incarnation, m.seq, m); }

void DirCache::Listed(uint64_t dir, const std::vector<std::string>& names, uint64_t incarnation,
                      uint64_t seq, const Mark& m) {
  Complete(dir, std::unordered_set<std::string>(names.begin(), names.end()), incarnation, seq, m);
}

void DirCache::Added(uint64_t dir, const std::string& name) {
  if (!opts_.enabled) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = dirs_.find(dir);
  local_++;
  if (it == dirs_.end()) {
    if (dirs_.size() >= opts_.max_dirs) return;
    it = dirs_.emplace(dir, Dir{}).first;
  }
  it->second.local = local_;
  if (!it->second.complete) return;
  it->second.names.insert(name);
  if (it->second.names.size() > opts_.max_names) {
    it->second.complete = false;
    it->second.names.clear();
  }
}

void DirCache::Removed(uint64_t dir, const std::string& name) {
  if (!opts_.enabled) return;
  std::lock_guard<std::mutex> lock(mu_);
  local_++;
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) {
    if (dirs_.size() >= opts_.max_dirs) return;
    it = dirs_.emplace(dir, Dir{}).first;
  }
  it->second.local = local_;
  it->second.names.erase(name);
}

void DirCache::Forget(uint64_t dir) {
  std::lock_guard<std::mutex> lock(mu_);
  local_++;
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) return;
  it->second.complete = false;
  it->second.names.clear();
  it->second.local = local_;
}

bool DirCache::KnownAbsent(uint64_t dir, const std::string& name) {
  if (!opts_.enabled) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = dirs_.find(dir);
  if (it == dirs_.end() || !it->second.complete || it->second.gen != gen_) return false;
  if (!LiveLocked(Clock::now())) return false;
  if (it->second.names.count(name)) return false;
  answered_++;
  return true;
}

}  // namespace ringfs::fuse
