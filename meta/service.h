// ringfs-meta: the metadata service. Answers MetaRequests over the RPC layer
// on its I/O thread: reads and mutations alike take microseconds (a
// mutation is acknowledged once it is in the journal, lmdb_env.h), node ops
// go through the registry. Strict durability holds each reply until the
// journal flush that covers it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/rpc.h"
#include "common/status.h"
#include "meta/events.h"
#include "meta/gc.h"
#include "common/lock_table.h"
#include "meta/namespace.h"
#include "meta/nodes.h"
#include "meta/open_files.h"
#include "gossip/zmq_gossip.h"

namespace ringfs::meta {

// Every tunable of the service, each with its default and why.
struct ServiceOptions {
  std::string dir;                             // the store lives in DIR/meta.lmdb
  std::string listen = "tcp://127.0.0.1:*";    // loopback, any port: safe for a dev box
  std::string addr_file;                       // where to publish the bound endpoint
  uint32_t replicas = wire::kDefaultReplicas;  // RF=3 survives two lost nodes
  int node_timeout_ms = 3000;                  // three missed 1 s heartbeats mean down
  // 0: reads are served on the RPC I/O thread (LMDB reads take microseconds,
  // a hand-off to a worker costs more); writes have their own thread.
  int workers = 0;
  // Metadata durability (lmdb_env.h): an ack is in the journal; it is on
  // disk within about flush_interval_ms, or before the reply when strict.
  bool strict = false;
  int flush_interval_ms = 10;
  int checkpoint_ms = 1000;                    // LMDB commits (full sync) this often
  uint64_t checkpoint_bytes = 32ull << 20;     // or after this much journal
  uint64_t segment_bytes = 64ull << 20;        // journal segment file size
  int gc_interval_ms = 1000;                   // how often unfinished block reclamation is retried
  // A client session silent this long is gone (clients beat every 5 s), and
  // its open files no longer keep unlinked files from being reclaimed.
  int session_timeout_ms = 20000;
  int sweep_interval_ms = 2000;                // expiry and orphan sweep period
  // A lock request waits at most this long per round trip, then the client
  // asks again (below its RPC timeout; a dead client's wait never lingers).
  int lock_wait_ms = 5000;
  // An in node down this long is marked out and re-replicated (Ceph's
  // down-out interval is 10 minutes too: a reboot does not move data).
  int64_t down_out_ms = 600000;
  uint64_t move_rate = 64ull << 20;  // data movement bytes/s; see BlockReclaimer::Options
  int idle_pass_ms = 30000;          // full block check period when nothing changed
  // Gossip PUB endpoint; empty = the --listen host, any port. It is given
  // to block daemons as their seed when they register.
  std::string gossip;
  // Namespace change events PUB endpoint; empty = the --listen host, any port.
  std::string events;
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> Open(ServiceOptions opts);
  ~Service();

  // Binds, starts every thread and publishes the endpoint to --addr-file.
  Status Start();
  void Stop();
  const std::string& endpoint() const { return server_->endpoint(); }

  wire::JournalState journal_state() const;

 private:
  explicit Service(ServiceOptions opts) : opts_(std::move(opts)) {}
  void Handle(rpc::Message&& m, rpc::Responder&& r);
  Status HandleDirect(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep);
  void PublishChanges(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep);
  // Sends a mutation's reply: at once, or in strict mode once it is on disk.
  // `sync`: this one waits for the disk in any mode (the client asked).
  void Acknowledge(rpc::Responder&& r, const Status& st, wire::MetaReply&& rep, bool sync = false);
  // Queued; a no-op unless `ino` is an orphan open nowhere. Answers `resp`
  // (a client's kReclaim) once done.
  // Returns whether it reclaimed it here and now.
  // after_reply: claim it now (the answer), remove it once replies are sent.
  bool Reclaim(uint64_t ino, std::shared_ptr<rpc::Responder> resp = nullptr, bool after_reply = false);
  bool InGrace();
  // Heard from: recorded; no longer awaited after a restart once it sent
  // its full list of opens (a beat).
  void SeeSession(uint64_t session, bool full_list);
  void SweepLoop();
  void HandleLock(wire::Op op, const wire::MetaRequest& req, rpc::Responder&& r);
  // A session's locks, re-asserted by its first beat after a restart.
  void ReclaimLocks(const wire::MetaRequest& req);
  Status StartGossip();

  ServiceOptions opts_;
  std::unique_ptr<Namespace> ns_;
  std::unique_ptr<NodeRegistry> nodes_;
  std::unique_ptr<BlockReclaimer> gc_;
  OpenFiles open_files_;
  std::unique_ptr<LockTable> locks_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex session_mu_;
  std::set<uint64_t> awaiting_;  // recorded before a restart, not heard from since
  std::set<uint64_t> recorded_;  // in the `sessions` table
  std::thread sweeper_;
  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool sweep_stop_ = false;
  // Membership and liveness spread to and from every daemon and mount.
  std::unique_ptr<gossip::ZmqGossip> gossip_;
  std::atomic<gossip::ZmqGossip*> gossip_live_{nullptr};  // set once started
  EventPublisher events_;
  std::unique_ptr<rpc::Server> server_;  // last: destroyed first
};


}  // namespace ringfs::meta
