#include "fuse/dir_cache.h"

#include <zmq.hpp>

#include "common/codec.h"
#include "common/log.h"
#include "common/rpc.h"

namespace ringfs::fuse {

using Clock = std::chrono::steady_clock;

DirCache::~DirCache() { Stop(); }

void DirCache::Start(const std::string& events_addr, uint64_t session, Invalidate inval) {
  if (!opts_.enabled || events_addr.empty()) return;
  session_ = session;
  inval_ = std::move(inval);
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
}

void DirCache::Loop() {
  std::unique_ptr<zmq::socket_t> sub_ptr;
  std::string connected;
  bool silent = true;
  while (!stop_) {
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
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
    }
    zmq::socket_t& sub = *sub_ptr;
    zmq::pollitem_t item = {sub.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
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
    std::vector<wire::DirChange> foreign;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool tick = ev.changes.empty();
      const bool in_order = ev.incarnation == incarnation_ && ev.seq == (tick ? seq_ : seq_ + 1);
      if (!in_order) {
        DropAllLocked();
        incarnation_ = ev.incarnation;
      }
      seq_ = ev.seq;
      heard_ = now;
      silent = false;
      if (!tick && ev.session != session_) {
        for (const auto& c : ev.changes) {
          auto it = dirs_.find(c.dir);
          if (it != dirs_.end()) {
            it->second.complete = false;
            it->second.names.clear();
          }
          recent_.emplace_back(ev.seq, c.dir);
        }
        while (recent_.size() > kRecent) {
          forgotten_ = recent_.front().first;
          recent_.pop_front();
        }
        foreign = std::move(ev.changes);
      }
    }
    // The kernel may hold this name (or its absence) for the entry time:
    // tell it now.
    if (inval_)
      for (const auto& c : foreign) inval_(c.dir, c.name);
  }
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
