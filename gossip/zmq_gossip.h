// A gossip agent on its own thread over ZeroMQ: an XPUB socket bound to
// self.gossip_addr (tcp://IP:PORT, or tcp://IP:* and endpoint() tells the
// port) and one SUB socket connected to the agent's current subscriptions.
// All methods are thread-safe; before Start() the accessors return empty
// values. Callbacks run on the gossip thread, outside its lock (they may call
// back into this object), and must not block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "gossip/agent.h"

namespace ringfs::gossip {

class ZmqGossip {
 public:
  explicit ZmqGossip(Agent::Options opts);
  ~ZmqGossip();
  ZmqGossip(const ZmqGossip&) = delete;
  ZmqGossip& operator=(const ZmqGossip&) = delete;

  // Binds (unless an observer), subscribes to the seeds, starts the thread.
  Status Start();
  // Publishes what is pending (a Left after Leave()), then stops.
  void Stop();
  // The bound PUB endpoint, as members reach it ("" for an observer).
  std::string endpoint() const;

  // Register before Start().
  void OnChange(std::function<void(const Member&)> cb);

  std::vector<Member> Members() const;
  std::optional<Member> Get(uint32_t id) const;
  bool IsAlive(uint32_t id) const;
  uint64_t MaxMapEpoch() const;
  Member self() const;
  void SetMapEpoch(uint64_t epoch);
  void SetWeight(uint32_t weight);
  void Leave();
  std::string EncodeFullState() const;
  Status MergeFullState(std::string_view bytes);
  uint64_t malformed() const;
  uint64_t bytes_sent() const;
  uint64_t messages_sent() const;

 private:
  class Sockets;
  void Loop();
  template <class F>
  auto With(F f) const;

  Agent::Options opts_;
  std::unique_ptr<Sockets> sockets_;
  std::unique_ptr<Agent> agent_;
  mutable std::mutex mu_;
  std::vector<Member> pending_;  // changes to report, under mu_
  std::vector<std::function<void(const Member&)>> callbacks_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ringfs::gossip
