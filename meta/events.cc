#include "meta/events.h"

#include <random>

#include "common/codec.h"
#include "common/log.h"
#include "common/rpc.h"

namespace ringfs::meta {

namespace {
uint64_t RandomIncarnation() {
  std::random_device rd;
  return (uint64_t{rd()} << 32 | rd()) | 1;
}
}  // namespace

EventPublisher::EventPublisher() : incarnation_(RandomIncarnation()) {}

EventPublisher::~EventPublisher() { Stop(); }

Status EventPublisher::Start(const std::string& endpoint) {
  try {
    pub_ = std::make_unique<zmq::socket_t>(rpc::Context(), zmq::socket_type::pub);
    pub_->set(zmq::sockopt::sndhwm, 100000);  // a slow mount loses events, never slows us
    pub_->set(zmq::sockopt::linger, 0);
    pub_->bind(endpoint);
    endpoint_ = pub_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    pub_.reset();
    return Status::Error(EADDRINUSE, "events on " + endpoint + ": " + e.what());
  }
  ticker_ = std::thread([this] { TickLoop(); });
  return Status::OK();
}

void EventPublisher::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  pub_.reset();
}

void EventPublisher::Send(const wire::DirEvents& ev) {
  if (!pub_) return;
  const std::string body = codec::Encode(ev);
  try {
    (void)pub_->send(zmq::buffer(body), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // Dropped: subscribers see the gap.
  }
}

uint64_t EventPublisher::Publish(uint64_t session, std::vector<wire::DirChange> changes,
                                 std::vector<uint64_t> inodes) {
  std::lock_guard<std::mutex> lock(mu_);
  wire::DirEvents ev;
  ev.incarnation = incarnation_;
  ev.seq = seq_.load() + 1;
  ev.session = session;
  ev.changes = std::move(changes);
  ev.inodes = std::move(inodes);
  seq_.store(ev.seq);
  Send(ev);
  return ev.seq;
}

void EventPublisher::TickLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(kTickMs), [&] { return stop_; })) {
    std::lock_guard<std::mutex> plock(mu_);
    wire::DirEvents tick;
    tick.incarnation = incarnation_;
    tick.seq = seq_.load();
    Send(tick);
  }
}

}  // namespace ringfs::meta
