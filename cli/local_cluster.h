// `ringfs up` / `ringfs down`: a whole cluster on this machine, one command.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace ringfs::cli {

struct UpOptions {
  std::string dir;
  std::string mount;  // "" = DIR/mnt; "none" = no mount
  int nodes = 3;
  int zones = 1;
  bool allow_other = false;
  int timeout_s = 30;
  // Extra flags for ringfs-meta (kept in cluster.conf for later `up`s).
  std::vector<std::string> meta_args;
  std::vector<std::string> blockd_args;  // the same for every ringfs-blockd
};

// Starts whatever part of the cluster in `dir` is not running (so it also
// restarts a killed daemon), waits until the mount is usable, prints a summary.
Status Up(const UpOptions& opts);
// Unmounts and stops every daemon of the cluster in `dir`.
Status Down(const std::string& dir);
// The metadata endpoint recorded for the cluster in `dir`.
Result<std::string> MetaEndpoint(const std::string& dir);
// Starts one more block daemon in the local cluster in `dir` and waits until
// it has registered (joining); returns its address, for `node add`.
Result<std::string> AddLocalNode(const std::string& dir, const std::string& zone, int timeout_s);

}  // namespace ringfs::cli
