// Group commit: every mutation goes to one writer thread, which takes all
// that are queued, applies each in its own nested transaction, commits the
// batch with one sync, and only then answers them. Under load many clients
// share each fsync instead of queueing behind one another's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "common/wire.h"
#include "meta/namespace.h"

namespace ringfs::meta {

class GroupCommit {
 public:
  // Runs on the writer thread once the op's batch is durable (or failed).
  using Done = std::function<void(const Status&, wire::MetaReply&)>;

  GroupCommit(Namespace* ns, size_t max_batch);
  ~GroupCommit();
  void Start();
  // Applies everything already queued, then ends the writer thread.
  void Stop();

  void Submit(wire::Op op, wire::MetaRequest req, Done done);

  uint64_t batches() const { return batches_; }
  uint64_t ops() const { return ops_; }

 private:
  struct Item {
    wire::Op op;
    wire::MetaRequest req;
    Done done;
  };
  void Loop();
  void RunBatch(std::deque<Item>& items);

  Namespace* ns_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread writer_;
  std::atomic<uint64_t> batches_{0}, ops_{0};
  size_t last_batch_ = 0;    // writer thread only: ops in the last commit
  size_t queued_after_ = 0;  // writer thread only: ops waiting when it ended
  static constexpr int kGatherUs = 300;  // ~2 RPC round trips on loopback
};

}  // namespace ringfs::meta
