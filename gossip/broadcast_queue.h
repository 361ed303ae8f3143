// Changes waiting to be piggybacked on outgoing gossip: each is sent on the
// next `limit` messages (memberlist's retransmit-limited queue), fewest-sent
// first, and a newer change to a member replaces the queued one.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "gossip/member.h"

namespace ringfs::gossip {

class BroadcastQueue {
 public:
  void Push(const Member& m);
  // Records for one message: fewest transmissions first, within `budget`
  // bytes; each taken record counts one transmission and leaves the queue
  // after `limit`.
  std::vector<Member> Take(size_t budget, int limit);
  // A record not sent yet is waiting: the agent publishes at once.
  bool HasFresh() const { return fresh_ > 0; }
  size_t size() const { return items_.size(); }

 private:
  struct Item {
    Member m;
    int sent = 0;
  };
  std::unordered_map<uint32_t, Item> items_;
  size_t fresh_ = 0;
};

// Transmissions per change: mult × ceil(log10(n + 1)), as memberlist does, so
// per-agent traffic per change grows as log N.
int RetransmitLimit(int mult, size_t n);

}  // namespace ringfs::gossip
