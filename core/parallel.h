// One thread knob for the whole process: set_num_threads(n) sizes OpenBLAS's
// pool and ours. Our pool is a small persistent one whose idle workers sleep on
// a condition variable (passive waits): on two cores a spinning OpenMP team
// starves OpenBLAS's threads (design.md section 2). Work is split statically,
// so reductions are reproducible for a given thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace deja::core {

void set_num_threads(int n);  // n >= 1
int num_threads();

// Calls fn(begin, end) on disjoint chunks covering [0, n), one chunk per thread
// (fewer when n < threads * min_chunk). Runs inline when nested or small.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                  int64_t min_chunk = 1);

// Calls fn(thread_index, begin, end); thread_index < num_threads(), for
// per-thread scratch buffers.
void parallel_for_indexed(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn,
                          int64_t min_chunk = 1);

}  // namespace deja::core
