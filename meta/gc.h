// Block maintenance: reclamation, repair of under-replicated blocks and
// data movement after membership changes (mover.cc), on one thread, so a
// copy never interleaves with the deletion of the same file's blocks.
// Reclaim puts a dead file's inode into the `gc` table; a
// background thread asks every registered block node to delete that inode's
// blocks and drops the entry only once all of them have (a node that is down
// keeps the entry, and is asked again when it is back). Never on the request
// path: it reads the store and sends RPCs on its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/rpc.h"
#include "meta/namespace.h"
#include "meta/nodes.h"
#include "ring/ring.h"

namespace ringfs::meta {

class BlockReclaimer {
 public:
  struct Options {
    int interval_ms = 1000;     // retry period for entries some node still holds
    int rpc_timeout_ms = 1000;  // per delete; a slow node is retried next pass
    size_t batch = 256;         // entries per pass
    size_t repair_batch = 64;   // blocks repaired per pass
    int repair_timeout_ms = 10000;  // whole-block copies
    // Copy rate of data movement and repair, bytes/s (0: unlimited). 64 MiB/s
    // kept foreground sequential writes at >= 50% of idle speed on the dev
    // box (bench/rebalance.sh); raise it on faster disks and networks.
    uint64_t move_rate = 64ull << 20;
    int idle_pass_ms = 30000;  // a full check of every block this often when nothing changed
    int slice_ms = 300;        // one turn of the mover before gc and repair run again
    size_t scan_batch = 512;   // block records read per scan step
  };
  BlockReclaimer(Namespace* ns, NodeRegistry* nodes, Options opts);
  ~BlockReclaimer();

  void Start();
  void Stop();
  void Kick();  // new entries are waiting: run a pass soon
  // One pass over up to `batch` entries; returns how many were finished.
  size_t RunOnce();
  // One pass over up to `repair_batch` blocks with fewer holders than
  // copies (repair.cc): each placed replica that is alive and does not hold
  // the committed version gets it from one that does; returns how many.
  size_t RepairOnce();
  // One slice of the mover (mover.cc): walks every block record, copies
  // each to the placed nodes that lack it, then drops copies off their
  // placement; returns the blocks it changed.
  size_t MoveOnce();
  // What moves from `before` to `after`, per node (a scan of the records).
  Result<std::vector<wire::NodeMove>> Plan(const wire::ClusterMap& before,
                                           const wire::ClusterMap& after) const;
  wire::Health health() const;

 private:
  void Loop();
  rpc::Channel& ChannelFor(const std::string& addr);
  Status RepairBlock(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                     const wire::NodeInfo& target, const std::vector<const wire::NodeInfo*>& sources);

  Namespace* ns_;
  NodeRegistry* nodes_;
  Options opts_;
  std::map<std::string, std::unique_ptr<rpc::Channel>> channels_;
  std::map<uint64_t, std::set<uint32_t>> acked_;  // ino → nodes that deleted it
  std::pair<uint64_t, uint64_t> repair_from_{0, 0};  // where the next repair pass starts

  // The mover's pass over every block record (mover.cc).
  struct Pass {
    bool active = false;
    std::pair<uint64_t, uint64_t> from{0, 0};
    std::string signature;  // of the map it started under (membership and liveness)
    uint64_t blocks = 0, under = 0, misplaced = 0;
    std::set<uint32_t> draining;    // draining when the pass started
    std::set<uint32_t> referenced;  // nodes some record still names as holder
    std::chrono::steady_clock::time_point ended{};
  };
  // Bytes a copy of `bytes` may start after waiting, by the rate limit;
  // false when the wait would pass `deadline`.
  bool Throttle(uint64_t bytes, std::chrono::steady_clock::time_point deadline);
  void NoteCopied(uint64_t bytes);
  // Brings one block to its placement.
  enum class MoveResult { kDone, kChanged, kOutOfTime };
  using NodeIndex = std::map<uint32_t, const wire::NodeInfo*>;
  MoveResult MoveBlock(const Namespace::BlockItem& item, const wire::ClusterMap& map,
                       const NodeIndex& nodes, const ring::Ring& ring,
                       std::chrono::steady_clock::time_point deadline);
  Status DropCopy(const wire::NodeInfo& node, uint64_t ino, uint64_t index,
                  const wire::BlockVersion& version, bool* dropped);
  Pass pass_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point refill_{};
  mutable std::mutex health_mu_;
  wire::Health health_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_samples_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, kicked_ = false;
  std::thread thread_;
};

}  // namespace ringfs::meta
