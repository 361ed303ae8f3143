#include "gossip/sim_network.h"

#include <algorithm>

namespace ringfs::gossip {

class SimNetwork::Port : public Transport {
 public:
  Port(SimNetwork* net, int index, uint64_t gen) : net_(net), index_(index), gen_(gen) {}
  void Publish(std::string_view bytes) override {
    if (live()) net_->Publish(index_, bytes);
  }
  void SetSubscriptions(const std::vector<std::string>& addrs) override {
    if (live()) net_->Subscribe(index_, addrs);
  }
  void SetAnnounce(std::string bytes) override {
    if (live()) net_->SetAnnounce(index_, std::move(bytes));
  }

 private:
  bool live() const;
  SimNetwork* net_;
  int index_;
  uint64_t gen_;
};

struct SimNetwork::Endpoint {
  std::string addr;
  bool attached = false;
  bool held = false;
  uint64_t gen = 0;
  std::function<void(std::string_view)> deliver;
  std::vector<int> publishers;   // whom it subscribes to
  std::vector<int> subscribers;  // who subscribes to it
  std::shared_ptr<const std::string> announce;
  std::deque<std::shared_ptr<const std::string>> waiting;  // while held
  std::vector<std::unique_ptr<Port>> ports;                // one per Attach
  Counters counters;
};

bool SimNetwork::Port::live() const {
  const Endpoint& e = *net_->endpoints_[index_];
  return e.attached && e.gen == gen_;
}

SimNetwork::SimNetwork(Options opts) : opts_(opts), rng_(opts.seed) {}
SimNetwork::~SimNetwork() = default;

int SimNetwork::Index(const std::string& addr) {
  auto [it, inserted] = index_.try_emplace(addr, static_cast<int>(endpoints_.size()));
  if (inserted) {
    endpoints_.push_back(std::make_unique<Endpoint>());
    endpoints_.back()->addr = addr;
  }
  return it->second;
}

Transport* SimNetwork::Attach(const std::string& addr,
                              std::function<void(std::string_view)> deliver) {
  const int i = Index(addr);
  Endpoint& e = *endpoints_[i];
  e.attached = true;
  e.held = false;
  e.gen++;
  e.deliver = std::move(deliver);
  e.ports.push_back(std::make_unique<Port>(this, i, e.gen));
  // Its subscribers reconnect and resend their subscriptions.
  for (int s : e.subscribers) {
    if (endpoints_[s]->announce) Send(i, endpoints_[s]->announce, true);
  }
  return e.ports.back().get();
}

void SimNetwork::Detach(const std::string& addr) {
  const int i = Index(addr);
  Endpoint& e = *endpoints_[i];
  Subscribe(i, {});
  e.attached = false;
  e.deliver = nullptr;
  e.announce.reset();
  e.waiting.clear();
}

void SimNetwork::Hold(const std::string& addr, bool held, bool lose) {
  Endpoint& e = *endpoints_[Index(addr)];
  e.held = held;
  if (lose) e.waiting.clear();
  while (!e.held && !e.waiting.empty()) {
    auto bytes = std::move(e.waiting.front());
    e.waiting.pop_front();
    Deliver(e, *bytes);
  }
}

void SimNetwork::Send(int to, std::shared_ptr<const std::string> bytes, bool reliable) {
  if (!reliable && opts_.drop > 0 &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < opts_.drop) {
    endpoints_[to]->counters.dropped++;
    return;
  }
  const int64_t lat =
      std::uniform_int_distribution<int64_t>(opts_.min_latency_ms, opts_.max_latency_ms)(rng_);
  events_.push(Event{now_ + lat, seq_++, to, endpoints_[to]->gen, std::move(bytes)});
}

void SimNetwork::Publish(int from, std::string_view bytes) {
  auto shared = std::make_shared<const std::string>(bytes);
  Endpoint& e = *endpoints_[from];
  for (int s : e.subscribers) {
    if (!endpoints_[s]->attached) continue;
    e.counters.bytes_out += bytes.size();
    e.counters.msgs_out++;
    Send(s, shared, false);
  }
}

void SimNetwork::Subscribe(int who, const std::vector<std::string>& addrs) {
  Endpoint& e = *endpoints_[who];
  std::vector<int> next;
  for (const std::string& a : addrs) next.push_back(Index(a));
  for (int p : e.publishers) {
    if (std::find(next.begin(), next.end(), p) == next.end())
      std::erase(endpoints_[p]->subscribers, who);
  }
  for (int p : next) {
    if (std::find(e.publishers.begin(), e.publishers.end(), p) != e.publishers.end()) continue;
    endpoints_[p]->subscribers.push_back(who);
    if (e.announce && endpoints_[p]->attached) Send(p, e.announce, true);
  }
  e.publishers = std::move(next);
}

void SimNetwork::SetAnnounce(int who, std::string bytes) {
  Endpoint& e = *endpoints_[who];
  e.announce = std::make_shared<const std::string>(std::move(bytes));
  for (int p : e.publishers) {
    if (endpoints_[p]->attached) Send(p, e.announce, true);
  }
}

void SimNetwork::Deliver(Endpoint& e, const std::string& bytes) {
  e.counters.bytes_in += bytes.size();
  e.counters.msgs_in++;
  if (e.deliver) e.deliver(bytes);
}

void SimNetwork::AdvanceTo(int64_t t) {
  while (!events_.empty() && events_.top().time <= t) {
    Event ev = events_.top();
    events_.pop();
    now_ = std::max(now_, ev.time);
    Endpoint& e = *endpoints_[ev.to];
    if (!e.attached || e.gen != ev.gen) continue;  // lost with the process
    if (e.held) {
      e.waiting.push_back(std::move(ev.bytes));
      continue;
    }
    Deliver(e, *ev.bytes);
  }
  now_ = std::max(now_, t);
}

const SimNetwork::Counters& SimNetwork::counters(const std::string& addr) {
  return endpoints_[Index(addr)]->counters;
}

}  // namespace ringfs::gossip
