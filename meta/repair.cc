// Repair of stale replicas: part of the block maintenance thread (gc.h), so a
// repair never interleaves with the deletion of the same file's blocks.
#include <map>
#include <set>
#include <vector>

#include "common/log.h"
#include "meta/gc.h"
#include "ring/ring.h"

namespace ringfs::meta {

// Makes `target` hold what a good replica holds: first the target's current
// generation, then the good bytes, then a replacement that lands only if the
// target was not written in between (a client's newer write wins; the mark
// stays and the next pass tries again).
Status BlockReclaimer::RepairBlock(uint64_t ino, uint64_t index, const wire::NodeInfo& target,
                                   const std::vector<const wire::NodeInfo*>& sources) {
  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  uint32_t generation = 0;
  {
    auto r = ChannelFor(target.addr).Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                          opts_.rpc_timeout_ms);
    if (r.ok()) {
      wire::BlockReply rep;
      RETURN_IF_ERROR(r->DecodeBody(rep));
      generation = rep.generation;
    } else if (r.status().code() != ENOENT && r.status().code() != EIO) {
      return r.status();  // absent or corrupt count as generation 0
    }
  }
  req.length = wire::kBlockSize;
  zmq::message_t good;  // the block's bytes; empty when good replicas lack it
  Status last = Status::Error(EHOSTUNREACH, "no good replica answered");
  bool have = false;
  for (const wire::NodeInfo* src : sources) {
    auto r = ChannelFor(src->addr).Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                        opts_.repair_timeout_ms);
    if (r.ok()) {
      good = std::move(r->data);
      have = true;
      break;
    }
    if (r.status().code() == ENOENT) {  // a good replica without it: a hole
      have = true;
      break;
    }
    last = r.status();
  }
  if (!have) return last;
  wire::BlockRequest put;
  put.ino = ino;
  put.index = index;
  put.flags = wire::kBlockReplace;
  put.generation = generation;
  auto r = ChannelFor(target.addr).Call(wire::Op::kBlockWrite, codec::Encode(put), &good,
                                        opts_.repair_timeout_ms);
  return r.ok() ? Status::OK() : r.status();
}

size_t BlockReclaimer::RepairOnce() {
  auto marks = ns_->PendingStale(opts_.repair_batch);
  if (!marks.ok()) {
    LOG_WARN("repair: cannot read stale replicas: %s", marks.status().ToString().c_str());
    return 0;
  }
  if (marks->empty()) return 0;
  const wire::ClusterMap map = nodes_->Map();
  const ring::Ring ring = ring::Ring::FromMap(map);
  std::map<uint32_t, const wire::NodeInfo*> nodes;
  for (const auto& n : map.nodes) nodes[n.id] = &n;
  auto alive = [&](uint32_t id) {
    auto it = nodes.find(id);
    return it != nodes.end() && it->second->alive;
  };
  std::map<uint64_t, std::set<wire::StaleReplica>> stale_of;  // every mark of a file
  size_t repaired = 0;
  for (const auto& m : *marks) {
    if (!alive(m.replica.node)) continue;  // repaired when it is back
    auto known = stale_of.find(m.ino);
    if (known == stale_of.end()) {
      auto all = ns_->StaleOf(m.ino);
      if (!all.ok()) continue;
      known = stale_of.emplace(m.ino, std::set<wire::StaleReplica>(all->begin(), all->end())).first;
    }
    std::vector<const wire::NodeInfo*> sources;
    for (uint32_t id : ring.Replicas(ring::Ring::BlockKey(m.ino, m.replica.index), map.replicas)) {
      if (id == m.replica.node || !alive(id) || known->second.count({m.replica.index, id})) continue;
      sources.push_back(nodes[id]);
    }
    if (sources.empty()) continue;  // no good copy reachable now
    Status st = RepairBlock(m.ino, m.replica.index, *nodes[m.replica.node], sources);
    if (!st.ok()) {
      LOG_DEBUG("repair: ino %lu block %lu on node %u: %s", (unsigned long)m.ino,
                (unsigned long)m.replica.index, m.replica.node, st.ToString().c_str());
      continue;
    }
    st = ns_->ClearStale(m);
    if (!st.ok()) {
      LOG_WARN("repair: cannot clear a repaired replica: %s", st.ToString().c_str());
      continue;
    }
    LOG_INFO("repaired ino %lu block %lu on node %u", (unsigned long)m.ino,
             (unsigned long)m.replica.index, m.replica.node);
    repaired++;
  }
  return repaired;
}

}  // namespace ringfs::meta
