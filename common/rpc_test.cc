#include "common/rpc.h"

#include <gtest/gtest.h>

#include <thread>

namespace ringfs {
namespace {

using rpc::Message;
using rpc::Responder;

// Echo server: replies with the body it got, and echoes the data frame.
std::unique_ptr<rpc::Server> StartEcho() {
  auto s = std::make_unique<rpc::Server>("tcp://127.0.0.1:*", 2, [](Message&& m, Responder&& r) {
    if (m.env.op == 99) return r.Reply(Status::Error(ENOENT, "nope"));
    std::string body(m.body.data<char>(), m.body.size());
    if (m.has_data) {
      zmq::message_t d(m.data.data(), m.data.size());
      r.Reply(Status::OK(), body, std::move(d), true);
    } else {
      r.Reply(Status::OK(), body);
    }
  });
  EXPECT_TRUE(s->Start().ok());
  return s;
}

TEST(Rpc, EchoesBodyAndData) {
  auto s = StartEcho();
  rpc::Channel ch(s->endpoint());
  auto buf = std::make_shared<const std::string>(1 << 20, 'z');
  zmq::message_t d = rpc::ShareBytes(buf, 0, buf->size());
  auto r = ch.Call(wire::Op::kBlockWrite, "hdr", &d, 2000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::string(r->body.data<char>(), r->body.size()), "hdr");
  ASSERT_TRUE(r->has_data);
  EXPECT_EQ(r->data.size(), buf->size());
}

TEST(Rpc, ErrorsCarryErrno) {
  auto s = StartEcho();
  rpc::Channel ch(s->endpoint());
  auto r = ch.Call(static_cast<wire::Op>(99), "", nullptr, 2000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOENT);
}

TEST(Rpc, UnreachablePeerTimesOut) {
  rpc::Channel ch("tcp://127.0.0.1:1");
  auto r = ch.Call(wire::Op::kGetMap, "", nullptr, 200);
  ASSERT_FALSE(r.ok());
}

TEST(Rpc, ParallelCallsFromManyThreads) {
  auto s = StartEcho();
  rpc::Channel ch(s->endpoint());
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 200; i++) {
        std::string body = std::to_string(t * 1000 + i);
        auto r = ch.Call(wire::Op::kGetMap, body, nullptr, 5000);
        if (r.ok() && std::string(r->body.data<char>(), r->body.size()) == body) ok++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 1600);
}

// Raw frames a hostile peer might send: the server must answer with an error
// (or drop what cannot be answered) and keep serving.
TEST(Rpc, MalformedFramesGetErrorsAndServerSurvives) {
  auto s = StartEcho();
  zmq::socket_t raw(rpc::Context(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 2000);
  raw.connect(s->endpoint());
  auto expect_error = [&](std::vector<std::string> frames, int err) {
    for (size_t i = 0; i < frames.size(); i++) {
      zmq::message_t m(frames[i].data(), frames[i].size());
      raw.send(m, i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t env;
    ASSERT_TRUE(raw.recv(env).has_value());
    wire::Envelope e;
    ASSERT_TRUE(codec::Decode(std::string_view(env.data<char>(), env.size()), e).ok());
    EXPECT_EQ(e.err, err);
    while (env.more()) {
      zmq::message_t rest;
      (void)raw.recv(rest);
      env = std::move(rest);
    }
  };
  expect_error({"garbage", "x"}, EPROTO);
  expect_error({"a", "b", "c", "d", "e"}, EPROTO);
  wire::Envelope bad;
  bad.version = 77;
  expect_error({codec::Encode(bad), ""}, EPROTONOSUPPORT);
  rpc::Channel ch(s->endpoint());
  EXPECT_TRUE(ch.Call(wire::Op::kGetMap, "still alive", nullptr, 2000).ok());
}

}  // namespace
}  // namespace ringfs
