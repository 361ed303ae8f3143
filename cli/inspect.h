// `ringfs locate`: where each block of a file is.
#pragma once

#include <string>

#include "common/status.h"

namespace ringfs::cli {

Status PrintLocate(const std::string& path, const std::string& meta_endpoint_override);

}  // namespace ringfs::cli
