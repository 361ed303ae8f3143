#include "common/crc.h"

#include <isa-l/crc.h>

namespace ringfs {
uint32_t Crc32c(const void* data, size_t len, uint32_t seed) {
  return crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(len),
                     seed);
}
}  // namespace ringfs
