// Agents on a SimNetwork in virtual time, for the tests and the simulation.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gossip/agent.h"
#include "gossip/sim_network.h"

namespace ringfs::gossip {

class SimCluster {
 public:
  SimCluster(SimNetwork::Options net, Agent::Options base, int64_t tick_ms = 10)
      : net_(net), base_(std::move(base)), tick_ms_(tick_ms) {}

  static std::string Addr(uint32_t id) { return "sim://" + std::to_string(id); }

  // Starts member `id` (again: a restart with a new incarnation).
  Agent& Start(uint32_t id, std::vector<std::string> seeds,
               std::function<void(Agent&)> configure = nullptr) {
    if (id >= slots_.size()) slots_.resize(id + 1);
    Agent::Options o = base_;
    o.self.id = id;
    o.self.gossip_addr = Addr(id);
    o.self.rpc_addr = "rpc://" + std::to_string(id);
    o.self.role = "blockd";
    o.self.zone = std::string(1, static_cast<char>('a' + id % 3));
    o.self.incarnation = 1'000'000 + static_cast<uint64_t>(net_.now());  // "wall clock"
    o.seeds = std::move(seeds);
    o.rng_seed = id * 7919 + static_cast<uint64_t>(net_.now()) + 1;
    auto slot = std::make_unique<Slot>();
    Slot* s = slot.get();
    Transport* t = net_.Attach(o.self.gossip_addr, [s](std::string_view b) {
      if (s->agent && s->running) s->agent->Receive(b);
    });
    s->agent = std::make_unique<Agent>(o, t, [this] { return net_.now(); });
    if (configure) configure(*s->agent);
    s->agent->Start();
    slots_[id] = std::move(slot);
    return *slots_[id]->agent;
  }
  Agent& StartObserver(uint32_t slot_id, std::vector<std::string> seeds) {
    return Start(slot_id, std::move(seeds), nullptr, true);
  }

  void Kill(uint32_t id) {
    net_.Detach(Addr(id));
    slots_[id]->running = false;
  }
  // A stalled process: no ticks, deliveries wait (or are lost).
  void Stall(uint32_t id, bool stalled, bool lose = false) {
    slots_[id]->stalled = stalled;
    net_.Hold(Addr(id), stalled, lose);
  }
  bool running(uint32_t id) const {
    return id < slots_.size() && slots_[id] && slots_[id]->running;
  }
  Agent& agent(uint32_t id) { return *slots_[id]->agent; }

  // Advances virtual time, ticking every running agent every tick_ms.
  void Run(int64_t ms, const std::function<void()>& each_tick = nullptr) {
    const int64_t end = net_.now() + ms;
    while (net_.now() < end) {
      net_.AdvanceTo(net_.now() + tick_ms_);
      for (auto& s : slots_) {
        if (s && s->running && !s->stalled) s->agent->Tick();
      }
      if (each_tick) each_tick();
    }
  }
  // Runs until `done` holds (checked every tick) or `limit` ms pass; returns
  // the virtual ms it took, or -1.
  int64_t RunUntil(int64_t limit, const std::function<bool()>& done) {
    const int64_t start = net_.now();
    while (net_.now() - start < limit) {
      if (done()) return net_.now() - start;
      Run(tick_ms_);
    }
    return done() ? net_.now() - start : -1;
  }
  // True when every running agent other than `skip` satisfies `pred`.
  bool All(const std::function<bool(Agent&)>& pred, uint32_t skip = 0) {
    for (size_t i = 0; i < slots_.size(); i++) {
      if (i != skip && slots_[i] && slots_[i]->running && !pred(*slots_[i]->agent)) return false;
    }
    return true;
  }
  SimNetwork& net() { return net_; }
  size_t size() const { return slots_.size(); }

 private:
  struct Slot {
    std::unique_ptr<Agent> agent;
    bool running = true;
    bool stalled = false;
  };
  Agent& Start(uint32_t id, std::vector<std::string> seeds, std::function<void(Agent&)> configure,
               bool observer) {
    base_.observer = observer;
    Agent& a = Start(id, std::move(seeds), std::move(configure));
    base_.observer = false;
    return a;
  }

  SimNetwork net_;
  Agent::Options base_;
  int64_t tick_ms_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace ringfs::gossip
