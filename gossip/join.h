// Joining by one address: any daemon of a cluster (the metadata service or
// any block daemon) answers wire::Op::kGossipState with its gossip view, in
// which the metadata service and every member's gossip endpoint can be
// found. Mounts, the CLI and new block daemons need nothing else.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "gossip/member.h"

namespace ringfs::gossip {

struct ClusterView {
  std::string state;                 // the full state, for Agent::MergeFullState
  std::string meta_rpc, meta_gossip;  // the metadata service's endpoints
  std::vector<std::string> seeds;    // gossip endpoints of usable members
  std::vector<Member> members;
};

// Asks the daemon at `addr` (tcp://host:port of its RPC service).
Result<ClusterView> Discover(const std::string& addr, int timeout_ms);

// The metadata service's endpoint from `addr`: itself if it is the service
// (or an older one that serves no gossip state), else the service it names.
Result<std::string> ResolveMeta(const std::string& addr, int timeout_ms);

// The gossip endpoint a daemon binds by default: its RPC endpoint's host,
// any port (the bound one is what it advertises).
std::string DefaultEndpoint(const std::string& rpc_endpoint);

}  // namespace ringfs::gossip
