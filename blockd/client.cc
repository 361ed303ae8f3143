#include "blockd/client.h"

#include <algorithm>

#include "common/block_version.h"
#include "common/log.h"

namespace ringfs::blockd {

namespace {

// Errors that say the node (not the request) is the problem.
bool IsNodeFailure(int code) {
  return code == ETIMEDOUT || code == EHOSTUNREACH || code == EPROTO || code == ECONNREFUSED;
}

}  // namespace

Client::Client(ClientOptions opts) : opts_(opts) {
  placement_ = std::make_shared<Placement>(Placement{{}, ring::Ring({}), {}});
}

void Client::SetMap(const wire::ClusterMap& map) {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = std::make_shared<Placement>(Placement{map, ring::Ring::FromMap(map), {}});
  for (const auto& n : map.nodes) {
    Node node{n, nullptr};
    auto old = placement_->nodes.find(n.id);
    if (old != placement_->nodes.end() && old->second.info.addr == n.addr) {
      node.channel = old->second.channel;
    } else {
      node.channel = std::make_shared<rpc::Channel>(n.addr);
      suspect_until_.erase(n.id);  // a new address is a new chance
    }
    p->nodes.emplace(n.id, std::move(node));
  }
  placement_ = std::move(p);
}

uint64_t Client::epoch() const { return Current()->map.epoch; }
wire::ClusterMap Client::map() const { return Current()->map; }

std::shared_ptr<const Client::Placement> Client::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return placement_;
}

bool Client::Up(const Placement& p, uint32_t id) const {
  auto it = p.nodes.find(id);
  if (it == p.nodes.end()) return false;
  Liveness l;
  {
    std::lock_guard<std::mutex> lock(mu_);
    l = liveness_;
  }
  if (l) {
    if (auto g = l(id)) return *g;
  }
  return it->second.info.alive;
}

bool Client::Usable(const Placement& p, uint32_t id) const {
  if (!Up(p, id)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto s = suspect_until_.find(id);
  return s == suspect_until_.end() || s->second < std::chrono::steady_clock::now();
}

void Client::MarkSuspect(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  suspect_until_[id] =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.suspect_ms);
}

bool Client::Alive(uint32_t id) const { return Up(*Current(), id); }

Result<rpc::Message> Client::WaitWhileAlive(rpc::Pending& call, uint32_t id,
                                            std::chrono::steady_clock::time_point start,
                                            const std::function<rpc::Pending()>& resend) {
  using std::chrono::milliseconds;
  auto sent = start;
  while (!call.Poll(200)) {
    const auto now = std::chrono::steady_clock::now();
    if (now - sent < milliseconds(opts_.timeout_ms)) continue;
    // The map is re-read every second and marks a node down 3 s after its
    // last heartbeat, so a dead or stopped node is given up on at about
    // `timeout_ms`; a live one gets until `slow_write_ms`.
    if (now - start >= milliseconds(opts_.slow_write_ms) || !Alive(id)) return call.Wait(0);
    // Alive but silent: perhaps restarted since (the request died with the
    // old process). Asking again is safe: a versioned write that already
    // landed is answered with the version it made.
    call = resend();
    sent = now;
  }
  return call.Wait(opts_.timeout_ms);
}

std::vector<uint32_t> Client::Replicas(uint64_t ino, uint64_t index) const {
  auto p = Current();
  return p->ring.Replicas(ring::Ring::BlockKey(ino, index), p->map.replicas);
}

size_t Client::Quorum() const { return blockver::Quorum(Current()->map.replicas); }

Status Client::Write(uint64_t ino, uint64_t index, uint32_t offset,
                     std::shared_ptr<const std::string> buf, size_t buf_offset, size_t len,
                     bool sync, const wire::BlockVersion& base, const wire::BlockVersion& next,
                     WriteResult* out, const std::vector<wire::WriteRange>* ranges, uint32_t flags) {
  *out = WriteResult{};
  auto p = Current();
  auto replicas = p->ring.Replicas(ring::Ring::BlockKey(ino, index), p->map.replicas);
  if (replicas.empty()) return Status::Error(ENOSPC, "no block nodes in the cluster map");
  const size_t need = std::min(blockver::Quorum(p->map.replicas), replicas.size());
  // Route around nodes known to be down (gossip, else the map) and those
  // that just failed a call. Too few left: the merely suspected are asked
  // after all; the down ones only if nothing else answers (stand-ins
  // below take their place), since each would cost a full timeout.
  std::vector<uint32_t> targets, skipped, down;
  for (uint32_t id : replicas) {
    if (Usable(*p, id)) targets.push_back(id);
    else (Up(*p, id) ? skipped : down).push_back(id);
  }
  if (targets.size() < need) {
    targets.insert(targets.end(), skipped.begin(), skipped.end());
    skipped.clear();
  }

  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.offset = offset;
  req.length = static_cast<uint32_t>(len);
  req.flags = (sync ? static_cast<uint32_t>(wire::kBlockSyncNow) : 0u) | flags;
  req.base = base;
  req.version = next;
  if (ranges && ranges->size() > 1) req.ranges = *ranges;
  else if (ranges && ranges->size() == 1) req.offset = ranges->front().offset;
  const std::string body = codec::Encode(req);
  auto send = [&](uint32_t id) {
    zmq::message_t data = rpc::ShareBytes(buf, buf_offset, len);
    return p->nodes.at(id).channel->Start(wire::Op::kBlockWrite, body, &data, opts_.timeout_ms);
  };
  Status first_error;
  auto round = [&](const std::vector<uint32_t>& to) {
    std::vector<rpc::Pending> calls;
    for (uint32_t id : to) calls.push_back(send(id));
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < calls.size(); i++) {
      const uint32_t id = to[i];
      auto r = WaitWhileAlive(calls[i], id, start, [&] { return send(id); });
      wire::BlockReply rep;
      if (r.ok()) {
        Status st = r->DecodeBody(rep);
        // Refused because it holds this very version: an earlier send landed.
        if (st.ok() && (!rep.refused || rep.version == next)) {
          out->acked.push_back(id);
          continue;
        }
        if (st.ok()) {
          out->refused.emplace_back(id, rep.version);
          continue;
        }
        r = st;
      }
      out->failed.push_back(id);
      if (IsNodeFailure(r.status().code())) MarkSuspect(id);
      LOG_WARN("write ino %lu block %lu to node %u: %s", (unsigned long)ino, (unsigned long)index,
               id, r.status().ToString().c_str());
      if (first_error.ok()) first_error = r.status();
    }
  };
  round(targets);
  // Short of a quorum: the nodes skipped for a recent failure may be back
  // (restarted), so they are asked after all rather than failing the write.
  std::vector<uint32_t> retry;
  for (uint32_t id : skipped)
    if (Alive(id)) retry.push_back(id);
  if (out->acked.size() < need && !retry.empty()) round(retry);
  // Short of a quorum because replicas behind (they missed an earlier write
  // and are not repaired yet) refused it: bring them to this write's
  // version from a replica that took it, so the write still has its copies.
  if (out->acked.size() < need && !out->acked.empty()) {
    for (auto it = out->refused.begin(); it != out->refused.end() && out->acked.size() < need;) {
      if (blockver::Newer(it->second, base) || !CatchUp(*p, ino, index, out->acked[0], it->first, it->second, next).ok()) {
        ++it;
        continue;
      }
      out->acked.push_back(it->first);
      it = out->refused.erase(it);
    }
  }
  auto in = [](const std::vector<uint32_t>& v, uint32_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  // Still short because placed replicas are down: the next nodes clockwise
  // stand in (a sloppy quorum, as in Dynamo), each given the whole block at
  // this version. The commit records them as holders, and the mover brings
  // the block back to its placement once it can.
  if (out->acked.size() < need && !out->acked.empty()) {
    for (uint32_t id : p->ring.Replicas(ring::Ring::BlockKey(ino, index), p->ring.size())) {
      if (out->acked.size() >= need) break;
      if (in(replicas, id) || !Usable(*p, id)) continue;
      wire::BlockVersion held;
      if (!HeldVersion(*p, ino, index, id, &held).ok() ||
          !CatchUp(*p, ino, index, out->acked[0], id, held, next).ok())
        continue;
      LOG_INFO("write ino %lu block %lu: node %u stands in for replicas that are down",
               (unsigned long)ino, (unsigned long)index, id);
      out->acked.push_back(id);
    }
  }
  // Nothing reachable at all: the map's view of who is down may be wrong
  // (a metadata service just restarted knows no one alive yet).
  if (out->acked.empty() && out->refused.empty() && !down.empty()) {
    round(down);
    down.clear();
  }
  for (uint32_t id : replicas)  // the ones never asked
    if (!in(out->acked, id) && !in(out->failed, id) &&
        std::none_of(out->refused.begin(), out->refused.end(), [&](const auto& r) { return r.first == id; }))
      out->failed.push_back(id);
  if (out->acked.size() >= need) return Status::OK();
  if (!out->refused.empty()) {
    return Status::Error(ESTALE, "block " + std::to_string(index) + ": " +
                                     std::to_string(out->refused.size()) +
                                     " replicas hold another version");
  }
  int code = first_error.code() == ENOSPC ? ENOSPC : EIO;
  return Status::Error(code, "block written to " + std::to_string(out->acked.size()) + " of " +
                                 std::to_string(replicas.size()) + " replicas: " +
                                 first_error.ToString());
}

Status Client::HeldVersion(const Placement& p, uint64_t ino, uint64_t index, uint32_t id,
                           wire::BlockVersion* held) {
  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.flags = wire::kBlockVersionOnly;
  auto r = p.nodes.at(id).channel->Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                        opts_.timeout_ms);
  *held = wire::BlockVersion{};
  if (!r.ok()) return r.status().code() == ENOENT ? Status::OK() : r.status();
  wire::BlockReply rep;
  RETURN_IF_ERROR(r->DecodeBody(rep));
  *held = rep.version;
  return Status::OK();
}

Status Client::CatchUp(const Placement& p, uint64_t ino, uint64_t index, uint32_t from, uint32_t to,
                       const wire::BlockVersion& held, const wire::BlockVersion& version) {
  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.length = wire::kBlockSize;
  req.base = version;
  auto r = p.nodes.at(from).channel->Call(wire::Op::kBlockRead, codec::Encode(req), nullptr,
                                          opts_.timeout_ms);
  if (!r.ok()) return r.status();
  wire::BlockReply rep;
  RETURN_IF_ERROR(r->DecodeBody(rep));
  if (rep.refused || !r->has_data) return Status::Error(ESTALE, "source moved on");
  const wire::BlockRequest put = wire::ReplaceRequest(ino, index, held, version);
  zmq::message_t data = std::move(r->data);
  auto w = p.nodes.at(to).channel->Call(wire::Op::kBlockWrite, codec::Encode(put), &data,
                                        opts_.timeout_ms);
  if (!w.ok()) return w.status();
  RETURN_IF_ERROR(w->DecodeBody(rep));
  return rep.refused ? Status::Error(ESTALE, "target moved on") : Status::OK();
}

Status Client::Seed(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                    const std::vector<uint32_t>& sources, uint32_t to, const wire::BlockVersion& held) {
  auto p = Current();
  if (!p->nodes.count(to)) return Status::Error(ENOENT, "node " + std::to_string(to) + " not in the map");
  Status last = Status::Error(EHOSTUNREACH, "no holder of the block to copy from");
  for (uint32_t from : sources) {
    if (from == to || !p->nodes.count(from) || !Usable(*p, from)) continue;
    last = CatchUp(*p, ino, index, from, to, held, version);
    if (last.ok()) return last;
  }
  return last;
}

Result<BlockData> Client::Read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                               const wire::BlockVersion& want,
                               std::vector<wire::BlockVersion>* seen,
                               const std::vector<uint32_t>* from) {
  auto p = Current();
  std::vector<uint32_t> replicas;
  if (from) {
    for (uint32_t id : *from)
      if (p->nodes.count(id)) replicas.push_back(id);
  } else {
    replicas = p->ring.Replicas(ring::Ring::BlockKey(ino, index), p->map.replicas);
  }
  // Healthy replicas first, then the rest as a last resort.
  std::vector<uint32_t> order;
  for (uint32_t id : replicas)
    if (Usable(*p, id)) order.push_back(id);
  for (uint32_t id : replicas)
    if (!Usable(*p, id)) order.push_back(id);

  wire::BlockRequest req;
  req.ino = ino;
  req.index = index;
  req.offset = offset;
  req.length = len;
  req.base = want;
  const std::string body = codec::Encode(req);
  bool other_version = false;
  Status last = Status::Error(EIO, "no replica could be read");
  for (uint32_t id : order) {
    auto r = p->nodes.at(id).channel->Call(wire::Op::kBlockRead, body, nullptr, opts_.timeout_ms);
    if (r.ok()) {
      wire::BlockReply rep;
      Status st = r->DecodeBody(rep);
      if (st.ok() && rep.refused) {  // a copy at another version: never served
        other_version = true;
        if (seen) seen->push_back(rep.version);
        continue;
      }
      if (st.ok() && r->has_data && r->data.size() == rep.length && rep.length <= len) {
        return BlockData{std::move(r->data), rep.length};
      }
      last = Status::Error(EIO, "malformed read reply from node " + std::to_string(id));
      continue;
    }
    if (r.status().code() == ENOENT) {  // this copy does not exist
      other_version = true;
      if (seen) seen->push_back(wire::BlockVersion{});
      continue;
    }
    if (IsNodeFailure(r.status().code())) MarkSuspect(id);
    if (r.status().code() == EIO && on_bad_copy_) on_bad_copy_(ino, index, id, want);  // checksum
    LOG_WARN("read ino %lu block %lu from node %u: %s", (unsigned long)ino, (unsigned long)index,
             id, r.status().ToString().c_str());
    last = r.status();
  }
  if (other_version)
    return Status::Error(ESTALE, "block " + std::to_string(index) + ": no replica reached holds its current version");
  return Status::Error(EIO, "block " + std::to_string(index) + ": " + last.ToString());
}

Status Client::Truncate(uint64_t ino, uint64_t size, const wire::BlockVersion& cut_base,
                        const wire::BlockVersion& cut_next, TruncateResult* out) {
  *out = TruncateResult{};
  auto p = Current();
  wire::BlockRequest req;
  req.ino = ino;
  req.index = size / wire::kBlockSize;
  req.size = size;
  req.base = cut_base;
  req.version = cut_next;
  const std::string body = codec::Encode(req);
  std::vector<std::pair<uint32_t, rpc::Pending>> calls;
  // The cut block's replicas are asked even if the map shows them down when
  // too few are up (a metadata service just restarted knows no node alive
  // until their next heartbeat); for the rest, a node the map shows down
  // keeps its blocks (the service no longer records them: holes).
  std::vector<uint32_t> placed;
  if (!cut_next.absent()) placed = p->ring.Replicas(ring::Ring::BlockKey(ino, req.index), p->map.replicas);
  size_t placed_up = 0;
  for (uint32_t id : placed) placed_up += Up(*p, id);
  const bool ask_placed = placed_up < blockver::Quorum(p->map.replicas);
  for (const auto& [id, node] : p->nodes) {
    // One only suspected here (it failed a call lately) is asked all the same.
    const bool needed = ask_placed && std::find(placed.begin(), placed.end(), id) != placed.end();
    if (!Up(*p, id) && !needed) {
      out->missed.push_back(id);
      continue;
    }
    calls.emplace_back(id, node.channel->Start(wire::Op::kBlockTruncate, body, nullptr,
                                               opts_.timeout_ms));
  }
  Status result;
  for (auto& [id, call] : calls) {
    auto r = call.Wait(opts_.timeout_ms);
    wire::BlockReply rep;
    if (r.ok() && r->DecodeBody(rep).ok()) {
      if (rep.refused) {
        out->refused.emplace_back(id, rep.version);
      } else if (!cut_next.absent() && rep.version == cut_next) {
        out->cut.push_back(id);
      }
      continue;
    }
    if (!r.ok() && IsNodeFailure(r.status().code())) MarkSuspect(id);
    out->missed.push_back(id);
    if (!r.ok() && !IsNodeFailure(r.status().code())) result = r.status();
  }
  return result;
}

Status Client::Sync(const std::set<uint32_t>& nodes, std::set<uint32_t>* synced_out) {
  auto p = Current();
  std::vector<std::pair<uint32_t, rpc::Pending>> calls;
  for (uint32_t id : nodes) {
    auto it = p->nodes.find(id);
    if (it == p->nodes.end()) continue;
    calls.emplace_back(id, it->second.channel->Start(wire::Op::kBlockSync, codec::Encode(wire::BlockRequest{}),
                                                     nullptr, opts_.timeout_ms));
  }
  // syncfs may take a while on a live node; one the map shows down is given
  // up on at once, and all share one deadline (not one each, in turn).
  Status first_error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.timeout_ms * 4);
  for (auto& [id, call] : calls) {
    while (!call.Poll(200) && Alive(id) && std::chrono::steady_clock::now() < deadline) {
    }
    auto r = call.Poll(0) ? call.Wait(0) : Result<rpc::Message>(Status::Error(ETIMEDOUT, "sync of node " + std::to_string(id) + " did not finish"));
    if (r.ok()) {
      if (synced_out) synced_out->insert(id);
    } else {
      if (IsNodeFailure(r.status().code())) MarkSuspect(id);
      if (first_error.ok()) first_error = r.status();
    }
  }
  return first_error;
}

Status Client::Call(uint32_t node, wire::Op op, const wire::BlockRequest& req,
                    wire::BlockReply* rep) {
  auto p = Current();
  auto it = p->nodes.find(node);
  if (it == p->nodes.end()) return Status::Error(ENXIO, "no node " + std::to_string(node));
  return it->second.channel->Invoke(op, req, rep, opts_.timeout_ms);
}

}  // namespace ringfs::blockd
