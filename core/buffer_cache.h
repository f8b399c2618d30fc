// A cache of large aligned buffers, reused by size. Training allocates the same
// big activation and gradient buffers every step; glibc serves blocks above
// its mmap threshold (32 MiB at most) with fresh mmaps, so every step would pay
// the page faults of zeroed pages again (about 25 ms for a 33 MB ReLU output
// here). Freed large buffers are kept, up to a byte cap, and handed back to the
// next request of the same rounded size.
#pragma once
#include <cstddef>

namespace deja::core {

// 64-byte aligned memory of at least `bytes` (rounded up internally); never null.
void* acquire_buffer(size_t bytes);
// Returns a buffer from acquire_buffer(bytes) with the same `bytes`.
void release_buffer(void* buffer, size_t bytes);

struct BufferCacheStats {
  size_t cached_bytes = 0, hits = 0, misses = 0;
};
BufferCacheStats buffer_cache_stats();
// Frees every cached buffer (tests, and apps between phases if memory is tight).
void trim_buffer_cache();

}  // namespace deja::core
