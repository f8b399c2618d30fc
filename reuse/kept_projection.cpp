// keep_projection's pieces (see kept_projection.h).
#include "reuse/kept_projection.h"

#include <algorithm>
#include <array>
#include <utility>

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

#ifdef __AVX512F__
namespace {

// One 16-row slab, directions q0 .. q0 + NQ - 1: tile[j][i] (+)= sum_q
// v_s[j][q0 + q] qt[q0 + q][i]. The NQ rows of Q^T stay in registers; eight
// columns j at a time give eight independent FMA chains (one chain would
// wait on the FMA latency at every step).
template <int NQ>
void terms_slab(float* tile, int64_t ldt, int64_t len, __mmask16 mask, const float* v_s, int64_t h, int64_t q0,
                const float* qt, int64_t ldq, bool load) {
  // (unrolled by hand-set pragmas: GCC's own limits leave qv and acc on the stack)
  __m512 qv[NQ];
#pragma GCC unroll 16
  for (int q = 0; q < NQ; ++q) qv[q] = _mm512_maskz_loadu_ps(mask, qt + (q0 + q) * ldq);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int u = 0; u < 8; ++u)
      acc[u] = load ? _mm512_maskz_loadu_ps(mask, tile + (j + u) * ldt) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q)
#pragma GCC unroll 8
      for (int u = 0; u < 8; ++u) acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(v_s[(j + u) * h + q0 + q]), qv[q], acc[u]);
#pragma GCC unroll 8
    for (int u = 0; u < 8; ++u) _mm512_mask_storeu_ps(tile + (j + u) * ldt, mask, acc[u]);
  }
  for (; j < len; ++j) {
    __m512 acc = load ? _mm512_maskz_loadu_ps(mask, tile + j * ldt) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int q = 0; q < NQ; ++q) acc = _mm512_fmadd_ps(_mm512_set1_ps(v_s[j * h + q0 + q]), qv[q], acc);
    _mm512_mask_storeu_ps(tile + j * ldt, mask, acc);
  }
}

using SlabKernel = void (*)(float*, int64_t, int64_t, __mmask16, const float*, int64_t, int64_t, const float*,
                            int64_t, bool);

template <size_t... I>
constexpr std::array<SlabKernel, sizeof...(I)> slab_kernels(std::index_sequence<I...>) {
  return {&terms_slab<static_cast<int>(I) + 1>...};
}
constexpr auto kSlabKernels = slab_kernels(std::make_index_sequence<16>());  // NQ = 1 .. 16

}  // namespace
#endif

void add_direction_terms(float* tile, int64_t ldt, int64_t len, int64_t count, const float* v_s, int64_t h,
                         const float* qt, int64_t ldq, bool add) {
  int64_t i0 = 0;
#ifdef __AVX512F__
  // 16 rows at a time, up to 16 directions per pass over the slab's columns.
  for (; i0 < count; i0 += 16) {
    const int64_t rows = std::min<int64_t>(16, count - i0);
    const auto mask = static_cast<__mmask16>((1u << rows) - 1u);
    for (int64_t q0 = 0; q0 < h; q0 += 16) {
      const int64_t nq = std::min<int64_t>(16, h - q0);
      kSlabKernels[static_cast<size_t>(nq - 1)](tile + i0, ldt, len, mask, v_s, h, q0, qt + i0, ldq, add || q0 > 0);
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
