// `ringfs node add|remove|list` and `ringfs status`: operating a cluster's
// membership and watching its health and data movement.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ringfs::cli {

struct NodeCommand {
  std::string meta;          // metadata service endpoint
  std::string addr;          // node add: the joining blockd's address
  uint32_t id = 0;           // node remove
  std::string zone;          // node add: "" = as the node registered
  uint32_t weight = UINT32_MAX;  // node add: UINT32_MAX = as the node registered
  bool dry_run = false;
  bool force = false;
  bool json = false;
  bool all = false;          // node list: out nodes too
  bool watch = false;        // status: refresh until movement ends (or Ctrl-C)
};

Status NodeAdd(const NodeCommand& c);
Status NodeRemove(const NodeCommand& c);
Status NodeList(const NodeCommand& c);
Status ClusterStatus(const NodeCommand& c);
// `ringfs members`: the gossip view of the daemon at `addr`.
Status PrintMembers(const std::string& addr, bool json);
// The metadata service, found through the gossip view of any member.
Result<std::string> FindMeta(const std::string& addr);

}  // namespace ringfs::cli
