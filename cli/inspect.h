// `ringfs locate`: where each block of a file is.
#pragma once

#include <string>

#include "common/status.h"

namespace ringfs::cli {

// `check`: fail unless every block is at its full count of current copies
// on distinct nodes (and zones, where there are enough), asked of the nodes.
Status PrintLocate(const std::string& path, const std::string& meta_endpoint_override, bool check);

}  // namespace ringfs::cli
