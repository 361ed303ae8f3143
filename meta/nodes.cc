#include "meta/nodes.h"

#include <chrono>
#include <cstring>

#include "common/codec.h"
#include "common/log.h"
#include "meta/schema.h"

namespace ringfs::meta {

using lmdb::Table;

namespace {

std::string_view U64Bytes(const uint64_t& v) {
  return std::string_view(reinterpret_cast<const char*>(&v), sizeof v);
}

Result<uint64_t> GetCounter(const lmdb::Txn& txn, std::string_view key) {
  std::string v;
  Status st = txn.Get(Table::kCounters, key, &v);
  if (!st.ok()) return st.code() == ENOENT ? Result<uint64_t>(uint64_t{0}) : st;
  if (v.size() != 8) return Status::Error(EIO, "bad counter " + std::string(key));
  uint64_t n;
  std::memcpy(&n, v.data(), 8);
  return n;
}

// Node records: a marker no id takes, then the node's identity and place.
// Records from before membership states (just a NodeInfo of that time)
// were all in the ring.
constexpr uint32_t kRecordMarker = UINT32_MAX;

struct LegacyNodeInfo {
  uint32_t id = 0;
  std::string addr, zone;
  uint32_t weight = 100;
  uint64_t capacity = 0, used = 0, blocks = 0;
  bool alive = false;
  template <class A>
  void serialize(A& ar) { ar(id, addr, zone, weight, capacity, used, blocks, alive); }
};

std::string EncodeRecord(const wire::NodeInfo& n) {
  wire::NodeInfo id;  // who it is and where it stands, not how it is doing
  id.id = n.id;
  id.addr = n.addr;
  id.zone = n.zone;
  id.weight = n.weight;
  id.state = n.state;
  id.token = n.token;
  id.store_id = n.store_id;
  id.auto_out = n.auto_out;
  return codec::Encode(kRecordMarker, id);
}

Status DecodeRecord(std::string_view bytes, wire::NodeInfo* n) {
  uint32_t marker = 0;
  if (bytes.size() >= 4) std::memcpy(&marker, bytes.data(), 4);
  if (marker == kRecordMarker) return codec::Decode(bytes, marker, *n);
  LegacyNodeInfo old;
  RETURN_IF_ERROR(codec::Decode(bytes, old));
  *n = wire::NodeInfo{};
  n->id = old.id;
  n->addr = old.addr;
  n->zone = old.zone;
  n->weight = old.weight;
  n->state = wire::NodeState::kIn;
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<NodeRegistry>> NodeRegistry::Open(lmdb::Env* env, Options opts) {
  std::unique_ptr<NodeRegistry> r(new NodeRegistry(env, std::move(opts)));
  RETURN_IF_ERROR(r->Load());
  return r;
}

int64_t NodeRegistry::Now() const {
  if (opts_.now_ms) return opts_.now_ms();
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}


Status NodeRegistry::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  started_ms_ = Now();
  {
    ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
    ASSIGN_OR_RETURN(epoch_, GetCounter(txn, schema::kMapEpoch));
    ASSIGN_OR_RETURN(next_id_, GetCounter(txn, schema::kNextNodeId));
    if (next_id_ == 0) next_id_ = 1;
    lmdb::Cursor c(txn, Table::kNodes);
    for (bool ok = c.First(); ok; ok = c.Next()) {
      Entry e;
      RETURN_IF_ERROR(DecodeRecord(c.value(), &e.info));
      e.info.alive = false;
      nodes_[e.info.id] = e;
    }
    RETURN_IF_ERROR(c.status());
  }
  return Commit({});  // liveness starts unknown: a new map
}

Status NodeRegistry::Commit(const std::vector<const wire::NodeInfo*>& changed) {
  epoch_++;
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  RETURN_IF_ERROR(txn.Put(Table::kCounters, schema::kMapEpoch, U64Bytes(epoch_)));
  RETURN_IF_ERROR(txn.Put(Table::kCounters, schema::kNextNodeId, U64Bytes(next_id_)));
  for (const wire::NodeInfo* n : changed)
    RETURN_IF_ERROR(txn.Put(Table::kNodes, schema::U32Key(n->id), EncodeRecord(*n)));
  RETURN_IF_ERROR(txn.Commit());
  if (opts_.on_epoch) opts_.on_epoch(epoch_);
  return Status::OK();
}

bool NodeRegistry::RefreshLiveness() {
  const int64_t now = Now();
  bool changed = false;
  for (auto& [id, e] : nodes_) {
    // Alive if either says so: heartbeats reach us directly, gossip through
    // the others; a node is down once both have lost it (a false down
    // costs a re-replication, a false up only a client's timeout).
    bool alive = e.heard && now - e.last_ms <= opts_.node_timeout_ms;
    if (!alive && opts_.gossip_alive && e.info.state != wire::NodeState::kOut && e.heard) {
      if (auto g = opts_.gossip_alive(id)) alive = *g;
    }
    if (alive) {
      e.down_since = -1;
    } else if (e.down_since < 0) {
      e.down_since = e.info.alive ? now : started_ms_;
    }
    e.info.down_ms = alive ? 0 : static_cast<uint64_t>(std::max<int64_t>(0, now - e.down_since));
    if (alive != e.info.alive) {
      e.info.alive = alive;
      changed = true;
      if (e.info.state != wire::NodeState::kOut)
        LOG_INFO("node %u (%s) is %s", id, e.info.addr.c_str(), alive ? "up" : "down");
    }
  }
  return changed;
}

uint32_t NodeRegistry::InCount() const {
  uint32_t n = 0;
  for (const auto& [id, e] : nodes_) n += e.info.state == wire::NodeState::kIn;
  return n;
}

Result<uint32_t> NodeRegistry::NewId() {
  if (next_id_ >= UINT32_MAX) return Status::Error(ENOSPC, "node ids exhausted");
  return static_cast<uint32_t>(next_id_++);
}

Result<NodeRegistry::Entry*> NodeRegistry::Replace(Entry& old, const wire::NodeInfo& info,
                                                   std::vector<const wire::NodeInfo*>* changed) {
  ASSIGN_OR_RETURN(uint32_t id, NewId());
  Entry& e = nodes_[id];
  e.info = info;
  e.info.id = id;
  e.info.zone = old.info.zone;
  e.info.weight = old.info.weight;
  e.info.state = old.info.state == wire::NodeState::kOut ? wire::NodeState::kIn : old.info.state;
  e.info.token = old.info.token ? old.info.token : old.info.id;
  e.info.auto_out = false;
  e.info.alive = false;
  e.down_since = Now();  // its down-out interval starts now, not at our start
  old.info.state = wire::NodeState::kOut;
  old.info.auto_out = false;
  changed->push_back(&old.info);
  changed->push_back(&e.info);
  LOG_WARN("node %u (%s) was written off (its store is new or it was out): it takes its old "
           "place as node %u, starting empty; node %u is out",
           old.info.id, info.addr.c_str(), id, old.info.id);
  return &e;
}

Result<NodeRegistry::Registration> NodeRegistry::Register(const wire::NodeInfo& info) {
  if (info.addr.empty()) return Status::Error(EINVAL, "node without an address");
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = nullptr;
  if (info.id != 0) {
    auto it = nodes_.find(info.id);
    if (it != nodes_.end()) e = &it->second;
  } else {
    for (auto& [known, k] : nodes_)
      if (k.info.addr == info.addr && k.info.state != wire::NodeState::kOut) e = &k;
  }
  Registration reg;
  std::vector<const wire::NodeInfo*> changed;
  // This store already given a new id (a reply lost, or a request queued in
  // a partition arriving after its retry): the same answer again, so one
  // store never becomes two nodes. Told to reset until it has beaten under
  // the new id, since until then nothing is placed on it.
  if (info.store_id != 0 && (e == nullptr || e->info.state == wire::NodeState::kOut ||
                             e->info.store_id != info.store_id)) {
    for (auto& [known, k] : nodes_) {
      if (k.info.store_id == info.store_id && k.info.state != wire::NodeState::kOut &&
          known != info.id) {
        reg.id = known;
        reg.reset_store = !k.heard;
        return reg;
      }
    }
  }
  if (e == nullptr) {
    // New, or one this store forgot (a lost metadata store): it may keep its id.
    uint32_t id = info.id;
    if (id == 0) {
      ASSIGN_OR_RETURN(id, NewId());
    } else if (id >= next_id_) {
      next_id_ = uint64_t{id} + 1;
    }
    e = &nodes_[id];
    e->info = info;
    e->info.id = id;
    e->info.state = wire::NodeState::kJoining;
    e->info.token = 0;
    e->info.auto_out = false;
    e->info.alive = false;
    changed.push_back(&e->info);
    LOG_INFO("node %u registered at %s zone '%s': joining", id, info.addr.c_str(), info.zone.c_str());
  } else if (e->info.state == wire::NodeState::kOut) {
    // Written off while it was away: whatever it holds is not counted on.
    reg.reset_store = true;
    if (e->info.auto_out) {
      ASSIGN_OR_RETURN(e, Replace(*e, info, &changed));
    } else {
      ASSIGN_OR_RETURN(uint32_t id, NewId());
      Entry& fresh = nodes_[id];
      fresh.info = info;
      fresh.info.id = id;
      fresh.info.state = wire::NodeState::kJoining;
      fresh.info.token = 0;
      fresh.info.alive = false;
      e = &fresh;
      changed.push_back(&e->info);
      LOG_INFO("removed node %u is back at %s: node %u, joining", info.id, info.addr.c_str(), id);
    }
  } else if (info.store_id != 0 && e->info.store_id != 0 && info.store_id != e->info.store_id) {
    reg.reset_store = true;
    ASSIGN_OR_RETURN(e, Replace(*e, info, &changed));
  } else {
    if (e->info.store_id == 0 && info.store_id != 0) {
      e->info.store_id = info.store_id;
      changed.push_back(&e->info);
    }
    if (e->info.addr != info.addr) {
      LOG_INFO("node %u moved from %s to %s", e->info.id, e->info.addr.c_str(), info.addr.c_str());
      e->info.addr = info.addr;
      changed.push_back(&e->info);
    }
    // Zone and weight are the map's once admitted (set by `node add`).
    if (e->info.state == wire::NodeState::kJoining &&
        (e->info.zone != info.zone || e->info.weight != info.weight)) {
      e->info.zone = info.zone;
      e->info.weight = info.weight;
      changed.push_back(&e->info);
    }
  }
  e->info.capacity = info.capacity;
  e->info.used = info.used;
  e->info.blocks = info.blocks;
  // A store told to reset is heard (alive, placed on) only from its first
  // heartbeat under the new id, after the reset.
  if (!reg.reset_store) {
    e->last_ms = Now();
    e->heard = true;
  }
  const bool live_changed = RefreshLiveness();
  if (!changed.empty() || live_changed) RETURN_IF_ERROR(Commit(changed));
  reg.id = e->info.id;
  return reg;
}

wire::ClusterMap NodeRegistry::MapLocked() const {
  wire::ClusterMap m;
  m.epoch = epoch_;
  m.replicas = opts_.replicas;
  for (const auto& [id, e] : nodes_) m.nodes.push_back(e.info);
  return m;
}

wire::ClusterMap NodeRegistry::Map() {
  std::lock_guard<std::mutex> lock(mu_);
  if (RefreshLiveness()) {
    Status st = Commit({});
    if (!st.ok()) LOG_WARN("map epoch not persisted: %s", st.ToString().c_str());
  }
  return MapLocked();
}

uint64_t NodeRegistry::epoch() {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

Result<wire::ClusterMap> NodeRegistry::Admit(uint32_t id, const std::string& addr,
                                             const std::string& zone, uint32_t weight,
                                             bool dry_run) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = nullptr;
  for (auto& [known, k] : nodes_) {
    if (k.info.state == wire::NodeState::kOut) continue;
    if ((id != 0 && known == id) || (id == 0 && k.info.addr == addr)) e = &k;
  }
  const std::string who = id != 0 ? "node " + std::to_string(id) : addr;
  if (e == nullptr) {
    return Status::Error(ENOENT, "no block daemon has registered as " + who +
                                     " (start ringfs-blockd with --meta pointing at this cluster "
                                     "first; it is listed as joining until added)");
  }
  if (e->info.state == wire::NodeState::kIn)
    return Status::Error(EEXIST, who + " is already in the cluster (node " +
                                     std::to_string(e->info.id) + ")");
  wire::NodeInfo next = e->info;
  next.state = wire::NodeState::kIn;
  if (!zone.empty()) next.zone = zone;
  if (weight != UINT32_MAX) next.weight = weight;
  if (dry_run) {
    wire::ClusterMap m = MapLocked();
    for (auto& n : m.nodes)
      if (n.id == next.id) n = next;
    return m;
  }
  wire::NodeInfo before = e->info;
  e->info = next;
  Status st = Commit({&e->info});
  if (!st.ok()) {
    e->info = before;
    return st;
  }
  LOG_INFO("node %u (%s) admitted: zone '%s' weight %u", next.id, next.addr.c_str(),
           next.zone.c_str(), next.weight);
  return MapLocked();
}

Result<wire::ClusterMap> NodeRegistry::Remove(uint32_t id, bool force, bool dry_run) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return Status::Error(ENOENT, "no node " + std::to_string(id));
  Entry& e = it->second;
  using wire::NodeState;
  if (e.info.state == NodeState::kOut)
    return Status::Error(EALREADY, "node " + std::to_string(id) + " is already out");
  if (e.info.state == NodeState::kDraining && !force)
    return Status::Error(EALREADY, "node " + std::to_string(id) +
                                       " is already draining (--force to write its copies off)");
  if (wire::HoldsData(e.info.state)) {
    const uint32_t stay = InCount() - (e.info.state == NodeState::kIn ? 1 : 0);
    if (stay < opts_.replicas) {
      return Status::Error(EBUSY, "removing node " + std::to_string(id) + " would leave " +
                                      std::to_string(stay) + " node(s) in, fewer than the " +
                                      std::to_string(opts_.replicas) + " copies of each block");
    }
  }
  wire::NodeInfo next = e.info;
  next.state = force || !wire::HoldsData(e.info.state) ? NodeState::kOut : NodeState::kDraining;
  next.auto_out = false;
  if (dry_run) {
    wire::ClusterMap m = MapLocked();
    for (auto& n : m.nodes)
      if (n.id == id) n = next;
    return m;
  }
  wire::NodeInfo before = e.info;
  e.info = next;
  Status st = Commit({&e.info});
  if (!st.ok()) {
    e.info = before;
    return st;
  }
  LOG_INFO("node %u (%s) is %s", id, e.info.addr.c_str(), wire::NodeStateName(next.state));
  return MapLocked();
}

Status NodeRegistry::FinishDrain(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.info.state != wire::NodeState::kDraining)
    return Status::OK();
  it->second.info.state = wire::NodeState::kOut;
  RETURN_IF_ERROR(Commit({&it->second.info}));
  LOG_INFO("node %u (%s) is drained: out", id, it->second.info.addr.c_str());
  return Status::OK();
}

size_t NodeRegistry::ApplyDownOut() {
  std::lock_guard<std::mutex> lock(mu_);
  RefreshLiveness();
  size_t marked = 0;
  for (auto& [id, e] : nodes_) {
    if (e.info.state != wire::NodeState::kIn || e.info.alive) continue;
    if (static_cast<int64_t>(e.info.down_ms) < opts_.down_out_ms) continue;
    // Never below RF nodes in: the copies would have nowhere distinct to go.
    if (InCount() <= opts_.replicas) break;
    e.info.state = wire::NodeState::kOut;
    e.info.auto_out = true;
    Status st = Commit({&e.info});
    if (!st.ok()) {
      e.info.state = wire::NodeState::kIn;
      e.info.auto_out = false;
      LOG_WARN("cannot mark node %u out: %s", id, st.ToString().c_str());
      break;
    }
    LOG_WARN("node %u (%s) down for %lu s: marked out, its blocks are copied elsewhere", id,
             e.info.addr.c_str(), (unsigned long)(e.info.down_ms / 1000));
    marked++;
  }
  return marked;
}

NodeRegistry::Space NodeRegistry::AliveSpace() {
  wire::ClusterMap m = Map();
  Space s;
  for (const auto& n : m.nodes) {
    if (!n.alive || !wire::HoldsData(n.state)) continue;
    s.capacity += n.capacity;
    s.used += n.used < n.capacity ? n.used : n.capacity;
    s.alive++;
  }
  return s;
}

}  // namespace ringfs::meta
