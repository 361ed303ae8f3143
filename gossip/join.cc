#include "gossip/join.h"

#include "common/rpc.h"
#include "common/wire.h"
#include "gossip/message.h"

namespace ringfs::gossip {

Result<ClusterView> Discover(const std::string& addr, int timeout_ms) {
  rpc::Channel ch(addr);
  wire::GossipReply rep;
  RETURN_IF_ERROR(ch.Invoke(wire::Op::kGossipState, wire::MetaRequest{}, &rep, timeout_ms));
  ASSIGN_OR_RETURN(Message msg, Decode(rep.state));
  if (msg.kind != Kind::kFullState) return Status::Error(EPROTO, addr + " sent no full state");
  ClusterView v;
  v.state = std::move(rep.state);
  v.members = std::move(msg.members);
  for (const Member& m : v.members) {
    if (!m.usable()) continue;
    if (m.role == "meta") v.meta_rpc = m.rpc_addr, v.meta_gossip = m.gossip_addr;
    if (!m.gossip_addr.empty()) v.seeds.push_back(m.gossip_addr);
  }
  if (v.seeds.empty() && !rep.gossip_addr.empty()) v.seeds.push_back(rep.gossip_addr);
  return v;
}

Result<std::string> ResolveMeta(const std::string& addr, int timeout_ms) {
  auto v = Discover(addr, timeout_ms);
  if (v.ok() && !v->meta_rpc.empty()) return v->meta_rpc;
  if (!v.ok() && v.status().code() != EOPNOTSUPP) return v.status();
  return addr;  // the service itself, before its gossip agent knows itself
}

std::string DefaultEndpoint(const std::string& rpc_endpoint) {
  const size_t colon = rpc_endpoint.rfind(':');
  return (colon == std::string::npos ? rpc_endpoint : rpc_endpoint.substr(0, colon)) + ":*";
}

}  // namespace ringfs::gossip
