// bf16 products (see bf16_gemm.h): a register-blocked kernel over pair
// words, and the packing that rounds float operands into them.
#include "core/bf16_gemm.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__)
#define DEJA_HAVE_BF16 1
#include <immintrin.h>
#endif

namespace deja::core {

namespace {

float low_half(uint32_t w) { return from_bf16(static_cast<uint16_t>(w & 0xffffu)); }
float high_half(uint32_t w) { return from_bf16(static_cast<uint16_t>(w >> 16)); }
uint32_t pair_word(float lo, float hi) {
  return static_cast<uint32_t>(to_bf16(lo)) | (static_cast<uint32_t>(to_bf16(hi)) << 16);
}

#if DEJA_HAVE_BF16
__mmask16 first_lanes(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

// C[0:R, 0:16 NV) (+)= sum_p a(r, p) . b[p][0:16 NV): R x NV accumulators
// (at most 24 of the 32 vector registers), one broadcast of a pair word per
// row and one load of b per vector per pair; `last` masks the final vector's
// store when the block ends inside it.
template <int R, int NV>
void kernel_block(int64_t pairs, const uint32_t* a, int64_t a_row, int64_t a_pair, const uint32_t* b,
                  int64_t ldb, float* c, int64_t ldc, bool accumulate, __mmask16 last) {
  __m512 sum[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) sum[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + p * ldb + int64_t{16} * v);
    const uint32_t* ap = a + p * a_pair;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[r * a_row]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) sum[r][v] = _mm512_dpbf16_ps(sum[r][v], av, bv[v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      float* dst = c + r * ldc + int64_t{16} * v;
      __m512 out = sum[r][v];
      if (accumulate) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mask, dst));
      _mm512_mask_storeu_ps(dst, mask, out);
    }
}

using BlockFn = void (*)(int64_t, const uint32_t*, int64_t, int64_t, const uint32_t*, int64_t, float*, int64_t,
                         bool, __mmask16);
constexpr int kRows = 6;     // rows per register block
constexpr int kVectors = 4;  // 16-float vectors per register block (64 columns)

template <int R>
constexpr BlockFn block_for(int nv) {
  return nv == 1 ? kernel_block<R, 1> : nv == 2 ? kernel_block<R, 2> : nv == 3 ? kernel_block<R, 3> : kernel_block<R, 4>;
}
BlockFn block_fn(int rows, int nv) {
  switch (rows) {
    case 1: return block_for<1>(nv);
    case 2: return block_for<2>(nv);
    case 3: return block_for<3>(nv);
    case 4: return block_for<4>(nv);
    case 5: return block_for<5>(nv);
    default: return block_for<6>(nv);
  }
}
#endif

}  // namespace

bool bf16_available() {
#if DEJA_HAVE_BF16
  return true;
#else
  return false;
#endif
}

uint16_t to_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero, denormal: signed 0
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu))
    return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays a (quiet) NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

void pack_row_pairs(const float* x, int64_t rows, int64_t cols, int64_t lds, uint32_t* out, int64_t ldo) {
  const int64_t pairs = (rows + 1) / 2;
#if DEJA_HAVE_BF16
  alignas(64) int16_t order[32];
  for (int t = 0; t < 16; ++t) {
    order[size_t{2} * t] = static_cast<int16_t>(t);
    order[size_t{2} * t + 1] = static_cast<int16_t>(16 + t);
  }
  const __m512i interleave = _mm512_load_si512(order);
#endif
  for (int64_t p = 0; p < pairs; ++p) {
    const float* lo = x + 2 * p * lds;
    const float* hi = 2 * p + 1 < rows ? lo + lds : nullptr;
    uint32_t* o = out + p * ldo;
    int64_t j = 0;
#if DEJA_HAVE_BF16
    for (; j + 16 <= ldo; j += 16) {
      const __mmask16 mask = first_lanes(std::max<int64_t>(0, cols - j));
      const __m512 l = _mm512_maskz_loadu_ps(mask, lo + j);
      const __m512 h = hi ? _mm512_maskz_loadu_ps(mask, hi + j) : _mm512_setzero_ps();
      // [l0..l15, h0..h15] as bf16, interleaved into words (l_j, h_j)
      const __m512i words = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(h, l));
      _mm512_storeu_si512(o + j, words);
    }
#endif
    for (; j < ldo; ++j) o[j] = j < cols ? pair_word(lo[j], hi ? hi[j] : 0.0f) : 0u;
  }
}

void pack_column_pairs(const float* x, int64_t rows, int64_t cols, int64_t lds, uint32_t* out, int64_t ldo) {
  const int64_t words = (cols + 1) / 2;
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = x + i * lds;
    uint32_t* o = out + i * ldo;
    int64_t q = 0;
#if DEJA_HAVE_BF16
    for (; q + 16 <= words; q += 16) {  // 32 floats -> 16 words, in order
      const int64_t c0 = 2 * q;
      const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(cols - c0), row + c0);
      const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(std::max<int64_t>(0, cols - c0 - 16)), row + c0 + 16);
      _mm512_storeu_si512(o + q, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
#endif
    for (; q < words; ++q) o[q] = pair_word(row[2 * q], 2 * q + 1 < cols ? row[2 * q + 1] : 0.0f);
  }
}

void gemm_bf16_pairs(int64_t m, int64_t n, int64_t pairs, const uint32_t* a, int64_t a_row, int64_t a_pair,
                     const uint32_t* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
#if DEJA_HAVE_BF16
  constexpr int64_t kBlockColumns = int64_t{16} * kVectors;
  for (int64_t j0 = 0; j0 < n; j0 += kBlockColumns) {
    const int64_t width = std::min(kBlockColumns, n - j0);
    const int nv = static_cast<int>((width + 15) / 16);
    const __mmask16 last = first_lanes(width - int64_t{16} * (nv - 1));
    for (int64_t i0 = 0; i0 < m; i0 += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, m - i0));
      block_fn(rows, nv)(pairs, a + i0 * a_row, a_row, a_pair, b + j0, ldb, c + i0 * ldc + j0, ldc, accumulate,
                         last);
    }
  }
#else
  gemm_bf16_pairs_plain(m, n, pairs, a, a_row, a_pair, b, ldb, c, ldc, accumulate);
#endif
}

void gemm_bf16_pairs_plain(int64_t m, int64_t n, int64_t pairs, const uint32_t* a, int64_t a_row,
                           int64_t a_pair, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
                           bool accumulate) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float sum = accumulate ? c[i * ldc + j] : 0.0f;
      for (int64_t p = 0; p < pairs; ++p) {
        const uint32_t x = a[i * a_row + p * a_pair], y = b[p * ldb + j];
        sum += low_half(x) * low_half(y) + high_half(x) * high_half(y);
      }
      c[i * ldc + j] = sum;
    }
}

}  // namespace deja::core
