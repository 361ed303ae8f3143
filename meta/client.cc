#include "meta/client.h"

#include <chrono>
#include <thread>

namespace ringfs::meta {

Client::Client(std::string endpoint, int timeout_ms, int retry_ms)
    : channel_(std::move(endpoint)), timeout_ms_(timeout_ms), retry_ms_(retry_ms) {}

Status Client::Call(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep) {
  const std::string body = codec::Encode(req);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_ms_);
  while (true) {
    // Sending with a short timeout first tells "not reachable" (safe to retry:
    // nothing left this process) apart from "sent, no answer" (not safe).
    auto r = channel_.Start(op, body, nullptr, 1000).Wait(timeout_ms_);
    if (r.ok()) return rep ? r->DecodeBody(*rep) : Status::OK();
    if (r.status().code() != EHOSTUNREACH || std::chrono::steady_clock::now() > deadline) {
      return r.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<wire::ClusterMap> Client::GetMap() {
  wire::MetaReply rep;
  RETURN_IF_ERROR(Call(wire::Op::kGetMap, {}, &rep));
  return std::move(rep.map);
}

}  // namespace ringfs::meta
