// Data movement: the mover walks every block record and brings each block
// to where the ring of `in` nodes places it. A placed node without the
// committed version gets it (copied from a holder with a compare-and-set
// replace, as repair does); only once every placed node holds it are the
// copies off the placement (on draining nodes, or left behind by a ring
// change) dropped, so no block ever has fewer copies than before. Holders
// that are out are forgotten: their copies do not count, and the block is
// copied again from the others. Passes run when the map's membership or
// liveness changes, and every idle_pass_ms otherwise; copies are throttled
// to move_rate.
#include <algorithm>
#include <map>

#include "common/log.h"
#include "meta/gc.h"

namespace ringfs::meta {

namespace {

using SteadyClock = std::chrono::steady_clock;

// What a pass depends on: who is where and who is alive.
std::string Signature(const wire::ClusterMap& map) {
  std::string s;
  for (const auto& n : map.nodes) {
    s += std::to_string(n.id) + ":" + std::to_string(static_cast<int>(n.state)) + ":" + n.zone +
         ":" + std::to_string(n.weight) + ":" + std::to_string(n.token) + ":" +
         (n.alive ? "1" : "0") + ";";
  }
  return s;
}

bool Contains(const std::vector<uint32_t>& v, uint32_t id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

// Holders whose copies count: known nodes that are not out.
std::vector<uint32_t> ValidHolders(const std::vector<uint32_t>& holders,
                                   const std::map<uint32_t, const wire::NodeInfo*>& nodes) {
  std::vector<uint32_t> out;
  for (uint32_t id : holders) {
    auto it = nodes.find(id);
    if (it != nodes.end() && it->second->state != wire::NodeState::kOut && !Contains(out, id))
      out.push_back(id);
  }
  return out;
}

std::map<uint32_t, const wire::NodeInfo*> Index(const wire::ClusterMap& map) {
  std::map<uint32_t, const wire::NodeInfo*> nodes;
  for (const auto& n : map.nodes) nodes[n.id] = &n;
  return nodes;
}

}  // namespace

wire::Health BlockReclaimer::health() const {
  std::lock_guard<std::mutex> lock(health_mu_);
  return health_;
}

// A token bucket that may go into debt: a copy starts when the balance is
// positive and is paid for in full, so one copy bigger than a slice's worth
// still gets through and the average stays at the rate.
bool BlockReclaimer::Throttle(uint64_t bytes, SteadyClock::time_point deadline) {
  if (opts_.move_rate == 0) return true;
  const double rate = static_cast<double>(opts_.move_rate);
  auto now = SteadyClock::now();
  if (refill_ == SteadyClock::time_point{}) tokens_ = rate / 4;
  else tokens_ = std::min(rate, tokens_ + rate * std::chrono::duration<double>(now - refill_).count());
  refill_ = now;
  if (tokens_ <= 0) {
    const auto wait = std::chrono::duration<double>((1 - tokens_) / rate);
    if (now + std::chrono::duration_cast<SteadyClock::duration>(wait) > deadline) return false;
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, wait, [&] { return stop_; })) return false;
    now = SteadyClock::now();
    tokens_ += rate * std::chrono::duration<double>(now - refill_).count();
    refill_ = now;
  }
  tokens_ -= static_cast<double>(std::max<uint64_t>(bytes, 64 << 10));
  return true;
}

void BlockReclaimer::NoteCopied(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(health_mu_);
  health_.moved_bytes += bytes;
  if (pass_.active) health_.move_done_bytes += bytes;
}

Status BlockReclaimer::DropCopy(const wire::NodeInfo& node, uint64_t ino, uint64_t index,
                                const wire::BlockVersion& version, bool* dropped) {
  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.base = version;
  auto r = ChannelFor(node.addr).Call(wire::Op::kBlockDrop, codec::Encode(req), nullptr,
                                      opts_.rpc_timeout_ms);
  if (!r.ok()) return r.status();
  wire::BlockReply rep;
  RETURN_IF_ERROR(r->DecodeBody(rep));
  *dropped = !rep.refused;
  return Status::OK();
}

BlockReclaimer::MoveResult BlockReclaimer::MoveBlock(const Namespace::BlockItem& item,
                                                     const wire::ClusterMap& map,
                                                     const NodeIndex& nodes,
                                                     const ring::Ring& ring,
                                                     SteadyClock::time_point deadline) {
  auto alive = [&](uint32_t id) {
    auto it = nodes.find(id);
    return it != nodes.end() && it->second->alive;
  };
  const wire::BlockVersion& version = item.record.version;
  bool changed = false;
  std::vector<uint32_t> held = ValidHolders(item.record.holders, nodes);
  if (held.size() != item.record.holders.size()) {
    std::vector<uint32_t> gone;
    for (uint32_t id : item.record.holders)
      if (!Contains(held, id)) gone.push_back(id);
    if (ns_->DropHolders(item.ino, item.index, version, gone).ok()) changed = true;
  }
  const auto placed = ring.Replicas(ring::Ring::BlockKey(item.ino, item.index), map.replicas);
  std::vector<const wire::NodeInfo*> sources;
  for (uint32_t id : held)
    if (alive(id)) sources.push_back(nodes.at(id));
  // The copies to make, paid for up front: out of time, the block is left
  // whole for the next slice (and not counted yet).
  size_t copies = 0;
  for (uint32_t id : placed) copies += !Contains(held, id) && alive(id) && !sources.empty();
  if (copies && !Throttle(copies * item.bytes, deadline)) return MoveResult::kOutOfTime;
  pass_.blocks++;
  if (held.size() < placed.size()) pass_.under++;
  bool off = false;
  for (uint32_t id : held) off = off || !Contains(placed, id);
  if (off) pass_.misplaced++;

  for (uint32_t id : placed) {
    if (Contains(held, id) || !alive(id) || sources.empty()) continue;
    Status st = RepairBlock(item.ino, item.index, version, *nodes.at(id), sources);
    if (st.ok()) st = ns_->AddHolder(item.ino, item.index, version, id);
    if (!st.ok()) {
      LOG_DEBUG("move: ino %lu block %lu to node %u: %s", (unsigned long)item.ino,
                (unsigned long)item.index, id, st.ToString().c_str());
      continue;
    }
    NoteCopied(item.bytes);
    held.push_back(id);
    changed = true;
  }
  // Copies off the placement go only once the placement is complete.
  bool complete = true;
  for (uint32_t id : placed) complete = complete && Contains(held, id);
  for (uint32_t id : std::vector<uint32_t>(held)) {
    if (Contains(placed, id)) continue;
    if (complete && alive(id)) {
      bool dropped = false;
      Status st = DropCopy(*nodes.at(id), item.ino, item.index, version, &dropped);
      if (st.ok() && dropped) st = ns_->DropHolders(item.ino, item.index, version, {id});
      if (st.ok() && dropped) {
        std::erase(held, id);
        changed = true;
        continue;
      }
    }
    pass_.referenced.insert(id);
  }
  return changed ? MoveResult::kChanged : MoveResult::kDone;
}

size_t BlockReclaimer::MoveOnce() {
  nodes_->ApplyDownOut();
  // Copies are dropped on the strength of the map and the block records:
  // both must be on disk before anything acts on them (one flush a slice).
  if (!ns_->env().journal().Sync().ok()) return 0;
  const wire::ClusterMap map = nodes_->Map();
  const auto now = SteadyClock::now();
  if (!pass_.active) {
    const std::string sig = Signature(map);
    const bool due = now - pass_.ended >= std::chrono::milliseconds(opts_.idle_pass_ms);
    if (sig == pass_.signature && !due) return 0;
    Pass next;
    next.active = true;
    next.signature = sig;
    for (const auto& n : map.nodes)
      if (n.state == wire::NodeState::kDraining) next.draining.insert(n.id);
    pass_ = std::move(next);
    // The copies this pass has to make, for progress and time left.
    auto plan = Plan(map, map);
    uint64_t total = 0;
    if (plan.ok())
      for (const auto& m : *plan) total += m.bytes_in;
    std::lock_guard<std::mutex> lock(health_mu_);
    health_.move_total_bytes = total;
    health_.move_done_bytes = 0;
    health_.moving = total > 0;
  }
  const ring::Ring ring = ring::Ring::FromMap(map);
  const NodeIndex nodes = Index(map);  // once per slice, not per block
  const auto deadline = now + std::chrono::milliseconds(opts_.slice_ms);
  size_t changed = 0;
  while (SteadyClock::now() < deadline) {
    auto items = ns_->ScanBlocks(opts_.scan_batch, pass_.from.first, pass_.from.second);
    if (!items.ok()) {
      LOG_WARN("move: cannot read block records: %s", items.status().ToString().c_str());
      return changed;
    }
    size_t done = 0;
    for (const auto& item : *items) {
      if (SteadyClock::now() >= deadline) break;
      const MoveResult r = MoveBlock(item, map, nodes, ring, deadline);
      if (r == MoveResult::kOutOfTime) break;
      changed += r == MoveResult::kChanged;
      pass_.from = {item.ino, item.index + 1};
      done++;
    }
    if (done < items->size()) break;  // out of time: go on next slice
    if (items->size() < opts_.scan_batch) {  // the whole store seen
      for (uint32_t id : pass_.draining) {
        if (pass_.referenced.count(id)) continue;
        Status st = nodes_->FinishDrain(id);
        if (!st.ok()) LOG_WARN("node %u drained but not marked out: %s", id, st.ToString().c_str());
      }
      {
        std::lock_guard<std::mutex> lock(health_mu_);
        health_.blocks = pass_.blocks;
        health_.under_replicated = pass_.under;
        health_.misplaced = pass_.misplaced;
        health_.passes++;
        health_.moving = false;
      }
      if (pass_.under || pass_.misplaced)
        LOG_INFO("move pass: %lu blocks, %lu under-replicated, %lu misplaced", (unsigned long)pass_.blocks,
                 (unsigned long)pass_.under, (unsigned long)pass_.misplaced);
      pass_.active = false;
      pass_.ended = SteadyClock::now();
      // Changes made by this pass (a drain finished) start the next at once.
      if (changed) pass_.signature.clear();
      break;
    }
  }
  std::lock_guard<std::mutex> lock(health_mu_);
  const auto t = SteadyClock::now();
  rate_samples_.emplace_back(t, health_.moved_bytes);
  while (rate_samples_.size() > 2 && t - rate_samples_.front().first > std::chrono::seconds(5))
    rate_samples_.erase(rate_samples_.begin());
  const double span = std::chrono::duration<double>(t - rate_samples_.front().first).count();
  health_.rate_bytes_per_s =
      span > 0.5 ? static_cast<uint64_t>((health_.moved_bytes - rate_samples_.front().second) / span) : 0;
  health_.rate_limit = opts_.move_rate;
  return changed;
}

Result<std::vector<wire::NodeMove>> BlockReclaimer::Plan(const wire::ClusterMap& before,
                                                         const wire::ClusterMap& after) const {
  const ring::Ring rb = ring::Ring::FromMap(before), ra = ring::Ring::FromMap(after);
  const auto nodes_after = Index(after);
  std::map<uint32_t, wire::NodeMove> moves;
  for (const auto& n : after.nodes)
    if (n.state != wire::NodeState::kOut) moves[n.id].id = n.id;
  for (const auto& n : before.nodes)
    if (n.state != wire::NodeState::kOut) moves[n.id].id = n.id;
  // Shares of the ring, from a fixed sample of keys (the data may be small).
  constexpr uint64_t kSample = 1 << 16;
  uint64_t copies_before = 0, copies_after = 0;
  for (uint64_t i = 0; i < kSample; i++) {
    const uint64_t key = ring::Ring::BlockKey(i, 0);
    for (uint32_t id : rb.Replicas(key, before.replicas)) moves[id].share_before += 1, copies_before++;
    for (uint32_t id : ra.Replicas(key, after.replicas)) moves[id].share_after += 1, copies_after++;
  }
  std::pair<uint64_t, uint64_t> from{0, 0};
  while (true) {
    ASSIGN_OR_RETURN(auto items, ns_->ScanBlocks(4096, from.first, from.second));
    for (const auto& item : items) {
      const uint64_t key = ring::Ring::BlockKey(item.ino, item.index);
      const auto pa = ra.Replicas(key, after.replicas);
      const auto held = ValidHolders(item.record.holders, nodes_after);
      for (uint32_t id : pa) {
        if (Contains(held, id)) continue;
        moves[id].blocks_in++;
        moves[id].bytes_in += item.bytes;
      }
      for (uint32_t id : held) {
        if (Contains(pa, id)) continue;
        moves[id].blocks_out++;
        moves[id].bytes_out += item.bytes;
      }
      from = {item.ino, item.index + 1};
    }
    if (items.size() < 4096) break;
  }
  std::vector<wire::NodeMove> out;
  for (auto& [id, m] : moves) {
    m.id = id;
    if (copies_before) m.share_before /= static_cast<double>(copies_before);
    if (copies_after) m.share_after /= static_cast<double>(copies_after);
    out.push_back(m);
  }
  return out;
}

}  // namespace ringfs::meta
