// Readable test failures for the wire types (tests only).
#pragma once

#include <ostream>

#include "common/wire.h"

namespace ringfs::wire {
inline std::ostream& operator<<(std::ostream& os, const BlockVersion& v) {
  return os << "{epoch " << v.epoch << ", height " << v.height << ", writer " << v.writer << "}";
}
inline std::ostream& operator<<(std::ostream& os, const VersionRun& r) {
  return os << "[" << r.first << " x" << r.count << " " << r.version << "]";
}
}  // namespace ringfs::wire
