// The node registry: which block daemons exist (persisted in LMDB: id,
// address, zone, weight) and which are alive (in memory, from heartbeats).
// Together they form the cluster map that clients and daemons place blocks by.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "common/status.h"
#include "common/wire.h"
#include "meta/lmdb_env.h"

namespace ringfs::meta {

class NodeRegistry {
 public:
  struct Options {
    uint32_t replicas = wire::kDefaultReplicas;
    int node_timeout_ms = 3000;       // a node silent this long is not alive
    std::function<int64_t()> now_ms;  // monotonic clock; steady_clock when empty
  };
  static Result<std::unique_ptr<NodeRegistry>> Open(lmdb::Env* env, Options opts);

  // A heartbeat or first registration. id 0 asks for an id (a known address
  // gets its old one back); returns the id the node is known by.
  Result<uint32_t> Register(const wire::NodeInfo& info);
  wire::ClusterMap Map();

  struct Space {
    uint64_t capacity = 0, used = 0;
    uint32_t alive = 0;
  };
  Space AliveSpace();  // summed over alive nodes
  uint32_t replicas() const { return opts_.replicas; }

 private:
  struct Entry {
    wire::NodeInfo info;
    int64_t last_ms = 0;  // last heartbeat
    bool heard = false;   // any heartbeat since this process started
  };
  NodeRegistry(lmdb::Env* env, Options opts) : env_(env), opts_(std::move(opts)) {}
  Status Load();
  // Stores the epoch, next id and (if given) one node's identity.
  Status Persist(const wire::NodeInfo* node);
  // Recomputes alive flags; true when any changed.
  bool RefreshLiveness();
  int64_t Now() const;

  lmdb::Env* env_;
  Options opts_;
  std::mutex mu_;
  std::map<uint32_t, Entry> nodes_;
  // Bumped on every membership, address or liveness change, and on restart
  // (liveness is unknown then), and persisted each time so it never goes back.
  uint64_t epoch_ = 0;
  uint64_t next_id_ = 1;
};

}  // namespace ringfs::meta
