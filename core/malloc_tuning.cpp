#include "core/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>

namespace deja::core {

void keep_freed_memory() {
  // glibc caps the mmap threshold at 32 MiB on 64-bit systems; blocks above
  // it (the largest activations) go through core/buffer_cache.h instead.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace deja::core
