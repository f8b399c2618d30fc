// keep_projection's pieces (see kept_projection.h).
#include "reuse/kept_projection.h"

#include <algorithm>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/blas.h"
#include "reuse/lsh.h"

namespace deja::reuse {

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

void add_direction_terms(float* tile, int64_t ldt, int64_t len, int64_t count, const float* v_s, int64_t h,
                         const float* qt, int64_t ldq, bool add) {
  int64_t i0 = 0;
#ifdef __AVX512F__
  // 16 rows at a time, 8 directions at a time in registers; every column j
  // of the tile is one load, up to 8 FMAs (v broadcast) and one store.
  for (; i0 < count; i0 += 16) {
    const int64_t rows = std::min<int64_t>(16, count - i0);
    const auto mask = static_cast<__mmask16>((1u << rows) - 1u);
    for (int64_t q0 = 0; q0 < h; q0 += 8) {
      const int64_t nq = std::min<int64_t>(8, h - q0);
      __m512 qv[8];
      for (int64_t q = 0; q < nq; ++q) qv[q] = _mm512_maskz_loadu_ps(mask, qt + (q0 + q) * ldq + i0);
      for (int64_t j = 0; j < len; ++j) {
        float* dst = tile + j * ldt + i0;
        const float* vj = v_s + j * h + q0;
        __m512 acc = add || q0 > 0 ? _mm512_maskz_loadu_ps(mask, dst) : _mm512_setzero_ps();
        for (int64_t q = 0; q < nq; ++q) acc = _mm512_fmadd_ps(_mm512_set1_ps(vj[q]), qv[q], acc);
        _mm512_mask_storeu_ps(dst, mask, acc);
      }
    }
  }
#endif
  for (; i0 < count; ++i0)
    for (int64_t j = 0; j < len; ++j) {
      float a = add ? tile[j * ldt + i0] : 0.0f;
      for (int64_t q = 0; q < h; ++q) a += v_s[j * h + q] * qt[q * ldq + i0];
      tile[j * ldt + i0] = a;
    }
}

void direction_products(const float* v, int64_t l, int64_t h, const float* w, int64_t m, int64_t k, float* g) {
  const int64_t blocks = (k + l - 1) / l;
  for (int64_t s = 0; s < blocks; ++s)
    core::gemm(core::Trans::Yes, core::Trans::Yes, h, m, std::min(l, k - s * l), 1.0f, v + s * l * h, h,
               w + s * l, k, 0.0f, g + s * h * m, m);
}

}  // namespace deja::reuse
