// keep_projection's pieces (see kept_projection.h).
#include "reuse/kept_projection.h"

#include <algorithm>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/serial_blas.h"
#include "core/stopwatch.h"
#include "reuse/lsh.h"

namespace deja::reuse {

namespace {
constexpr int64_t kTileRows = 256;  // rows per K-major tile from a source (one CifarNet conv2 image)
}  // namespace

std::vector<float> block_directions(const Hasher& hasher) {
  const int64_t l = hasher.L(), h = hasher.H(), blocks = hasher.blocks();
  std::vector<float> v(static_cast<size_t>(blocks * l * h), 0.0f);
  for (int64_t s = 0; s < blocks; ++s) {
    const std::vector<float> r = hasher.projections(s);  // [L][H]
    const int64_t len = hasher.block_width(s);
    std::copy(r.begin(), r.begin() + len * h, v.begin() + s * l * h);
  }
  return v;
}

void project_rows(const core::RowSource& x, const float* v, int64_t l, int64_t h, float* p, int64_t ldp,
                  double* lowering_s) {
  const int64_t n = x.rows(), k = x.cols(), blocks = (k + l - 1) / l;
  core::SerialBlasScope serial;  // one small GEMM per block and tile, tiles over our threads
  if (const float* xd = x.data()) {
    core::parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t s = b0; s < b1; ++s)
        core::gemm(core::Trans::No, core::Trans::No, n, h, std::min(l, k - s * l), 1.0f, xd + s * l, k,
                   v + s * l * h, h, 0.0f, p + s * h, ldp);
    }, 1);
    return;
  }
  double lower = 0.0;  // thread 0's fills
  core::parallel_for_indexed((n + kTileRows - 1) / kTileRows, [&](int thread, int64_t t0, int64_t t1) {
    std::vector<float> tile(static_cast<size_t>(kTileRows * k));
    core::Stopwatch watch;
    double mine = 0.0;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kTileRows, count = std::min(kTileRows, n - r0);
      watch.restart();
      x.fill_kmajor(r0, count, 0, k, tile.data(), count);  // [K][count]
      mine += watch.seconds();
      for (int64_t s = 0; s < blocks; ++s)  // P_s = X_s V_s, X_s^T being the tile's rows s*l ..
        core::gemm(core::Trans::Yes, core::Trans::No, count, h, std::min(l, k - s * l), 1.0f,
                   tile.data() + s * l * count, count, v + s * l * h, h, 0.0f, p + r0 * ldp + s * h, ldp);
    }
    if (thread == 0) lower = mine;
  }, 1);
  if (lowering_s) *lowering_s += lower;
}

void remove_projection(float* table, int64_t rows, int64_t ld, const float* v_s, int64_t len, int64_t h) {
  std::vector<float> c(static_cast<size_t>(h));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = table + r * ld;
    std::fill(c.begin(), c.end(), 0.0f);
    for (int64_t j = 0; j < len; ++j)
      for (int64_t q = 0; q < h; ++q) c[q] += row[j] * v_s[j * h + q];
    for (int64_t j = 0; j < len; ++j) {
      float a = 0.0f;
      for (int64_t q = 0; q < h; ++q) a += v_s[j * h + q] * c[q];
      row[j] -= a;
    }
  }
}

void direction_products(const float* v, int64_t l, int64_t h, const float* w, int64_t m, int64_t k, float* g) {
  const int64_t blocks = (k + l - 1) / l;
  for (int64_t s = 0; s < blocks; ++s)
    core::gemm(core::Trans::Yes, core::Trans::Yes, h, m, std::min(l, k - s * l), 1.0f, v + s * l * h, h,
               w + s * l, k, 0.0f, g + s * h * m, m);
}

}  // namespace deja::reuse
