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
  // Deleting blocks cannot be undone: the unlinks that queued them must be
  // on disk first, or a power loss of this machine could bring back a file
  // whose blocks are gone. One flush covers the whole batch.
  Status durable = ns_->env().journal().Sync();
  if (!durable.ok()) return 0;
  const wire::ClusterMap map = nodes_->Map();
  // Forget channels to addresses no node has any more.
  for (auto it = channels_.begin(); it != channels_.end();) {
    bool used = false;
    for (const auto& n : map.nodes) used = used || n.addr == it->first;
    it = used ? std::next(it) : channels_.erase(it);
  }
  // One request per node for the whole batch: what each node has not yet
  // acknowledged of it.
  std::vector<std::pair<uint32_t, rpc::Pending>> calls;
  std::map<uint32_t, std::vector<uint64_t>> asked;
  for (const auto& n : map.nodes) {
    if (!wire::HoldsData(n.state) || !n.alive) continue;
    wire::BlockRequest req;
    for (uint64_t ino : *pending)
      if (!acked_[ino].count(n.id)) req.inos.push_back(ino);
    if (req.inos.empty()) continue;
    req.ino = req.inos.back();
    req.inos.pop_back();
    asked[n.id] = req.inos;
    asked[n.id].push_back(req.ino);
    calls.emplace_back(n.id, ChannelFor(n.addr).Start(wire::Op::kBlockDelete, codec::Encode(req), nullptr,
                                                      opts_.rpc_timeout_ms));
  }
  // A big file's delete takes a while; one cut short goes on on the node
  // and finishes quickly when asked again.
  const int timeout_ms = opts_.rpc_timeout_ms + 20 * static_cast<int>(pending->size());
  for (auto& [id, call] : calls) {
    auto r = call.Wait(timeout_ms);
    if (r.ok() || r.status().code() == ENOENT) {
      for (uint64_t ino : asked[id]) acked_[ino].insert(id);
    } else {
      LOG_DEBUG("gc: node %u, %zu inodes: %s", id, asked[id].size(), r.status().ToString().c_str());
    }
  }
  std::vector<uint64_t> done;
  for (uint64_t ino : *pending) {
    const std::set<uint32_t>& acks = acked_[ino];
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
