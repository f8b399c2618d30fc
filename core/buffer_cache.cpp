#include "core/buffer_cache.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace deja::core {
namespace {

// Buffers below this go straight to malloc (it recycles small blocks itself).
constexpr size_t kMinCachedBytes = size_t{1} << 20;
// Cap on memory held idle in the cache.
constexpr size_t kMaxCachedBytes = size_t{3} << 30;

size_t rounded(size_t bytes) {
  // 4 KiB granularity for big buffers, so near-equal sizes share entries.
  size_t unit = bytes >= kMinCachedBytes ? 4096 : 64;
  return (std::max<size_t>(bytes, 1) + unit - 1) / unit * unit;
}

struct Cache {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free_by_size;
  BufferCacheStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // leaked on purpose: outlives static tensors at exit
  return *c;
}

}  // namespace

void* acquire_buffer(size_t bytes) {
  size_t size = rounded(bytes);
  if (size >= kMinCachedBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_by_size.find(size);
    if (it != c.free_by_size.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= size;
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) throw std::bad_alloc();
  return p;
}

void release_buffer(void* buffer, size_t bytes) {
  if (!buffer) return;
  size_t size = rounded(bytes);
  if (size >= kMinCachedBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + size <= kMaxCachedBytes) {
      c.free_by_size[size].push_back(buffer);
      c.stats.cached_bytes += size;
      return;
    }
  }
  std::free(buffer);
}

BufferCacheStats buffer_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void trim_buffer_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, list] : c.free_by_size)
    for (void* p : list) std::free(p);
  c.free_by_size.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace deja::core
