// Placement-aware, replicated block I/O: the client side of the block
// daemons. The ring (built from the cluster map) names each block's replicas;
// writes fan out to all of them in parallel, reads go to one healthy replica
// and fail over to the next.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/rpc.h"
#include "common/wire.h"
#include "ring/ring.h"

namespace ringfs::blockd {

struct ClientOptions {
  int timeout_ms = 5000;        // one block RPC; a dead peer costs at most this once
  // A write past `timeout_ms` keeps waiting while the cluster map still shows
  // its node alive (heartbeating): a node slowed by a busy disk is not dead,
  // and giving up on it would fail the write. Bounded by this.
  int slow_write_ms = 120000;
  int suspect_ms = 5000;        // after a failure, a node is skipped this long
};

// A read result: `data` holds `length` bytes of the block starting at the
// requested offset; bytes past `length` up to the requested size are zeros.
struct BlockData {
  zmq::message_t data;
  uint32_t length = 0;
};

class Client {
 public:
  explicit Client(ClientOptions opts = {});

  // Called (on the reading thread) for each replica whose copy of a block
  // failed its checksum, so it can be dropped and repaired. Set before use.
  using BadCopyHandler = std::function<void(uint64_t ino, uint64_t index, uint32_t node,
                                            const wire::BlockVersion& version)>;
  void OnBadCopy(BadCopyHandler h) { on_bad_copy_ = std::move(h); }

  // Liveness from gossip, consulted before the map's alive flags (which the
  // map only refreshes when it is fetched). Empty optional: not known.
  using Liveness = std::function<std::optional<bool>(uint32_t node)>;
  void SetLiveness(Liveness l) {
    std::lock_guard<std::mutex> lock(mu_);
    liveness_ = std::move(l);
  }

  // Installs a new cluster map (rebuilds the ring; keeps connections).
  void SetMap(const wire::ClusterMap& map);
  uint64_t epoch() const;
  wire::ClusterMap map() const;

  std::vector<uint32_t> Replicas(uint64_t ino, uint64_t index) const;
  // Copies a write needs (and that must agree on an uncommitted version).
  size_t Quorum() const;

  // What each replica did with a write.
  struct WriteResult {
    std::vector<uint32_t> acked;  // now at the write's version
    // Not at the write's base (nothing written): the version each holds.
    std::vector<std::pair<uint32_t, wire::BlockVersion>> refused;
    std::vector<uint32_t> failed;  // down, skipped or erred
  };
  // Writes `len` bytes of `buf` at `buf_offset` to block (ino, index) at
  // `offset` on every replica, each only if it holds `base`, moving it to
  // `next`. OK once a quorum acknowledged.
  // With `ranges`, the bytes are those ranges back to back (`offset` unused).
  // `flags`: more wire::BlockFlags (kBlockReplace: the data becomes the block).
  Status Write(uint64_t ino, uint64_t index, uint32_t offset,
               std::shared_ptr<const std::string> buf, size_t buf_offset, size_t len, bool sync,
               const wire::BlockVersion& base, const wire::BlockVersion& next, WriteResult* out,
               const std::vector<wire::WriteRange>* ranges = nullptr, uint32_t flags = 0);
  // Reads from the first healthy replica that holds exactly `want`. ESTALE
  // when none does; `seen` then receives what each replica that answered
  // holds (absent for one without the block), for the caller to decide.
  // `from`: ask these nodes instead of the block's placement (the holders
  // the metadata service knows of, when the block is moving).
  Result<BlockData> Read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                         const wire::BlockVersion& want,
                         std::vector<wire::BlockVersion>* seen = nullptr,
                         const std::vector<uint32_t>* from = nullptr);
  // Makes replica `to` (holding `held`, older) hold the block at `version`,
  // copied whole from the first of `sources` that has it: a placed replica
  // that lacks a block being moved to it, before a write on top of it.
  Status Seed(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
              const std::vector<uint32_t>& sources, uint32_t to, const wire::BlockVersion& held);

  struct TruncateResult {
    std::vector<uint32_t> cut;  // the cut block moved to the new version here
    std::vector<std::pair<uint32_t, wire::BlockVersion>> refused;  // not at its base
    std::vector<uint32_t> missed;  // not reached: keep their blocks
  };
  // Cuts the inode's data to `size` bytes on every node. The block the cut
  // falls in (if `cut_next` is not absent) moves from `cut_base` to
  // `cut_next` on the replicas at `cut_base`.
  Status Truncate(uint64_t ino, uint64_t size, const wire::BlockVersion& cut_base,
                  const wire::BlockVersion& cut_next, TruncateResult* out);
  // Makes everything written so far durable on the given nodes; `synced`
  // receives those that confirmed.
  Status Sync(const std::set<uint32_t>& nodes, std::set<uint32_t>* synced = nullptr);

  // Direct calls to one node (CLI, tests).
  Status Call(uint32_t node, wire::Op op, const wire::BlockRequest& req, wire::BlockReply* rep);

 private:
  BadCopyHandler on_bad_copy_;
  bool Alive(uint32_t id) const;  // as gossip, else the current cluster map, says
  // Waits for a write's reply; see ClientOptions::slow_write_ms.
  // Re-sends (`resend`) every `timeout_ms` while the node looks alive.
  Result<rpc::Message> WaitWhileAlive(rpc::Pending& call, uint32_t id,
                                      std::chrono::steady_clock::time_point start,
                                      const std::function<rpc::Pending()>& resend);
  struct Node {
    wire::NodeInfo info;
    std::shared_ptr<rpc::Channel> channel;
  };
  struct Placement {
    wire::ClusterMap map;
    ring::Ring ring;
    std::map<uint32_t, Node> nodes;
  };
  std::shared_ptr<const Placement> Current() const;
  // Makes replica `to` (at `held`) hold the block at `version`, copied whole
  // from `from`, which holds it.
  Status CatchUp(const Placement& p, uint64_t ino, uint64_t index, uint32_t from, uint32_t to,
                 const wire::BlockVersion& held, const wire::BlockVersion& version);
  bool Usable(const Placement& p, uint32_t id) const;
  bool Up(const Placement& p, uint32_t id) const;
  // The version node `id` holds of a block (absent when it has none).
  Status HeldVersion(const Placement& p, uint64_t ino, uint64_t index, uint32_t id,
                     wire::BlockVersion* held);
  void MarkSuspect(uint32_t id);

  ClientOptions opts_;
  mutable std::mutex mu_;
  std::shared_ptr<const Placement> placement_;
  std::map<uint32_t, std::chrono::steady_clock::time_point> suspect_until_;
  Liveness liveness_;
};

}  // namespace ringfs::blockd
