#include "meta/gc.h"

#include <vector>

#include "common/log.h"

namespace ringfs::meta {

BlockReclaimer::BlockReclaimer(Namespace* ns, NodeRegistry* nodes, Options opts)
    : ns_(ns), nodes_(nodes), opts_(opts) {}

BlockReclaimer::~BlockReclaimer() { Stop(); }

void BlockReclaimer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void BlockReclaimer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BlockReclaimer::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void BlockReclaimer::Loop() {
  size_t finished = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // A full batch finished means more may wait: go again at once.
      if (finished < opts_.batch && !pass_.active) {
        cv_.wait_for(lock, std::chrono::milliseconds(opts_.interval_ms),
                     [&] { return stop_ || kicked_; });
      }
      if (stop_) return;
      kicked_ = false;
    }
    finished = RunOnce() + RepairOnce() + MoveOnce();
  }
}

rpc::Channel& BlockReclaimer::ChannelFor(const std::string& addr) {
  auto& ch = channels_[addr];
  if (!ch) ch = std::make_unique<rpc::Channel>(addr);
  return *ch;
}

size_t BlockReclaimer::RunOnce() {
  auto pending = ns_->PendingGc(opts_.batch);
  if (!pending.ok()) {
    LOG_WARN("gc: cannot read pending entries: %s", pending.status().ToString().c_str());
    return 0;
  }
  if (pending->empty()) {
    acked_.clear();
    return 0;
  }
  const wire::ClusterMap map = nodes_->Map();
  // Forget channels to addresses no node has any more.
  for (auto it = channels_.begin(); it != channels_.end();) {
    bool used = false;
    for (const auto& n : map.nodes) used = used || n.addr == it->first;
    it = used ? std::next(it) : channels_.erase(it);
  }
  std::set<uint32_t> unreachable;  // timed out this pass: not asked again until the next
  std::vector<uint64_t> done;
  for (uint64_t ino : *pending) {
    std::set<uint32_t>& acks = acked_[ino];
    wire::BlockRequest req;
    req.ino = ino;
    const std::string body = codec::Encode(req);
    std::vector<std::pair<uint32_t, rpc::Pending>> calls;
    for (const auto& n : map.nodes) {
      if (!wire::HoldsData(n.state) || acks.count(n.id) || !n.alive || unreachable.count(n.id)) continue;
      calls.emplace_back(n.id, ChannelFor(n.addr).Start(wire::Op::kBlockDelete, body, nullptr,
                                                        opts_.rpc_timeout_ms));
    }
    for (auto& [id, call] : calls) {
      auto r = call.Wait(opts_.rpc_timeout_ms);
      if (r.ok() || r.status().code() == ENOENT) {
        acks.insert(id);
      } else {
        if (r.status().code() == ETIMEDOUT || r.status().code() == EHOSTUNREACH)
          unreachable.insert(id);
        LOG_DEBUG("gc: node %u ino %lu: %s", id, static_cast<unsigned long>(ino),
                  r.status().ToString().c_str());
      }
    }
    bool all = true;
    for (const auto& n : map.nodes) all = all && (!wire::HoldsData(n.state) || acks.count(n.id) > 0);
    if (all) done.push_back(ino);
  }
  Status st = ns_->FinishGc(done);
  if (!st.ok()) {
    LOG_WARN("gc: cannot drop finished entries: %s", st.ToString().c_str());
    return 0;
  }
  for (uint64_t ino : done) acked_.erase(ino);
  return done.size();
}

}  // namespace ringfs::meta
