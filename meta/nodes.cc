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

// The persisted part of a node: who it is, not how it is doing.
wire::NodeInfo Identity(const wire::NodeInfo& n) {
  wire::NodeInfo id;
  id.id = n.id;
  id.addr = n.addr;
  id.zone = n.zone;
  id.weight = n.weight;
  return id;
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
  {
    ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
    ASSIGN_OR_RETURN(epoch_, GetCounter(txn, schema::kMapEpoch));
    ASSIGN_OR_RETURN(next_id_, GetCounter(txn, schema::kNextNodeId));
    if (next_id_ == 0) next_id_ = 1;
    lmdb::Cursor c(txn, Table::kNodes);
    for (bool ok = c.First(); ok; ok = c.Next()) {
      Entry e;
      RETURN_IF_ERROR(codec::Decode(c.value(), e.info));
      e.info.alive = false;
      nodes_[e.info.id] = e;
    }
    RETURN_IF_ERROR(c.status());
  }
  epoch_++;  // liveness starts unknown: a new map
  return Persist(nullptr);
}

Status NodeRegistry::Persist(const wire::NodeInfo* node) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  RETURN_IF_ERROR(txn.Put(Table::kCounters, schema::kMapEpoch, U64Bytes(epoch_)));
  RETURN_IF_ERROR(txn.Put(Table::kCounters, schema::kNextNodeId, U64Bytes(next_id_)));
  if (node) {
    RETURN_IF_ERROR(
        txn.Put(Table::kNodes, schema::U32Key(node->id), codec::Encode(Identity(*node))));
  }
  return txn.Commit();
}

bool NodeRegistry::RefreshLiveness() {
  const int64_t now = Now();
  bool changed = false;
  for (auto& [id, e] : nodes_) {
    bool alive = e.heard && now - e.last_ms <= opts_.node_timeout_ms;
    if (alive != e.info.alive) {
      e.info.alive = alive;
      changed = true;
      LOG_INFO("node %u (%s) is %s", id, e.info.addr.c_str(), alive ? "up" : "down");
    }
  }
  return changed;
}

Result<uint32_t> NodeRegistry::Register(const wire::NodeInfo& info) {
  if (info.addr.empty()) return Status::Error(EINVAL, "node without an address");
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t id = info.id;
  if (id == 0) {
    for (const auto& [known, e] : nodes_) {
      if (e.info.addr == info.addr) id = known;
    }
  }
  if (id == 0) {
    if (next_id_ > UINT32_MAX) return Status::Error(ENOSPC, "node ids exhausted");
    id = static_cast<uint32_t>(next_id_++);
  } else if (id >= next_id_) {
    next_id_ = uint64_t{id} + 1;  // a node we forgot (a wiped store) keeps its id
  }
  auto it = nodes_.find(id);
  const bool is_new = it == nodes_.end();
  Entry& e = nodes_[id];
  const bool identity_changed = is_new || e.info.addr != info.addr || e.info.zone != info.zone ||
                                e.info.weight != info.weight;
  const bool was_alive = e.info.alive;
  e.info = info;
  e.info.id = id;
  e.info.alive = was_alive;
  e.last_ms = Now();
  e.heard = true;
  bool changed = RefreshLiveness() || identity_changed;
  if (changed) {
    epoch_++;
    Status st = Persist(identity_changed ? &e.info : nullptr);
    if (!st.ok()) {
      if (is_new) nodes_.erase(id);
      return st;
    }
  }
  if (is_new)
    LOG_INFO("node %u registered at %s zone '%s'", id, info.addr.c_str(), info.zone.c_str());
  return id;
}

wire::ClusterMap NodeRegistry::Map() {
  std::lock_guard<std::mutex> lock(mu_);
  if (RefreshLiveness()) {
    epoch_++;
    Status st = Persist(nullptr);
    if (!st.ok()) LOG_WARN("map epoch not persisted: %s", st.ToString().c_str());
  }
  wire::ClusterMap m;
  m.epoch = epoch_;
  m.replicas = opts_.replicas;
  for (const auto& [id, e] : nodes_) m.nodes.push_back(e.info);
  return m;
}

NodeRegistry::Space NodeRegistry::AliveSpace() {
  wire::ClusterMap m = Map();
  Space s;
  for (const auto& n : m.nodes) {
    if (!n.alive) continue;
    s.capacity += n.capacity;
    s.used += n.used < n.capacity ? n.used : n.capacity;
    s.alive++;
  }
  return s;
}

}  // namespace ringfs::meta
