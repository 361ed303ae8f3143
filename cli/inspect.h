// `ringfs status` and `ringfs locate`: read-only views of a cluster.
#pragma once

#include <string>

#include "common/status.h"

namespace ringfs::cli {

Status PrintStatus(const std::string& meta_endpoint);
Status PrintLocate(const std::string& path, const std::string& meta_endpoint_override);

}  // namespace ringfs::cli
