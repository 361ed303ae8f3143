// What an Agent needs from the network: publish to whoever subscribes to it,
// subscribe to a set of publishers, and announce itself to them. ZmqGossip
// implements it over PUB/SUB; SimNetwork in memory for tests and the
// simulation. Received bytes are handed to Agent::Receive by the owner.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ringfs::gossip {

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends to every current subscriber; may drop (never blocks).
  virtual void Publish(std::string_view bytes) = 0;
  // The complete set of publishers (gossip addresses) to receive from.
  virtual void SetSubscriptions(const std::vector<std::string>& addrs) = 0;
  // Bytes every publisher subscribed to receives once per connection (and
  // again when they change): over ZeroMQ they ride in the subscription itself,
  // the one message PUB/SUB carries upstream.
  virtual void SetAnnounce(std::string bytes) = 0;
};

}  // namespace ringfs::gossip
