// glibc returns freed memory to the kernel eagerly (blocks above its mmap
// threshold are unmapped on free, the heap top is trimmed past 128 KB), so a
// training step that allocates the same tens of megabytes of work buffers
// every step pays their page faults again every step: at the reuse engine's
// fine rungs (per-block tables and per-cluster buffers of 1-20 MB) page
// faults and zeroing took a quarter of the run in this VM. The programs keep
// freed memory instead, as PyTorch users do with MALLOC_MMAP_THRESHOLD_ and
// MALLOC_TRIM_THRESHOLD_ (experiments/compare_pytorch.sh); a user's setting
// of either variable is kept.
#pragma once

namespace deja::core {

void keep_freed_memory();

}  // namespace deja::core
