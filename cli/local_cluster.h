// `ringfs up` / `ringfs down`: a whole cluster on this machine, one command.
#pragma once

#include <string>

#include "common/status.h"

namespace ringfs::cli {

struct UpOptions {
  std::string dir;
  std::string mount;  // "" = DIR/mnt; "none" = no mount
  int nodes = 3;
  int zones = 1;
  bool allow_other = false;
  int timeout_s = 30;
};

// Starts whatever part of the cluster in `dir` is not running (so it also
// restarts a killed daemon), waits until the mount is usable, prints a summary.
Status Up(const UpOptions& opts);
// Unmounts and stops every daemon of the cluster in `dir`.
Status Down(const std::string& dir);
// The metadata endpoint recorded for the cluster in `dir`.
Result<std::string> MetaEndpoint(const std::string& dir);

}  // namespace ringfs::cli
