// RPC over ZeroMQ: ROUTER servers with a worker pool, DEALER clients pooled
// per endpoint. Frames: [envelope][body][data?] where envelope and body are
// cereal-encoded and data is raw bytes (block contents), never copied through
// cereal. Every socket caps message size; every malformed message gets an
// error reply, never a crash.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/codec.h"
#include "common/op_stats.h"
#include "common/status.h"
#include "common/wire.h"

namespace ringfs::rpc {

// "Lookup" for wire::Op::kLookup.
std::string OpName(size_t op);
// Round trips this process made, by op (common/op_stats.h).
stats::Table& CallStats();
// Requests this process served, by op: time in the handler.
stats::Table& ServedStats();

// The process-wide ZeroMQ context.
zmq::context_t& Context();

// Wraps a shared buffer as a zero-copy frame: the same bytes can go to several
// replicas while the buffer lives until the last send completes.
zmq::message_t ShareBytes(std::shared_ptr<const std::string> buf, size_t offset, size_t len);

struct Message {
  wire::Envelope env;
  zmq::message_t body;
  zmq::message_t data;
  bool has_data = false;

  template <class T>
  Status DecodeBody(T& out) const {
    return codec::Decode(std::string_view(body.data<char>(), body.size()), out);
  }
  std::string_view data_view() const { return {data.data<char>(), data.size()}; }
};

class Server;

// Answers one request exactly once; may be moved to another thread.
class Responder {
 public:
  Responder() = default;
  Responder(Server* server, zmq::message_t identity, const wire::Envelope& req);
  Responder(Responder&&) = default;
  Responder& operator=(Responder&&) = default;
  ~Responder();

  void Reply(const Status& st, std::string body = {}, zmq::message_t data = {}, bool has_data = false);
  template <class T>
  void ReplyWith(const T& body) { Reply(Status::OK(), codec::Encode(body)); }

 private:
  Server* server_ = nullptr;
  zmq::message_t identity_;
  uint16_t op_ = 0;
  uint64_t id_ = 0;
};

class Server {
 public:
  using Handler = std::function<void(Message&&, Responder&&)>;

  // workers == 0 runs the handler on the I/O thread itself: no hand-off, for
  // handlers that never block (they may still move the Responder elsewhere).
  Server(std::string bind_endpoint, int workers, Handler handler);
  ~Server();

  // Binds and starts the threads. endpoint() is then the bound address
  // (a wildcard port such as tcp://127.0.0.1:* becomes the real one).
  Status Start();
  void Stop();
  const std::string& endpoint() const { return endpoint_; }
  // Called from a handler on the I/O thread (workers == 0): `fn` runs right
  // after the replies made so far are sent, so work a reply need not wait
  // for is off the caller's path. Elsewhere it runs at once.
  void AfterReplies(std::function<void()> fn);

 private:
  friend class Responder;
  struct Outgoing {
    zmq::message_t identity;
    std::vector<zmq::message_t> frames;
  };
  struct Incoming {
    Message msg;
    zmq::message_t identity;
  };
  void IoLoop();
  void WorkerLoop();
  void Enqueue(Outgoing out);
  void HandleFrames(std::vector<zmq::message_t>& frames);
  void Dispatch(Incoming in);
  void SendQueued(std::vector<Outgoing>& batch);  // on the I/O thread

  std::string bind_;
  std::string endpoint_;
  int nworkers_;
  Handler handler_;
  zmq::socket_t router_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread io_;
  std::atomic<std::thread::id> io_id_{};
  std::vector<std::thread> workers_;
  std::mutex out_mu_;
  std::vector<Outgoing> out_;
  std::vector<std::function<void()>> after_;  // I/O thread only
  std::mutex in_mu_;
  std::condition_variable in_cv_;
  std::deque<Incoming> in_;
};

// A call in flight on one socket; Wait() collects the reply.
class Channel;
class Pending {
 public:
  Pending() = default;
  Pending(Channel* ch, std::unique_ptr<zmq::socket_t> sock, uint64_t id, Status send_status);
  Pending(Pending&&) = default;
  Pending& operator=(Pending&&) = default;
  ~Pending();
  Result<Message> Wait(int timeout_ms);
  // True once Wait() would return at once (a reply arrived, or the call
  // already failed); false if `timeout_ms` passed first. Consumes nothing.
  bool Poll(int timeout_ms);

 private:
  friend class Channel;
  Channel* ch_ = nullptr;
  std::unique_ptr<zmq::socket_t> sock_;
  uint64_t id_ = 0;
  uint16_t op_ = 0;
  std::chrono::steady_clock::time_point start_{};
  Status send_status_;
};

// A thread-safe client for one endpoint. Each call borrows a socket from a
// pool, so calls from many threads proceed in parallel.
class Channel {
 public:
  explicit Channel(std::string endpoint);
  ~Channel();
  const std::string& endpoint() const { return endpoint_; }

  Pending Start(wire::Op op, const std::string& body, zmq::message_t* data, int timeout_ms);
  Result<Message> Call(wire::Op op, const std::string& body, zmq::message_t* data, int timeout_ms);

  template <class Req, class Rep>
  Status Invoke(wire::Op op, const Req& req, Rep* rep, int timeout_ms) {
    auto r = Call(op, codec::Encode(req), nullptr, timeout_ms);
    if (!r.ok()) return r.status();
    return rep ? r->DecodeBody(*rep) : Status::OK();
  }

 private:
  friend class Pending;
  std::unique_ptr<zmq::socket_t> Acquire();
  void Release(std::unique_ptr<zmq::socket_t> s);

  std::string endpoint_;
  std::mutex mu_;
  std::vector<std::unique_ptr<zmq::socket_t>> idle_;
  static std::atomic<uint64_t> next_id_;
};

}  // namespace ringfs::rpc
