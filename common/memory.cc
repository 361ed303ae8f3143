#include "common/memory.h"

#include <malloc.h>

namespace ringfs {
void TuneMallocForBlocks() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
}  // namespace ringfs
