// An in-memory PUB/SUB network in virtual time, for tests and the simulation:
// random drop and latency per delivery, per-endpoint byte counters, killed
// and stalled endpoints. Announcements (subscriptions) are never dropped, as
// ZeroMQ resends them on every (re)connection; a publisher that attaches late
// or restarts receives the announcements of everyone subscribed to it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gossip/transport.h"

namespace ringfs::gossip {

class SimNetwork {
 public:
  struct Options {
    double drop = 0;  // probability each delivery is lost
    int64_t min_latency_ms = 1, max_latency_ms = 1;
    uint64_t seed = 1;
  };
  struct Counters {
    uint64_t bytes_out = 0, msgs_out = 0;  // per delivery: a message to 6 subscribers counts 6
    uint64_t bytes_in = 0, msgs_in = 0, dropped = 0;
  };

  explicit SimNetwork(Options opts);
  ~SimNetwork();

  int64_t now() const { return now_; }
  // Brings up endpoint `addr` (again, after Detach: a restart); `deliver`
  // gets each message and announcement for it. The transport lives as long
  // as the network; after a Detach it does nothing.
  Transport* Attach(const std::string& addr, std::function<void(std::string_view)> deliver);
  // The process is gone: it sends and receives nothing, and what was in
  // flight to it is lost.
  void Detach(const std::string& addr);
  // A stalled process: deliveries to it wait until it is released (or, with
  // `lose`, are dropped: it missed everything meanwhile).
  void Hold(const std::string& addr, bool held, bool lose = false);
  // Delivers, in time order, everything due up to `t`, and sets now() to t.
  void AdvanceTo(int64_t t);

  const Counters& counters(const std::string& addr);

 private:
  class Port;
  struct Endpoint;
  struct Event {
    int64_t time;
    uint64_t seq;
    int to;
    uint64_t gen;
    std::shared_ptr<const std::string> bytes;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };

  int Index(const std::string& addr);
  void Send(int to, std::shared_ptr<const std::string> bytes, bool reliable);
  void Publish(int from, std::string_view bytes);
  void Subscribe(int who, const std::vector<std::string>& addrs);
  void SetAnnounce(int who, std::string bytes);
  void Deliver(Endpoint& e, const std::string& bytes);

  Options opts_;
  std::mt19937_64 rng_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::unordered_map<std::string, int> index_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
};

}  // namespace ringfs::gossip
