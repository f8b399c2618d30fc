// std::vector with 64-byte aligned storage. The reuse engine's per-cluster
// tables are read and written a 64-float row at a time with AVX-512; from
// malloc's 16-byte alignment most of those accesses split two cache lines.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace deja::core {

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlignment); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace deja::core
