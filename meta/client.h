// Client of the metadata service, shared by the FUSE client and the CLI.
#pragma once

#include <string>

#include "common/rpc.h"
#include "common/wire.h"

namespace ringfs::meta {

class Client {
 public:
  // `timeout_ms` bounds one attempt; while the service is unreachable (nothing
  // was sent) calls are retried until `retry_ms` has passed, so a metadata
  // restart is a pause, not an error.
  explicit Client(std::string endpoint, int timeout_ms = 10000, int retry_ms = 30000);

  Status Call(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep);
  Result<wire::ClusterMap> GetMap();
  const std::string& endpoint() const { return channel_.endpoint(); }

 private:
  rpc::Channel channel_;
  int timeout_ms_;
  int retry_ms_;
};

}  // namespace ringfs::meta
