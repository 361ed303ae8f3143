#include "common/rpc.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "common/log.h"

namespace ringfs::rpc {

std::string OpName(size_t op) {
  using wire::Op;
  switch (static_cast<Op>(op)) {
    case Op::kInvalid: return "Invalid";
    case Op::kLookup: return "Lookup";
    case Op::kGetAttr: return "GetAttr";
    case Op::kSetAttr: return "SetAttr";
    case Op::kMkdir: return "Mkdir";
    case Op::kMknod: return "Mknod";
    case Op::kUnlink: return "Unlink";
    case Op::kRmdir: return "Rmdir";
    case Op::kRename: return "Rename";
    case Op::kLink: return "Link";
    case Op::kSymlink: return "Symlink";
    case Op::kReadlink: return "Readlink";
    case Op::kReaddir: return "Readdir";
    case Op::kStatfs: return "Statfs";
    case Op::kCommitWrite: return "CommitWrite";
    case Op::kReclaim: return "Reclaim";
    case Op::kGetXattr: return "GetXattr";
    case Op::kSetXattr: return "SetXattr";
    case Op::kListXattr: return "ListXattr";
    case Op::kRemoveXattr: return "RemoveXattr";
    case Op::kReportBadCopy: return "ReportBadCopy";
    case Op::kClose: return "Close";
    case Op::kSessionBeat: return "SessionBeat";
    case Op::kGetBlocks: return "GetBlocks";
    case Op::kLock: return "Lock";
    case Op::kGetLock: return "GetLock";
    case Op::kTouchAtimes: return "TouchAtimes";
    case Op::kRegisterNode: return "RegisterNode";
    case Op::kGetMap: return "GetMap";
    case Op::kNodeAdd: return "NodeAdd";
    case Op::kNodeRemove: return "NodeRemove";
    case Op::kClusterStatus: return "ClusterStatus";
    case Op::kGossipState: return "GossipState";
    case Op::kSyncMeta: return "SyncMeta";
    case Op::kBlockWrite: return "BlockWrite";
    case Op::kBlockRead: return "BlockRead";
    case Op::kBlockTruncate: return "BlockTruncate";
    case Op::kBlockDelete: return "BlockDelete";
    case Op::kBlockSync: return "BlockSync";
    case Op::kBlockStat: return "BlockStat";
    case Op::kBlockList: return "BlockList";
    case Op::kBlockDrop: return "BlockDrop";
  }
  return "op" + std::to_string(op);
}

stats::Table& CallStats() {
  static stats::Table t("rpc", OpName);
  return t;
}

namespace {

constexpr int kMaxBatch = 256;  // messages drained per poll wakeup

void SetCommonOptions(zmq::socket_t& s) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::maxmsgsize, wire::kMaxMessageBytes);
  s.set(zmq::sockopt::sndhwm, 10000);
  s.set(zmq::sockopt::rcvhwm, 10000);
}

zmq::message_t EncodeEnvelope(const wire::Envelope& env) {
  std::string s = codec::Encode(env);
  return zmq::message_t(s.data(), s.size());
}

bool RecvAll(zmq::socket_t& s, std::vector<zmq::message_t>& frames) {
  frames.clear();
  while (true) {
    zmq::message_t m;
    auto r = s.recv(m, zmq::recv_flags::dontwait);
    if (!r) return !frames.empty();
    bool more = m.more();
    frames.push_back(std::move(m));
    if (!more) return true;
  }
}

}  // namespace

zmq::context_t& Context() {
  static zmq::context_t* ctx = [] {
    auto* c = new zmq::context_t(2);
    c->set(zmq::ctxopt::max_sockets, 16384);
    return c;
  }();
  return *ctx;
}

zmq::message_t ShareBytes(std::shared_ptr<const std::string> buf, size_t offset, size_t len) {
  auto* hold = new std::shared_ptr<const std::string>(std::move(buf));
  void* p = const_cast<char*>((*hold)->data() + offset);
  return zmq::message_t(
      p, len, [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::string>*>(hint); },
      hold);
}

// ---------------------------------------------------------------- Responder

Responder::Responder(Server* server, zmq::message_t identity, const wire::Envelope& req)
    : server_(server), identity_(std::move(identity)), op_(req.op), id_(req.id) {}

Responder::~Responder() {
  if (server_) Reply(Status::Error(EIO, "request dropped without a reply"));
}

void Responder::Reply(const Status& st, std::string body, zmq::message_t data, bool has_data) {
  if (!server_) return;
  wire::Envelope env;
  env.op = op_;
  env.id = id_;
  env.err = st.code();
  env.msg = st.message();
  Server::Outgoing out;
  out.identity = std::move(identity_);
  out.frames.push_back(EncodeEnvelope(env));
  out.frames.emplace_back(body.data(), body.size());
  if (has_data) out.frames.push_back(std::move(data));
  Server* s = server_;
  server_ = nullptr;
  s->Enqueue(std::move(out));
}

// ------------------------------------------------------------------- Server

Server::Server(std::string bind_endpoint, int workers, Handler handler)
    : bind_(std::move(bind_endpoint)), nworkers_(workers), handler_(std::move(handler)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  try {
    router_ = zmq::socket_t(Context(), zmq::socket_type::router);
    SetCommonOptions(router_);
    router_.bind(bind_);
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error(e.num() ? e.num() : EADDRINUSE, "bind " + bind_ + ": " + e.what());
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::Error(errno, "eventfd");
  io_ = std::thread([this] { IoLoop(); });
  for (int i = 0; i < nworkers_; i++) workers_.emplace_back([this] { WorkerLoop(); });
  return Status::OK();
}

void Server::Stop() {
  if (stop_.exchange(true)) return;
  in_cv_.notify_all();
  for (auto& t : workers_) t.join();
  if (io_.joinable()) io_.join();
  // Late replies from handlers that outlived the workers are simply dropped.
  std::lock_guard<std::mutex> lock(out_mu_);
  out_.clear();
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
  router_.close();
}

void Server::Enqueue(Outgoing out) {
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    if (stop_) return;
    out_.push_back(std::move(out));
  }
  // A reply made on the I/O thread itself goes out right after its handler
  // returns (IoLoop): no wakeup needed.
  if (std::this_thread::get_id() == io_id_.load(std::memory_order_relaxed)) return;
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof one);
  (void)n;
}

void Server::AfterReplies(std::function<void()> fn) {
  if (nworkers_ != 0 || std::this_thread::get_id() != io_id_.load(std::memory_order_relaxed)) return fn();
  after_.push_back(std::move(fn));
}

void Server::SendQueued(std::vector<Outgoing>& batch) {
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    batch.swap(out_);
  }
  for (auto& o : batch) {
    try {
      router_.send(o.identity, zmq::send_flags::sndmore);
      for (size_t i = 0; i < o.frames.size(); i++) {
        router_.send(o.frames[i], i + 1 < o.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      LOG_WARN("rpc reply dropped: %s", e.what());
    }
  }
  batch.clear();
}

void Server::IoLoop() {
  io_id_.store(std::this_thread::get_id());
  std::vector<zmq::message_t> frames;
  std::vector<Outgoing> batch;
  while (!stop_) {
    zmq::pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      LOG_ERROR("rpc poll: %s", e.what());
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t v;
      ssize_t n = read(wake_fd_, &v, sizeof v);
      (void)n;
    }
    SendQueued(batch);
    for (int i = 0; i < kMaxBatch; i++) {
      if (!RecvAll(router_, frames)) break;
      HandleFrames(frames);
      if (nworkers_ == 0) {
        SendQueued(batch);  // its reply, at once
        while (!after_.empty()) {
          auto fns = std::move(after_);
          after_.clear();
          for (auto& fn : fns) fn();
          SendQueued(batch);  // replies they made
        }
      }
    }
  }
}

void Server::HandleFrames(std::vector<zmq::message_t>& frames) {
  if (frames.size() < 2) return;  // nothing to answer to
  Incoming in;
  in.identity = std::move(frames[0]);
  auto reject = [&](int err, const std::string& why) {
    wire::Envelope env;
    if (frames.size() >= 2) {
      // Best effort: echo the id when the envelope is readable.
      (void)codec::Decode(std::string_view(frames[1].data<char>(), frames[1].size()), env);
    }
    Responder(this, std::move(in.identity), env).Reply(Status::Error(err, why));
  };
  if (frames.size() != 3 && frames.size() != 4) return reject(EPROTO, "bad frame count");
  if (frames[1].size() > wire::kMaxHeaderBytes || frames[2].size() > wire::kMaxHeaderBytes)
    return reject(EMSGSIZE, "header too large");
  Status st = codec::Decode(std::string_view(frames[1].data<char>(), frames[1].size()), in.msg.env);
  if (!st.ok()) return reject(EPROTO, st.message());
  if (in.msg.env.version != wire::kProtocolVersion)
    return reject(EPROTONOSUPPORT, "protocol version " + std::to_string(in.msg.env.version));
  in.msg.body = std::move(frames[2]);
  if (frames.size() == 4) {
    in.msg.data = std::move(frames[3]);
    in.msg.has_data = true;
  }
  if (nworkers_ == 0) {  // inline: cheapest path for handlers that never block
    Dispatch(std::move(in));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(in_mu_);
    in_.push_back(std::move(in));
  }
  in_cv_.notify_one();
}

stats::Table& ServedStats() {
  static stats::Table t("served", OpName);
  return t;
}

void Server::Dispatch(Incoming in) {
  stats::Scope timed(ServedStats(), in.msg.env.op);  // the handler, not its deferred replies
  Responder r(this, std::move(in.identity), in.msg.env);
  try {
    handler_(std::move(in.msg), std::move(r));
  } catch (const std::exception& e) {
    LOG_ERROR("handler threw: %s", e.what());
  }
}

void Server::WorkerLoop() {
  while (true) {
    Incoming in;
    {
      std::unique_lock<std::mutex> lock(in_mu_);
      in_cv_.wait(lock, [&] { return stop_ || !in_.empty(); });
      if (stop_) return;
      in = std::move(in_.front());
      in_.pop_front();
    }
    Dispatch(std::move(in));
  }
}

// ------------------------------------------------------------------ Channel

std::atomic<uint64_t> Channel::next_id_{1};

Channel::Channel(std::string endpoint) : endpoint_(std::move(endpoint)) {}
Channel::~Channel() = default;

std::unique_ptr<zmq::socket_t> Channel::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<zmq::socket_t>(Context(), zmq::socket_type::dealer);
  SetCommonOptions(*s);
  s->set(zmq::sockopt::immediate, 1);
  s->set(zmq::sockopt::reconnect_ivl, 100);
  s->connect(endpoint_);
  return s;
}

void Channel::Release(std::unique_ptr<zmq::socket_t> s) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(s));
}

Pending Channel::Start(wire::Op op, const std::string& body, zmq::message_t* data, int timeout_ms) {
  wire::Envelope env;
  env.op = static_cast<uint16_t>(op);
  env.id = next_id_++;
  std::unique_ptr<zmq::socket_t> s;
  try {
    s = Acquire();
    s->set(zmq::sockopt::sndtimeo, timeout_ms);
    zmq::message_t e = EncodeEnvelope(env);
    zmq::message_t b(body.data(), body.size());
    bool ok = s->send(e, zmq::send_flags::sndmore).has_value() &&
              s->send(b, data ? zmq::send_flags::sndmore : zmq::send_flags::none).has_value() &&
              (!data || s->send(*data, zmq::send_flags::none).has_value());
    if (!ok) {
      return Pending(nullptr, nullptr, env.id,
                     Status::Error(EHOSTUNREACH, "cannot reach " + endpoint_));
    }
  } catch (const zmq::error_t& e) {
    return Pending(nullptr, nullptr, env.id, Status::Error(EIO, endpoint_ + ": " + e.what()));
  }
  Pending p(this, std::move(s), env.id, Status::OK());
  p.op_ = env.op;
  p.start_ = std::chrono::steady_clock::now();
  return p;
}

Result<Message> Channel::Call(wire::Op op, const std::string& body, zmq::message_t* data,
                              int timeout_ms) {
  return Start(op, body, data, timeout_ms).Wait(timeout_ms);
}

// ------------------------------------------------------------------ Pending

Pending::Pending(Channel* ch, std::unique_ptr<zmq::socket_t> sock, uint64_t id, Status send_status)
    : ch_(ch), sock_(std::move(sock)), id_(id), send_status_(std::move(send_status)) {}

Pending::~Pending() = default;  // an unreaped socket may still get a reply: drop it

bool Pending::Poll(int timeout_ms) {
  if (!send_status_.ok() || !sock_) return true;
  zmq::pollitem_t item = {sock_->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t&) {
    return false;  // EINTR and the like: the caller polls again or gives up
  }
  return (item.revents & ZMQ_POLLIN) != 0;
}

Result<Message> Pending::Wait(int timeout_ms) {
  if (!send_status_.ok()) return send_status_;
  struct Timed {  // the whole round trip, from Start()
    Pending* p;
    ~Timed() {
      CallStats().Add(p->op_, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - p->start_).count());
    }
  } timed{this};
  if (!sock_) return Status::Error(EINVAL, "call already collected");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<zmq::message_t> frames;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    zmq::pollitem_t item = {sock_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, left);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      sock_.reset();
      return Status::Error(EIO, e.what());
    }
    if (!(item.revents & ZMQ_POLLIN)) {
      sock_.reset();
      return Status::Error(ETIMEDOUT, "no reply from " + ch_->endpoint());
    }
    if (!RecvAll(*sock_, frames)) continue;
    Message m;
    if (frames.size() < 2 || frames.size() > 3 ||
        !codec::Decode(std::string_view(frames[0].data<char>(), frames[0].size()), m.env).ok()) {
      sock_.reset();
      return Status::Error(EPROTO, "malformed reply from " + ch_->endpoint());
    }
    if (m.env.id != id_) continue;  // a stale reply
    m.body = std::move(frames[1]);
    if (frames.size() == 3) {
      m.data = std::move(frames[2]);
      m.has_data = true;
    }
    ch_->Release(std::move(sock_));
    if (m.env.err != 0) return Status::Error(m.env.err, m.env.msg);
    return m;
  }
}

}  // namespace ringfs::rpc
