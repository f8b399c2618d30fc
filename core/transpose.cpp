#include "core/transpose.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace deja::core {

void transpose_plain(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst,
                     int64_t ldd) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

namespace {

#ifdef __AVX512F__
// The zero-masking forms with all lanes on: the same instructions, but GCC
// 12's plain forms start from an "undefined" vector and warn about it.
constexpr __mmask16 kAll = 0xffff;
constexpr __mmask8 kAll8 = 0xff;

// One 16 x 16 block, columns [j0, j0 + 16) of 16 rows: 16 row loads, four
// rounds of shuffles, 16 row stores.
inline void transpose16(const float* const* rows, int64_t j0, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + j0);
  // Round 1: interleave pairs of rows (32-bit elements).
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(kAll, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[i], r[i + 1]);
  }
  // Round 2: 64-bit elements across row pairs 4 apart.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, _mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, _mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, _mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, _mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // Rounds 3 and 4: 128-bit lanes.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_f32x4(kAll, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_f32x4(kAll, r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_maskz_shuffle_f32x4(kAll, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_f32x4(kAll, r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_maskz_shuffle_f32x4(kAll, t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_maskz_shuffle_f32x4(kAll, t[i + 4], t[i + 12], 0xdd);
  }
  // r[q] now holds column q of the block.
  for (int q = 0; q < 16; ++q) _mm512_storeu_ps(dst + q * ldd, r[q]);
}
#endif

}  // namespace

void transpose_rows(const float* const* rows, int64_t count, int64_t cols, float* dst, int64_t ldd) {
  int64_t i0 = 0;
#ifdef __AVX512F__
  for (; i0 + 16 <= count; i0 += 16) {
    const float* const* slab = rows + i0;
    int64_t j0 = 0;
    for (; j0 + 16 <= cols; j0 += 16) transpose16(slab, j0, dst + j0 * ldd + i0, ldd);
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t j = j0; j < cols; ++j) dst[j * ldd + i0 + i] = slab[i][j];
  }
#endif
  // Remaining rows, in 8-column strips so each source row is read in cache lines.
  for (int64_t j0 = 0; j0 < cols; j0 += 8) {
    const int64_t j1 = j0 + 8 < cols ? j0 + 8 : cols;
    for (int64_t i = i0; i < count; ++i)
      for (int64_t j = j0; j < j1; ++j) dst[j * ldd + i] = rows[i][j];
  }
}

void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd) {
  // Row pointers a slab at a time (the register transpose reads rows through them).
  constexpr int64_t kSlab = 256;
  const float* ptrs[kSlab];
  for (int64_t i0 = 0; i0 < rows; i0 += kSlab) {
    const int64_t count = rows - i0 < kSlab ? rows - i0 : kSlab;
    for (int64_t i = 0; i < count; ++i) ptrs[i] = src + (i0 + i) * lds;
    transpose_rows(ptrs, count, cols, dst + i0, ldd);
  }
}

}  // namespace deja::core
