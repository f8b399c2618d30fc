#include "core/plane_sum.h"

namespace deja::core {

float sum_run(const float* __restrict x, int64_t n) {
  return lane_sum(n, [x](int64_t i) { return x[i]; });
}

float copy_and_sum_run(const float* __restrict src, float* __restrict dst, int64_t n) {
  return lane_sum(n, [src, dst](int64_t i) {
    dst[i] = src[i];
    return src[i];
  });
}

}  // namespace deja::core
