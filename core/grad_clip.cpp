// Global gradient norm and clipping over the flat gradient arena.
#include "core/grad_clip.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/parallel.h"

namespace deja::core {

namespace {
// Fixed block size: the partial sums, and the order they are added in, do not
// depend on the thread count.
constexpr int64_t kBlock = 8192;
}  // namespace

double global_grad_norm(const ParameterArena& params) {
  const int64_t n = params.size();
  if (n == 0) return 0.0;
  const float* g = params.grads().data();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  parallel_for(blocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
      // Eight fixed lanes (vectorisable, and the same order every time).
      double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = lo;
      for (; i + 8 <= hi; i += 8)
        for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(g[i + j]) * g[i + j];
      for (; i < hi; ++i) lane[0] += static_cast<double>(g[i]) * g[i];
      partial[static_cast<size_t>(b)] =
          ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
  }, 4);
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

double clip_grad_norm(ParameterArena& params, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm))
    throw std::invalid_argument(fmt::format("clip_grad_norm: max_norm must be a positive number, got {}", max_norm));
  const double norm = global_grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const float scale = static_cast<float>(max_norm / (norm + 1e-6));
  float* g = params.grads().data();
  parallel_for(params.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) g[i] *= scale;
  }, 1 << 14);
  return norm;
}

}  // namespace deja::core
