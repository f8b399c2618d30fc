#include "core/transpose.h"

#include "core/transpose16x16.h"

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
// Kept out of line: inlined into the slab loop it uses all 32 registers plus
// the loop's and spills (measured: the forward's tile transposes ran 2x slower).
__attribute__((noinline)) void transpose16(const float* const* rows, int64_t j0, float* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + j0);
  transpose16x16(r);
  // r[q] now holds column q of the block.
  for (int q = 0; q < 16; ++q) _mm512_storeu_ps(dst + q * ldd, r[q]);
}


// The same block for source rows anywhere in memory (the reuse engine's
// per-cluster rows, at odd offsets): each 128-bit quarter of a result
// register is one broadcast load (AMD executes those in the load unit, and
// 16-byte loads split cache lines far less often than 64-byte ones), which
// leaves half the shuffles of transpose16. For column chunk c (4 floats),
// v[a] holds rows a, a + 4, a + 8, a + 12 in its four lanes; two rounds of
// in-lane unpacks then give columns 4c .. 4c + 3. Measured on 256 x 50 tiles
// of scattered rows: 1.2 us against 2.3 us for transpose16 with a scalar tail.
inline void transpose16_by_lanes(const float* const* rows, int64_t j0, float* dst, int64_t ldd) {
  for (int64_t c = 0; c < 4; ++c) {
    const int64_t at = j0 + 4 * c;
    __m512 v[4];
    for (int a = 0; a < 4; ++a) {
      __m512 x = _mm512_maskz_broadcast_f32x4(kAll, _mm_loadu_ps(rows[a] + at));
      x = _mm512_mask_broadcast_f32x4(x, 0x00f0, _mm_loadu_ps(rows[a + 4] + at));
      x = _mm512_mask_broadcast_f32x4(x, 0x0f00, _mm_loadu_ps(rows[a + 8] + at));
      v[a] = _mm512_mask_broadcast_f32x4(x, 0xf000, _mm_loadu_ps(rows[a + 12] + at));
    }
    const __m512 t0 = _mm512_maskz_unpacklo_ps(kAll, v[0], v[1]), t1 = _mm512_maskz_unpackhi_ps(kAll, v[0], v[1]);
    const __m512 t2 = _mm512_maskz_unpacklo_ps(kAll, v[2], v[3]), t3 = _mm512_maskz_unpackhi_ps(kAll, v[2], v[3]);
    auto lo = [](__m512 p, __m512 q) {
      return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, _mm512_castps_pd(p), _mm512_castps_pd(q)));
    };
    auto hi = [](__m512 p, __m512 q) {
      return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, _mm512_castps_pd(p), _mm512_castps_pd(q)));
    };
    _mm512_storeu_ps(dst + (4 * c + 0) * ldd, lo(t0, t2));
    _mm512_storeu_ps(dst + (4 * c + 1) * ldd, hi(t0, t2));
    _mm512_storeu_ps(dst + (4 * c + 2) * ldd, lo(t1, t3));
    _mm512_storeu_ps(dst + (4 * c + 3) * ldd, hi(t1, t3));
  }
}

// 16-row slabs through `block`; with 16 or more columns a ragged right edge
// is one more block ending at the last column (it rewrites a few columns
// with the same values) instead of a scalar loop. Returns the rows done.
template <typename Block>
int64_t transpose_slabs(const float* const* rows, int64_t count, int64_t cols, float* dst, int64_t ldd,
                        Block block) {
  int64_t i0 = 0;
  for (; i0 + 16 <= count; i0 += 16) {
    const float* const* slab = rows + i0;
    int64_t j0 = 0;
    for (; j0 + 16 <= cols; j0 += 16) block(slab, j0, dst + j0 * ldd + i0, ldd);
    if (j0 == cols) continue;
    if (cols >= 16) {
      block(slab, cols - 16, dst + (cols - 16) * ldd + i0, ldd);
      continue;
    }
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t j = j0; j < cols; ++j) dst[j * ldd + i0 + i] = slab[i][j];
  }
  return i0;
}
#endif

// Rows [i0, count), in 8-column strips so each source row is read in cache lines.
void transpose_rest(const float* const* rows, int64_t i0, int64_t count, int64_t cols, float* dst,
                    int64_t ldd) {
  for (int64_t j0 = 0; j0 < cols; j0 += 8) {
    const int64_t j1 = j0 + 8 < cols ? j0 + 8 : cols;
    for (int64_t i = i0; i < count; ++i)
      for (int64_t j = j0; j < j1; ++j) dst[j * ldd + i] = rows[i][j];
  }
}

}  // namespace

void transpose_rows(const float* const* rows, int64_t count, int64_t cols, float* dst, int64_t ldd) {
  int64_t i0 = 0;
#ifdef __AVX512F__
  i0 = transpose_slabs(rows, count, cols, dst, ldd, transpose16_by_lanes);
#endif
  transpose_rest(rows, i0, count, cols, dst, ldd);
}

void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd) {
  // Row pointers a slab at a time (the register transpose reads rows through them).
  constexpr int64_t kSlab = 256;
  const float* ptrs[kSlab];
  for (int64_t i0 = 0; i0 < rows; i0 += kSlab) {
    const int64_t count = rows - i0 < kSlab ? rows - i0 : kSlab;
    for (int64_t i = 0; i < count; ++i) ptrs[i] = src + (i0 + i) * lds;
    int64_t done = 0;
#ifdef __AVX512F__
    // Contiguous rows: the all-register transpose is as fast here (measured).
    done = transpose_slabs(ptrs, count, cols, dst + i0, ldd, transpose16);
#endif
    transpose_rest(ptrs, done, count, cols, dst + i0, ldd);
  }
}

}  // namespace deja::core
