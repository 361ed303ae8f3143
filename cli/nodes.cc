#include "cli/nodes.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "blockd/client.h"
#include "cli/format.h"
#include "gossip/join.h"
#include "meta/client.h"
#include "ring/ring.h"

namespace ringfs::cli {

namespace {

Status Unreachable(const std::string& meta, const Status& st) {
  return Status::Error(st.code() == ETIMEDOUT || st.code() == EHOSTUNREACH ? EHOSTUNREACH : st.code(),
                       st.code() == ETIMEDOUT || st.code() == EHOSTUNREACH
                           ? "cluster unreachable: metadata service " + meta + " did not answer"
                           : st.message());
}

Status CallMeta(const std::string& meta, wire::Op op, const wire::MetaRequest& req,
                wire::MetaReply* rep) {
  if (meta.empty()) return Status::Error(EINVAL, "no cluster given (--dir or --meta)");
  meta::Client client(meta, 5000, 0);
  Status st = client.Call(op, req, rep);
  return st.ok() ? st : Unreachable(meta, st);
}

// Each node's share of the ring's copies, from a fixed sample of keys.
std::map<uint32_t, double> Shares(const wire::ClusterMap& map) {
  const ring::Ring ring = ring::Ring::FromMap(map);
  std::map<uint32_t, double> share;
  constexpr uint64_t kSample = 1 << 15;
  uint64_t copies = 0;
  for (uint64_t i = 0; i < kSample; i++) {
    for (uint32_t id : ring.Replicas(ring::Ring::BlockKey(i, 0), map.replicas)) {
      share[id] += 1;
      copies++;
    }
  }
  for (auto& [id, s] : share) s /= copies ? static_cast<double>(copies) : 1;
  return share;
}

const char* Liveness(const wire::NodeInfo& n) { return n.alive ? "up" : "down"; }

std::string NodeJson(const wire::NodeInfo& n, double share) {
  return JsonObject()
      .Field("id", n.id)
      .Field("addr", n.addr)
      .Field("zone", n.zone)
      .Field("weight", n.weight)
      .Field("state", wire::NodeStateName(n.state))
      .Field("alive", n.alive)
      .Field("down_ms", n.down_ms)
      .Field("used_bytes", n.used)
      .Field("total_bytes", n.capacity)
      .Field("blocks", n.blocks)
      .Field("share", share)
      .str();
}

void PrintNodes(const wire::ClusterMap& map, bool all) {
  auto share = Shares(map);
  printf("%-4s %-24s %-8s %6s %-8s %-5s %21s %8s %6s\n", "ID", "ADDRESS", "ZONE", "WEIGHT", "STATE",
         "LIVE", "USED/TOTAL", "BLOCKS", "SHARE");
  for (const auto& n : map.nodes) {
    if (n.state == wire::NodeState::kOut && !all) continue;
    const std::string space = Human(n.used) + "/" + Human(n.capacity);
    printf("%-4u %-24s %-8s %6u %-8s %-5s %21s %8lu %5.1f%%\n", n.id, n.addr.c_str(), n.zone.c_str(),
           n.weight, wire::NodeStateName(n.state), Liveness(n), space.c_str(),
           (unsigned long)n.blocks, 100 * share[n.id]);
  }
}

std::string PlanJson(const wire::MetaReply& rep, bool dry) {
  std::string plan;
  for (const auto& m : rep.plan) {
    plan += (plan.empty() ? "" : ",") + JsonObject()
                                             .Field("id", m.id)
                                             .Field("blocks_in", m.blocks_in)
                                             .Field("bytes_in", m.bytes_in)
                                             .Field("blocks_out", m.blocks_out)
                                             .Field("bytes_out", m.bytes_out)
                                             .Field("share_before", m.share_before)
                                             .Field("share_after", m.share_after)
                                             .str();
  }
  return JsonObject().Field("dry_run", dry).Field("epoch", rep.map.epoch).Raw("plan", "[" + plan + "]").str();
}

void PrintPlan(const wire::MetaReply& rep, bool dry) {
  uint64_t blocks = 0, bytes = 0;
  for (const auto& m : rep.plan) blocks += m.blocks_in, bytes += m.bytes_in;
  printf("%s %lu block copies, %s:\n", dry ? "would move" : "moving", (unsigned long)blocks,
         Human(bytes).c_str());
  printf("%-4s %10s %12s %10s %12s %8s %8s\n", "ID", "BLOCKS IN", "BYTES IN", "BLOCKS OUT",
         "BYTES OUT", "SHARE", "AFTER");
  for (const auto& m : rep.plan) {
    printf("%-4u %10lu %12s %10lu %12s %7.1f%% %7.1f%%\n", m.id, (unsigned long)m.blocks_in,
           Human(m.bytes_in).c_str(), (unsigned long)m.blocks_out, Human(m.bytes_out).c_str(),
           100 * m.share_before, 100 * m.share_after);
  }
}

Status Change(const NodeCommand& c, wire::Op op, const wire::MetaRequest& req, const std::string& done) {
  wire::MetaReply rep;
  RETURN_IF_ERROR(CallMeta(c.meta, op, req, &rep));
  if (c.json) {
    printf("%s\n", PlanJson(rep, c.dry_run).c_str());
    return Status::OK();
  }
  if (!c.dry_run) printf("%s (map epoch %lu)\n", done.c_str(), (unsigned long)rep.map.epoch);
  PrintPlan(rep, c.dry_run);
  if (!c.dry_run) printf("follow it with: ringfs status --watch\n");
  return Status::OK();
}

}  // namespace

Result<std::string> FindMeta(const std::string& addr) {
  auto v = gossip::Discover(addr, 3000);
  if (!v.ok()) return Status::Error(v.status().code(), "cluster unreachable: " + addr + ": " + v.status().message());
  if (v->meta_rpc.empty()) return Status::Error(ENOENT, addr + " knows no metadata service");
  return v->meta_rpc;
}

Status PrintMembers(const std::string& addr, bool json) {
  auto v = gossip::Discover(addr, 3000);
  if (!v.ok()) return Status::Error(v.status().code(), "cluster unreachable: " + addr + ": " + v.status().message());
  if (json) {
    std::string members;
    for (const auto& m : v->members) {
      members += (members.empty() ? "" : ",") + JsonObject()
                                                    .Field("id", m.id)
                                                    .Field("role", m.role)
                                                    .Field("rpc_addr", m.rpc_addr)
                                                    .Field("gossip_addr", m.gossip_addr)
                                                    .Field("zone", m.zone)
                                                    .Field("status", gossip::StatusName(m.status))
                                                    .Field("incarnation", m.incarnation)
                                                    .Field("heartbeat", m.heartbeat)
                                                    .Field("map_epoch", m.map_epoch)
                                                    .str();
    }
    printf("%s\n", JsonObject().Field("from", addr).Raw("members", "[" + members + "]").str().c_str());
    return Status::OK();
  }
  printf("gossip view of %s:\n", addr.c_str());
  printf("%-10s %-6s %-24s %-24s %-8s %-7s %14s %9s\n", "ID", "ROLE", "ADDRESS", "GOSSIP", "ZONE",
         "STATUS", "INCARNATION", "MAP EPOCH");
  for (const auto& m : v->members) {
    printf("%-10u %-6s %-24s %-24s %-8s %-7s %14lu %9lu\n", m.id, m.role.c_str(), m.rpc_addr.c_str(),
           m.gossip_addr.c_str(), m.zone.c_str(), gossip::StatusName(m.status),
           (unsigned long)m.incarnation, (unsigned long)m.map_epoch);
  }
  return Status::OK();
}

Status NodeAdd(const NodeCommand& c) {
  if (c.addr.empty()) return Status::Error(EINVAL, "node add needs the node's address");
  wire::MetaRequest req;
  req.node.addr = c.addr;
  req.node.zone = c.zone;
  req.node.weight = c.weight;
  req.flags = c.dry_run ? uint32_t{wire::kDryRun} : 0u;
  return Change(c, wire::Op::kNodeAdd, req, "added " + c.addr);
}

Status NodeRemove(const NodeCommand& c) {
  if (c.id == 0) return Status::Error(EINVAL, "node remove needs a node id (see ringfs node list)");
  wire::MetaRequest req;
  req.node.id = c.id;
  req.flags = (c.dry_run ? uint32_t{wire::kDryRun} : 0u) | (c.force ? uint32_t{wire::kForce} : 0u);
  return Change(c, wire::Op::kNodeRemove, req,
                c.force ? "node " + std::to_string(c.id) + " is out; its blocks are re-replicated"
                        : "node " + std::to_string(c.id) + " is draining");
}

Status NodeList(const NodeCommand& c) {
  wire::MetaReply rep;
  RETURN_IF_ERROR(CallMeta(c.meta, wire::Op::kGetMap, {}, &rep));
  if (c.json) {
    auto share = Shares(rep.map);
    std::string nodes;
    for (const auto& n : rep.map.nodes) {
      if (n.state == wire::NodeState::kOut && !c.all) continue;
      nodes += (nodes.empty() ? "" : ",") + NodeJson(n, share[n.id]);
    }
    printf("%s\n", JsonObject()
                       .Field("epoch", rep.map.epoch)
                       .Field("replicas", rep.map.replicas)
                       .Raw("nodes", "[" + nodes + "]")
                       .str()
                       .c_str());
    return Status::OK();
  }
  PrintNodes(rep.map, c.all);
  return Status::OK();
}

Status ClusterStatus(const NodeCommand& c) {
  const bool tty = isatty(STDOUT_FILENO);
  while (true) {
    wire::MetaReply rep;
    RETURN_IF_ERROR(CallMeta(c.meta, wire::Op::kClusterStatus, {}, &rep));
    const wire::ClusterMap& map = rep.map;
    const wire::Health& h = rep.health;
    uint32_t in = 0, draining = 0, joining = 0, down = 0;
    std::string down_list;
    for (const auto& n : map.nodes) {
      in += n.state == wire::NodeState::kIn;
      draining += n.state == wire::NodeState::kDraining;
      joining += n.state == wire::NodeState::kJoining;
      if (wire::HoldsData(n.state) && !n.alive) {
        down++;
        down_list += (down_list.empty() ? "" : ", ") + std::to_string(n.id) + " (" +
                     std::to_string(n.down_ms / 1000) + " s)";
      }
    }
    const uint64_t left = h.move_total_bytes > h.move_done_bytes ? h.move_total_bytes - h.move_done_bytes : 0;
    const bool healthy = down == 0 && h.under_replicated == 0 && h.misplaced == 0 && !h.moving;
    if (c.json) {
      std::string nodes;
      auto share = Shares(map);
      for (const auto& n : map.nodes)
        if (n.state != wire::NodeState::kOut) nodes += (nodes.empty() ? "" : ",") + NodeJson(n, share[n.id]);
      printf("%s\n", JsonObject()
                         .Field("epoch", map.epoch)
                         .Field("replicas", map.replicas)
                         .Field("healthy", healthy)
                         .Field("nodes_in", in)
                         .Field("nodes_draining", draining)
                         .Field("nodes_joining", joining)
                         .Field("nodes_down", down)
                         .Field("blocks", h.blocks)
                         .Field("under_replicated", h.under_replicated)
                         .Field("misplaced", h.misplaced)
                         .Field("checks", h.passes)
                         .Field("moving", h.moving)
                         .Field("move_total_bytes", h.move_total_bytes)
                         .Field("move_done_bytes", h.move_done_bytes)
                         .Field("moved_bytes", h.moved_bytes)
                         .Field("rate_bytes_per_s", h.rate_bytes_per_s)
                         .Field("rate_limit", h.rate_limit)
                         .Field("journal_written_seq", rep.journal.written_seq)
                         .Field("journal_durable_seq", rep.journal.durable_seq)
                         .Field("journal_checkpoint_seq", rep.journal.checkpoint_seq)
                         .Field("journal_flushes", rep.journal.flushes)
                         .Field("journal_max_lag_us", rep.journal.max_lag_us)
                         .Field("checkpoints", rep.journal.checkpoints)
                         .Field("max_checkpoint_us", rep.journal.max_checkpoint_us)
                         .Field("durability", std::string(rep.journal.strict ? "strict" : "journal"))
                         .Raw("nodes", "[" + nodes + "]")
                         .str()
                         .c_str());
    } else {
      if (c.watch && tty) printf("\033[H\033[J");
      printf("cluster: %s; map epoch %lu, %u copies; meta %s\n", healthy ? "healthy" : "degraded",
             (unsigned long)map.epoch, map.replicas, c.meta.c_str());
      printf("nodes:   %u in, %u draining, %u joining, %u down%s%s\n", in, draining, joining, down,
             down ? ": " : "", down_list.c_str());
      const wire::JournalState& j = rep.journal;
      printf("journal: %s; seq %lu written, %lu on disk, %lu checkpointed (%lu checkpoints, longest %.1f ms)\n",
             j.strict ? "strict" : "flushed within the interval", (unsigned long)j.written_seq,
             (unsigned long)j.durable_seq, (unsigned long)j.checkpoint_seq, (unsigned long)j.checkpoints,
             j.max_checkpoint_us / 1000.0);
      if (h.passes == 0) {
        printf("blocks:  first check under way\n");
      } else {
        printf("blocks:  %lu; %lu under-replicated, %lu misplaced (last full check)\n",
               (unsigned long)h.blocks, (unsigned long)h.under_replicated, (unsigned long)h.misplaced);
      }
      if (h.moving) {
        const double frac = h.move_total_bytes ? static_cast<double>(h.move_done_bytes) / h.move_total_bytes : 0;
        const int width = 30, filled = static_cast<int>(std::min(1.0, frac) * width);
        std::string bar(filled, '#');
        bar.append(width - filled, '-');
        std::string eta = h.rate_bytes_per_s ? std::to_string(left / h.rate_bytes_per_s) + " s left" : "";
        printf("moving:  [%s] %3.0f%%  %s of %s, %s/s%s%s\n", bar.c_str(), 100 * std::min(1.0, frac),
               Human(h.move_done_bytes).c_str(), Human(h.move_total_bytes).c_str(),
               Human(h.rate_bytes_per_s).c_str(), eta.empty() ? "" : ", ", eta.c_str());
      } else {
        printf("moving:  nothing (%s moved since the service started)\n", Human(h.moved_bytes).c_str());
      }
      PrintNodes(map, false);
    }
    fflush(stdout);
    if (!c.watch) return Status::OK();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace ringfs::cli
