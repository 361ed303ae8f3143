// The node registry: the cluster map. Which block daemons exist and where
// each stands (joining, in, draining, out: wire::NodeState), persisted in
// LMDB with an epoch; and which are alive (in memory, from heartbeats).
// Membership changes only by an operator's command (Admit, Remove) or by the
// down-out rule; a node being down moves nothing until then.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "meta/lmdb_env.h"

namespace ringfs::meta {

class NodeRegistry {
 public:
  struct Options {
    uint32_t replicas = wire::kDefaultReplicas;
    int node_timeout_ms = 3000;       // a node silent this long is not alive
    // An `in` node down this long is marked out and its blocks are copied
    // elsewhere (Ceph's mon_osd_down_out_interval is 10 minutes too): long
    // enough for a reboot, short enough not to sit at RF-1 for a day.
    int64_t down_out_ms = 600000;
    std::function<int64_t()> now_ms;  // monotonic clock; steady_clock when empty
    // A node's liveness as gossip sees it, when gossip knows the node: alive
    // if this or its heartbeats say so. Called under the registry's lock.
    std::function<std::optional<bool>(uint32_t id)> gossip_alive;
    // Called (under the registry's lock) with each new map epoch.
    std::function<void(uint64_t epoch)> on_epoch;
  };
  static Result<std::unique_ptr<NodeRegistry>> Open(lmdb::Env* env, Options opts);

  // A block daemon's heartbeat or first registration.
  struct Registration {
    uint32_t id = 0;
    bool reset_store = false;  // the node must discard every block it holds
  };
  // id 0 asks for an id (a known address gets its old one back when it is
  // the same store). A store that is not the one the map knows under that
  // id or address (wiped, replaced) takes the old node's place under a new
  // id, and the old id goes out: its copies are gone. An out node that
  // comes back is new too, and must discard what it holds.
  Result<Registration> Register(const wire::NodeInfo& info);
  wire::ClusterMap Map();
  uint64_t epoch();

  // Admits the joining node at `addr` (or with id `id`), with `zone` and
  // `weight` when given (empty / UINT32_MAX: as it registered). `dry_run`:
  // returns the map it would make, changes nothing.
  Result<wire::ClusterMap> Admit(uint32_t id, const std::string& addr, const std::string& zone,
                                 uint32_t weight, bool dry_run);
  // Drains node `id` (`force`: marks it out at once, its copies written
  // off). Refused when fewer than `replicas` nodes would stay in.
  Result<wire::ClusterMap> Remove(uint32_t id, bool force, bool dry_run);
  // The mover found no copy left on draining node `id`: it is out.
  Status FinishDrain(uint32_t id);
  // Marks out every in node that has been down longer than down_out_ms;
  // returns how many.
  size_t ApplyDownOut();

  struct Space {
    uint64_t capacity = 0, used = 0;
    uint32_t alive = 0;
  };
  Space AliveSpace();  // summed over alive nodes that hold data
  uint32_t replicas() const { return opts_.replicas; }

 private:
  struct Entry {
    wire::NodeInfo info;
    int64_t last_ms = 0;       // last heartbeat
    bool heard = false;        // any heartbeat since this process started
    int64_t down_since = -1;   // when it was last seen going down (-1: up)
  };
  NodeRegistry(lmdb::Env* env, Options opts) : env_(env), opts_(std::move(opts)) {}
  Status Load();
  // Bumps the epoch and stores it, the next id and the given nodes' records.
  Status Commit(const std::vector<const wire::NodeInfo*>& changed);
  // Recomputes alive flags and down times; true when any alive flag changed.
  bool RefreshLiveness();
  int64_t Now() const;
  uint32_t InCount() const;
  Result<uint32_t> NewId();
  // A new node taking `old`'s place (same zone, weight, state, token); old
  // goes out. Both are appended to `changed`.
  Result<Entry*> Replace(Entry& old, const wire::NodeInfo& info,
                         std::vector<const wire::NodeInfo*>* changed);
  wire::ClusterMap MapLocked() const;

  lmdb::Env* env_;
  Options opts_;
  std::mutex mu_;
  std::map<uint32_t, Entry> nodes_;
  int64_t started_ms_ = 0;
  // Bumped on every membership, address or liveness change, and on restart
  // (liveness is unknown then), and persisted each time so it never goes back.
  uint64_t epoch_ = 0;
  uint64_t next_id_ = 1;
};

}  // namespace ringfs::meta
