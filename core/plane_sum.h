// Sums of float runs that vectorise. A loop `s += x[i]` is one serial chain of
// dependent adds (GCC may not reorder float adds), about 4 cycles per element;
// these keep 16 independent partial sums (one AVX-512 register), added in a
// fixed order, so the result depends only on the data, never on threads.
#pragma once

#include <cstdint>

namespace deja::core {

// Sum over i in [0, n) of term(i): lanes[j] collects the terms i = j, j + 16,
// ...; the lanes are then added in order, then the tail. `term` must be a
// plain function of i (it may also store, e.g. copy the element it reads).
template <class Term>
inline float lane_sum(int64_t n, Term&& term) {
  constexpr int64_t kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] += term(i + j);
  float tail = 0.0f;
  for (; i < n; ++i) tail += term(i);
  float total = 0.0f;
  for (int64_t j = 0; j < kLanes; ++j) total += lanes[j];
  return total + tail;
}

// Sum of x[0..n).
float sum_run(const float* x, int64_t n);
// Copies src[0..n) to dst and returns the sum (one pass over src).
float copy_and_sum_run(const float* src, float* dst, int64_t n);

}  // namespace deja::core
