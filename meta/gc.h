// Block maintenance: reclamation and repair of under-replicated blocks, on
// one thread.
// Reclaim puts a dead file's inode into the `gc` table; a
// background thread asks every registered block node to delete that inode's
// blocks and drops the entry only once all of them have (a node that is down
// keeps the entry, and is asked again when it is back). Never on the request
// path: it reads the store and sends RPCs on its own thread.
#pragma once

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

namespace ringfs::meta {

class BlockReclaimer {
 public:
  struct Options {
    int interval_ms = 1000;     // retry period for entries some node still holds
    int rpc_timeout_ms = 1000;  // per delete; a slow node is retried next pass
    size_t batch = 256;         // entries per pass
    size_t repair_batch = 64;   // blocks repaired per pass
    int repair_timeout_ms = 10000;  // whole-block copies
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

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, kicked_ = false;
  std::thread thread_;
};

}  // namespace ringfs::meta
