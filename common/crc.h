#pragma once
#include <cstddef>
#include <cstdint>

namespace ringfs {
// CRC32C (Castagnoli), hardware-accelerated through ISA-L.
uint32_t Crc32c(const void* data, size_t len, uint32_t seed = 0);
}  // namespace ringfs
