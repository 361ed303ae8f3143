// One gossip agent: the member table, dissemination and failure detection,
// driven entirely from outside (Tick, Receive) with an injected clock and
// transport, so tests and the simulation run it deterministically. Not
// thread-safe: ZmqGossip runs it on its own thread behind a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "gossip/broadcast_queue.h"
#include "gossip/detector.h"
#include "gossip/member.h"
#include "gossip/message.h"
#include "gossip/transport.h"

namespace ringfs::gossip {

class Agent {
 public:
  struct Options {
    // This member. incarnation 0 means "wall-clock ms now", so a restart
    // always outranks the previous run without any persisted state.
    Member self;
    std::vector<std::string> seeds;  // gossip addresses to subscribe to first
    bool observer = false;           // a mount: subscribes only, never publishes, not a member

    // Heartbeat period: watchers hear 7 heartbeats per suspicion window.
    int64_t heartbeat_ms = 200;
    // Silence before a watched member is suspected: 7 heartbeats, so drops
    // (5 % each) never add up to it by chance.
    int64_t suspect_after_ms = 1500;
    // Unrefuted suspicion before Down: a live member refutes in a round trip
    // (~10 ms); 2 s covers a starved one. SIGKILL → Down ≈ 3.5 s < 5 s.
    int64_t down_after_ms = 2000;
    // One digest window per second repairs missed changes of known members.
    int64_t digest_ms = 1000;
    // Entries per digest (37 B each: 1.2 KiB). Clusters up to 32 send all
    // every time; bigger ones rotate (missed changes are rare: each is sent
    // R times by every agent, so the digest is a backstop, not the path).
    size_t digest_window = 32;
    // Full state to subscribers; scaled up ×(1 + ceil(log2(N/32))) past 32
    // members as memberlist scales push-pull, since it is O(N) bytes.
    int64_t anti_entropy_ms = 10000;
    // One random subscription is replaced this often, so the graph mixes.
    int64_t shuffle_ms = 5000;
    // Watchers per member (and members each agent watches).
    size_t watch = 3;
    // Random subscriptions besides the watched ones (observers: all random).
    size_t fanout = 3;
    // Each change rides on mult × ceil(log10(N+1)) messages.
    int retransmit_mult = 3;
    // Bytes of changes per gossip message (the rest wait for the next).
    size_t piggyback_bytes = 16 << 10;
    // Full state in answer to announcements at most this often.
    int64_t full_push_min_ms = 1000;
    // A digest showing what we cannot apply asks for full state at most
    // this often.
    int64_t pull_min_ms = 5000;
    // A gap between Ticks longer than this means we were not running: the
    // detector discounts it rather than blame the members it did not hear.
    int64_t stall_ms = 1000;
    uint64_t rng_seed = 0;  // 0: random
  };

  Agent(Options opts, Transport* transport, std::function<int64_t()> now_ms);

  // Subscribes to the seeds and announces this member.
  void Start();
  // Timers: heartbeat, digest, anti-entropy, subscriptions, detector; and
  // publishes changes received since the last Tick. Call every ~10 ms.
  void Tick();
  // One message from a publisher or an announcement from a subscriber.
  void Receive(std::string_view bytes);

  std::vector<Member> Members() const;  // by id; includes self unless an observer
  std::optional<Member> Get(uint32_t id) const;
  bool IsAlive(uint32_t id) const;  // Alive or Suspect: usable
  uint64_t MaxMapEpoch() const;
  const Member& self() const { return self_; }

  void SetMapEpoch(uint64_t epoch);
  void SetWeight(uint32_t weight);
  void Leave();  // publishes Left at the next Tick

  std::string EncodeFullState() const;
  Status MergeFullState(std::string_view bytes);

  // Called (on the caller's thread of Tick/Receive) when a member's record
  // changes other than its heartbeat: joined, status, weight, epoch, address.
  void OnChange(std::function<void(const Member&)> cb) { on_change_ = std::move(cb); }

  uint64_t malformed() const { return malformed_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t messages_sent() const { return messages_sent_; }
  uint64_t messages_received() const { return messages_received_; }
  uint64_t records_sent() const { return records_sent_; }        // piggybacked changes
  uint64_t full_bytes_sent() const { return full_bytes_sent_; }  // of bytes_sent: full state
  const std::vector<std::string>& subscriptions() const { return subs_; }
  const std::vector<uint32_t>& watched() const { return detector_.watched(); }

 private:
  struct Known {
    Member m;
    uint32_t static_hash = 0;
  };

  void Apply(const Member& in);
  void ApplyEntry(const Entry& e);
  void Refute(const Member& claim);
  void Reassert(uint64_t above);
  void Changed(const Member& m, bool liveness_changed);
  void RunDetector(int64_t now);
  void UpdateSubscriptions(int64_t now);
  void PublishGossip(bool with_digest);
  void PublishFullState();
  void Send(const Message& msg);
  std::string Announce();
  std::vector<uint32_t> UsableIds() const;
  int64_t AntiEntropyInterval() const;
  int64_t Jitter(int64_t ms);

  Options opts_;
  Transport* transport_;
  std::function<int64_t()> now_;
  std::mt19937_64 rng_;
  Member self_;
  std::map<uint32_t, Known> members_;  // others; ordered so digests rotate by id
  BroadcastQueue queue_;
  Detector detector_;
  std::function<void(const Member&)> on_change_;

  std::vector<std::string> subs_;
  std::vector<uint32_t> random_subs_;
  bool subs_dirty_ = true;
  bool want_pull_ = false;
  bool announce_wants_full_ = true;  // until a full state arrives
  bool got_full_ = false;
  bool full_push_pending_ = false;
  uint64_t announce_seq_ = 0;
  uint32_t digest_cursor_ = 0;

  int64_t last_tick_ = -1;
  int64_t last_rx_ = -1;  // last message received
  int64_t next_heartbeat_ = 0, next_detector_ = 0, next_digest_ = 0, next_anti_entropy_ = 0,
          next_shuffle_ = 0;
  int64_t last_full_push_ = -1'000'000'000, last_pull_ = -1'000'000'000;

  uint64_t malformed_ = 0, bytes_sent_ = 0, messages_sent_ = 0, messages_received_ = 0;
  uint64_t records_sent_ = 0, full_bytes_sent_ = 0;
};

}  // namespace ringfs::gossip
