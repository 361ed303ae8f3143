#include "gossip/zmq_gossip.h"

#include <chrono>
#include <set>
#include <zmq.hpp>

#include "common/log.h"
#include "common/rpc.h"

namespace ringfs::gossip {

namespace {

constexpr int kTickMs = 10;      // "changes spread at once": within a tick
constexpr int kMaxBatch = 1000;  // messages drained per wakeup
constexpr int kPubHwm = 1000;    // per subscriber; past it PUB drops, never blocks
constexpr int kSubHwm = 10000;
constexpr int kLeaveLingerMs = 200;  // lets a final Left reach the wire on Stop
// Prefix of the announce subscription. A SUB's subscriptions go to every
// publisher it connects to; this one carries the subscriber's record. The
// empty subscription beside it already matches every message.
constexpr std::string_view kAnnounceMagic = "\x7fRGA";
constexpr int kHeartbeatIvlMs = 1000;      // ZMTP ping on an idle connection
constexpr int kHeartbeatTimeoutMs = 3000;  // no traffic this long: the connection is dead

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class ZmqGossip::Sockets : public Transport {
 public:
  zmq::socket_t pub, sub;

  void Publish(std::string_view bytes) override {
    try {
      (void)pub.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      LOG_DEBUG("gossip publish: %s", e.what());
    }
  }

  void SetSubscriptions(const std::vector<std::string>& addrs) override {
    std::set<std::string> next(addrs.begin(), addrs.end());
    for (auto it = connected_.begin(); it != connected_.end();) {
      if (next.count(*it)) {
        ++it;
        continue;
      }
      try {
        sub.disconnect(*it);
      } catch (const zmq::error_t& e) {
        LOG_DEBUG("gossip disconnect %s: %s", it->c_str(), e.what());
      }
      it = connected_.erase(it);
    }
    for (const std::string& a : next) {
      if (connected_.count(a)) continue;
      try {
        sub.connect(a);
        connected_.insert(a);
      } catch (const zmq::error_t& e) {
        LOG_WARN("gossip connect %s: %s", a.c_str(), e.what());
      }
    }
  }

  void SetAnnounce(std::string bytes) override {
    std::string topic = std::string(kAnnounceMagic) + bytes;
    try {
      if (!announce_.empty()) sub.set(zmq::sockopt::unsubscribe, announce_);
      sub.set(zmq::sockopt::subscribe, topic);
      announce_ = std::move(topic);
    } catch (const zmq::error_t& e) {
      LOG_WARN("gossip announce: %s", e.what());
    }
  }

 private:
  std::set<std::string> connected_;
  std::string announce_;
};

ZmqGossip::ZmqGossip(Agent::Options opts) : opts_(std::move(opts)) {}

ZmqGossip::~ZmqGossip() { Stop(); }

Status ZmqGossip::Start() {
  sockets_ = std::make_unique<Sockets>();
  try {
    zmq::context_t& ctx = rpc::Context();
    sockets_->sub = zmq::socket_t(ctx, zmq::socket_type::sub);
    sockets_->sub.set(zmq::sockopt::linger, 0);
    sockets_->sub.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
    sockets_->sub.set(zmq::sockopt::rcvhwm, kSubHwm);
    sockets_->sub.set(zmq::sockopt::reconnect_ivl, 100);
    sockets_->sub.set(zmq::sockopt::reconnect_ivl_max, 1000);
    // ZMTP heartbeats: a connection across a partition is dropped within
    // seconds and redialled, instead of waiting out TCP's retransmission
    // backoff (up to two minutes) after the network heals; the redial
    // re-sends our subscriptions, and with them our announcement.
    sockets_->sub.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
    sockets_->sub.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
    sockets_->sub.set(zmq::sockopt::heartbeat_ttl, kHeartbeatTimeoutMs);
    sockets_->sub.set(zmq::sockopt::subscribe, "");
    if (!opts_.observer) {
      sockets_->pub = zmq::socket_t(ctx, zmq::socket_type::xpub);
      sockets_->pub.set(zmq::sockopt::linger, kLeaveLingerMs);
      sockets_->pub.set(zmq::sockopt::sndhwm, kPubHwm);
      sockets_->pub.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
      sockets_->pub.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
      sockets_->pub.set(zmq::sockopt::heartbeat_ttl, kHeartbeatTimeoutMs);
      sockets_->pub.set(zmq::sockopt::xpub_verbose,
                        1);  // every (re)announcement, not just the first
      sockets_->pub.set(zmq::sockopt::maxmsgsize,
                        static_cast<int64_t>(kMaxAnnounceBytes + kAnnounceMagic.size() + 1));
      sockets_->pub.bind(opts_.self.gossip_addr);
      opts_.self.gossip_addr = sockets_->pub.get(zmq::sockopt::last_endpoint);
    }
  } catch (const zmq::error_t& e) {
    return Status::Error(e.num() ? e.num() : EIO,
                         "gossip bind " + opts_.self.gossip_addr + ": " + e.what());
  }
  agent_ = std::make_unique<Agent>(opts_, sockets_.get(), NowMs);
  agent_->OnChange([this](const Member& m) { pending_.push_back(m); });  // under mu_
  {
    std::lock_guard<std::mutex> lock(mu_);
    agent_->Start();
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void ZmqGossip::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  sockets_->sub.close();
  if (!opts_.observer) sockets_->pub.close();
}

void ZmqGossip::Loop() {
  std::vector<zmq::message_t> in;
  std::vector<Member> changes;
  int64_t next_tick = 0;
  auto drain = [&](zmq::socket_t& s) {
    for (int i = 0; i < kMaxBatch; i++) {
      zmq::message_t m;
      if (!s.recv(m, zmq::recv_flags::dontwait)) break;
      in.push_back(std::move(m));
    }
  };
  while (true) {
    const bool stopping = stop_;
    std::vector<zmq::pollitem_t> items = {{sockets_->sub.handle(), 0, ZMQ_POLLIN, 0}};
    if (!opts_.observer) items.push_back({sockets_->pub.handle(), 0, ZMQ_POLLIN, 0});
    in.clear();
    size_t from_pub = 0;
    try {
      const int64_t wait = std::max<int64_t>(0, next_tick - NowMs());
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(stopping ? 0 : wait));
      drain(sockets_->sub);
      from_pub = in.size();
      if (!opts_.observer) drain(sockets_->pub);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) LOG_WARN("gossip poll: %s", e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < in.size(); i++) {
        std::string_view v(in[i].data<char>(), in[i].size());
        if (i < from_pub) {
          agent_->Receive(v);
        } else if (v.size() > 1 && v[0] == 1 &&
                   v.substr(1, kAnnounceMagic.size()) == kAnnounceMagic) {
          agent_->Receive(v.substr(1 + kAnnounceMagic.size()));  // a subscriber's announcement
        }
      }
      const int64_t now = NowMs();
      if (now >= next_tick || stopping) {
        agent_->Tick();
        next_tick = now + kTickMs;
      }
      changes.swap(pending_);
    }
    for (const Member& m : changes) {
      for (auto& cb : callbacks_) cb(m);
    }
    changes.clear();
    if (stopping) break;
  }
}

void ZmqGossip::OnChange(std::function<void(const Member&)> cb) {
  callbacks_.push_back(std::move(cb));
}

std::string ZmqGossip::endpoint() const { return opts_.observer ? "" : opts_.self.gossip_addr; }

// Every accessor: under the lock, and harmless before Start() (a default
// value) rather than a null dereference.
template <class F>
auto ZmqGossip::With(F f) const {
  std::lock_guard<std::mutex> lock(mu_);
  using R = decltype(f(*agent_));
  if (!agent_) return R();
  return f(*agent_);
}

std::vector<Member> ZmqGossip::Members() const {
  return With([](Agent& a) { return a.Members(); });
}
std::optional<Member> ZmqGossip::Get(uint32_t id) const {
  return With([&](Agent& a) { return a.Get(id); });
}
bool ZmqGossip::IsAlive(uint32_t id) const {
  return With([&](Agent& a) { return a.IsAlive(id); });
}
uint64_t ZmqGossip::MaxMapEpoch() const {
  return With([](Agent& a) { return a.MaxMapEpoch(); });
}
Member ZmqGossip::self() const {
  return With([](Agent& a) { return a.self(); });
}
void ZmqGossip::SetMapEpoch(uint64_t e) {
  With([&](Agent& a) { a.SetMapEpoch(e); });
}
void ZmqGossip::SetWeight(uint32_t w) {
  With([&](Agent& a) { a.SetWeight(w); });
}
void ZmqGossip::Leave() {
  With([](Agent& a) { a.Leave(); });
}
std::string ZmqGossip::EncodeFullState() const {
  return With([](Agent& a) { return a.EncodeFullState(); });
}
Status ZmqGossip::MergeFullState(std::string_view bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!agent_) return Status::Error(EAGAIN, "gossip not started");
  return agent_->MergeFullState(bytes);
}
uint64_t ZmqGossip::malformed() const {
  return With([](Agent& a) { return a.malformed(); });
}
uint64_t ZmqGossip::bytes_sent() const {
  return With([](Agent& a) { return a.bytes_sent(); });
}
uint64_t ZmqGossip::messages_sent() const {
  return With([](Agent& a) { return a.messages_sent(); });
}

}  // namespace ringfs::gossip
