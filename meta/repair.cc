// Repair of under-replicated blocks: part of the block maintenance thread
// (gc.h), so a repair never interleaves with the deletion of the same file's
// blocks. A block is queued when its committed version has fewer known
// holders than copies; a placed replica that does not hold that version is
// given it from one that does.
#include <algorithm>
#include <map>
#include <vector>

#include "common/log.h"
#include "meta/gc.h"
#include "ring/ring.h"

namespace ringfs::meta {

// Makes `target` hold the block at `version`: first the version it holds
// now, then the good bytes from a source at exactly `version`, then a
// replacement that lands only if the target is still at what it held (a
// client's write in between wins; the block is tried again next pass).
Status BlockReclaimer::RepairBlock(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                                   const wire::NodeInfo& target,
                                   const std::vector<const wire::NodeInfo*>& sources) {
  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.flags = wire::kBlockVersionOnly;
  wire::BlockVersion held;  // absent or corrupt: none
  {
    auto r = ChannelFor(target.addr).Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                          opts_.rpc_timeout_ms);
    if (r.ok()) {
      wire::BlockReply rep;
      RETURN_IF_ERROR(r->DecodeBody(rep));
      held = rep.version;
    } else if (r.status().code() != ENOENT && r.status().code() != EIO) {
      return r.status();
    }
  }
  // Even a copy at the right version is rewritten: it may be one whose
  // bytes failed their checksum (kReportBadCopy).
  req.flags = 0;
  req.length = wire::kBlockSize;
  req.base = version;  // a source must hold exactly the committed version
  zmq::message_t good;
  Status last = Status::Error(EHOSTUNREACH, "no replica holding the version answered");
  bool have = false;
  for (const wire::NodeInfo* src : sources) {
    auto r = ChannelFor(src->addr).Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                        opts_.repair_timeout_ms);
    wire::BlockReply rep;
    if (r.ok() && r->DecodeBody(rep).ok() && !rep.refused && r->has_data) {
      good = std::move(r->data);
      have = true;
      break;
    }
    last = r.ok() ? Status::Error(ESTALE, "source no longer at the version") : r.status();
  }
  if (!have) return last;
  const wire::BlockRequest put = wire::ReplaceRequest(ino, index, held, version);
  auto r = ChannelFor(target.addr).Call(wire::Op::kBlockWrite, codec::Encode(put), &good,
                                        opts_.repair_timeout_ms);
  if (!r.ok()) return r.status();
  wire::BlockReply rep;
  RETURN_IF_ERROR(r->DecodeBody(rep));
  if (rep.refused) return Status::Error(ESTALE, "target written meanwhile");
  return Status::OK();
}

size_t BlockReclaimer::RepairOnce() {
  // Round robin over the queue, so blocks waiting for a down node do not
  // keep the rest from being repaired.
  auto items = ns_->PendingRepair(opts_.repair_batch, repair_from_.first, repair_from_.second);
  if (!items.ok()) {
    LOG_WARN("repair: cannot read the repair queue: %s", items.status().ToString().c_str());
    return 0;
  }
  if (items->size() < opts_.repair_batch) {
    repair_from_ = {0, 0};
  } else {
    repair_from_ = {items->back().ino, items->back().index + 1};
  }
  if (items->empty()) return 0;
  const wire::ClusterMap map = nodes_->Map();
  const ring::Ring ring = ring::Ring::FromMap(map);
  std::map<uint32_t, const wire::NodeInfo*> nodes;
  for (const auto& n : map.nodes) nodes[n.id] = &n;
  auto alive = [&](uint32_t id) {
    auto it = nodes.find(id);
    return it != nodes.end() && it->second->alive;
  };
  size_t repaired = 0;
  for (const auto& item : *items) {
    if (!item.exists) {  // truncated or deleted since it was queued
      (void)ns_->DoneRepair(item.ino, item.index, nullptr);
      continue;
    }
    const auto& holders = item.record.holders;
    auto held_by = [&](uint32_t id) {
      return std::find(holders.begin(), holders.end(), id) != holders.end();
    };
    std::vector<const wire::NodeInfo*> sources;
    for (uint32_t id : holders)
      if (alive(id) && wire::HoldsData(nodes[id]->state)) sources.push_back(nodes[id]);
    bool complete = true;
    for (uint32_t id : ring.Replicas(ring::Ring::BlockKey(item.ino, item.index), map.replicas)) {
      if (held_by(id)) continue;
      if (!alive(id) || sources.empty()) {  // repaired when it (or a holder) is back
        complete = false;
        continue;
      }
      Status st = RepairBlock(item.ino, item.index, item.record.version, *nodes[id], sources);
      if (st.ok()) st = ns_->AddHolder(item.ino, item.index, item.record.version, id);
      if (!st.ok()) {
        LOG_DEBUG("repair: ino %lu block %lu on node %u: %s", (unsigned long)item.ino,
                  (unsigned long)item.index, id, st.ToString().c_str());
        complete = false;
        continue;
      }
      LOG_INFO("repaired ino %lu block %lu on node %u", (unsigned long)item.ino,
               (unsigned long)item.index, id);
      repaired++;
    }
    if (complete) (void)ns_->DoneRepair(item.ino, item.index, &item.record.version);
  }
  return repaired;
}

}  // namespace ringfs::meta
