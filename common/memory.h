#pragma once

namespace ringfs {
// Keeps block-sized buffers (4 MiB) on the heap instead of fresh mmap()s:
// glibc otherwise maps and unmaps each one, and the page faults and page
// zeroing cost more CPU than the data copy itself.
void TuneMallocForBlocks();
}  // namespace ringfs
