// Namespace change events: which directory entries changed, published on a
// ZeroMQ PUB socket for mounts that answer lookups of absent names locally
// (fuse/dir_cache.h). Best effort by design: a subscriber that misses one
// (a gap in `seq`, a new incarnation, or no tick for a while) drops all it
// knows, so a lost event costs speed, never correctness.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"
#include "common/wire.h"

namespace ringfs::meta {

class EventPublisher {
 public:
  static constexpr int kTickMs = 200;  // a subscriber hears something this often

  EventPublisher();
  ~EventPublisher();
  // Binds `endpoint` (a wildcard port becomes the real one) and starts ticking.
  Status Start(const std::string& endpoint);
  void Stop();
  const std::string& endpoint() const { return endpoint_; }
  // One event; returns its seq. Changes made by `session` (0: the service):
  // names in directories, and inodes whose attributes changed.
  uint64_t Publish(uint64_t session, std::vector<wire::DirChange> changes, std::vector<uint64_t> inodes = {});
  // The newest seq and this incarnation: a listing read now reflects every
  // event up to it.
  uint64_t seq() const { return seq_.load(); }
  uint64_t incarnation() const { return incarnation_; }

 private:
  void Send(const wire::DirEvents& ev);  // under mu_
  void TickLoop();

  const uint64_t incarnation_;
  std::string endpoint_;
  std::mutex mu_;  // the socket, and seq_ order on it
  std::unique_ptr<zmq::socket_t> pub_;
  std::atomic<uint64_t> seq_{0};
  std::thread ticker_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace ringfs::meta
