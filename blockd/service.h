// BlockService: the block daemon's RPC front end. Serves the kBlock* ops of
// common/wire.h from a BlockStore, and keeps the node registered with the
// metadata service (a heartbeat every second). Serving never waits on the
// metadata service: registration runs on its own thread and just retries.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "blockd/block_store.h"
#include "blockd/scrub.h"
#include "gossip/zmq_gossip.h"
#include "common/rpc.h"
#include "common/status.h"

namespace ringfs::blockd {

struct ServiceOptions {
  std::string dir;  // data directory (blocks and node_id)
  std::string listen = "tcp://127.0.0.1:*";
  std::string advertise;  // address given to the cluster; empty = bound endpoint
  // Any member of the cluster (the metadata service or a block daemon): the
  // metadata service is found through its gossip view.
  std::string meta;
  std::string gossip;     // gossip PUB endpoint; empty = the advertised host, any port
  std::string zone = "default";
  uint32_t weight = 100;
  uint64_t capacity = 0;        // bytes; 0 = the filesystem's size
  int workers = 8;              // disk I/O blocks a worker, so several
  int heartbeat_ms = 1000;      // registration / liveness period
  int meta_timeout_ms = 1000;   // one registration call
  bool early_writeback = true;  // see BlockStoreOptions
  uint64_t scrub_rate = 8ull << 20;  // background checksum scrub, bytes/s (0: off)
  int scrub_pause_ms = 60000;        // rest between full scrub passes
};

// Writes `text` to `path` through a temp file, fsync and rename, so a reader

class BlockService {
 public:
  // Opens the store, binds, starts serving and registering.
  static Result<std::unique_ptr<BlockService>> Start(const ServiceOptions& opts);
  ~BlockService();
  void Stop();

  // The bound endpoint (a wildcard port resolved), e.g. tcp://127.0.0.1:41234.
  const std::string& endpoint() const { return server_->endpoint(); }
  // The id the metadata service knows this node by; 0 until registered.
  uint32_t node_id() const { return node_id_; }
  BlockStore& store() { return *store_; }

 private:
  explicit BlockService(const ServiceOptions& opts);
  void Handle(rpc::Message&& m, rpc::Responder&& r);
  void HandleWrite(const rpc::Message& m, rpc::Responder& r);
  void HandleRead(const rpc::Message& m, rpc::Responder& r);
  wire::NodeInfo Info() const;
  Status LoadStoreId();
  Status LoadNodeId();
  Status SaveNodeId(uint32_t id);
  Status RegisterOnce();
  void HeartbeatLoop();
  void ReportBad(uint64_t ino, uint64_t index, const wire::BlockVersion& version);

  ServiceOptions opts_;
  std::unique_ptr<BlockStore> store_;
  std::unique_ptr<rpc::Server> server_;
  // The metadata service, as resolved from opts_.meta (again after
  // repeated registration failures, in case it moved).
  std::shared_ptr<rpc::Channel> Meta();
  void ResolveMeta();
  std::mutex meta_mu_;
  std::shared_ptr<rpc::Channel> meta_;
  // Gossip, started once the node has an id (and restarted if it changes).
  void EnsureGossip(uint32_t id, const std::string& seed, uint64_t epoch);
  std::mutex gossip_mu_;
  std::unique_ptr<gossip::ZmqGossip> gossip_;
  uint32_t gossip_id_ = 0;
  std::string gossip_seed_;
  std::atomic<uint32_t> node_id_{0};
  uint64_t store_id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread heartbeat_;
  std::unique_ptr<Scrubber> scrub_;
};

}  // namespace ringfs::blockd
