#include "common/status.h"

#include <cstring>

namespace ringfs {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = std::strerror(code_);
  if (!msg_.empty()) s += ": " + msg_;
  return s;
}

}  // namespace ringfs
