// The 16 x 16 float transpose in AVX-512 registers, shared by the tile
// transposes (core/transpose.cpp) and the reuse engine's centroid sums
// (reuse/clustering.cpp): r[i] holds row i on entry and column i on return.
// Four rounds of shuffles (32-bit, 64-bit, then two of 128-bit lanes), 64 in
// all; callers keep their loops out of line around it, since the 32 live
// registers spill when it is inlined into a larger loop body.
#pragma once

#ifdef __AVX512F__
#include <immintrin.h>

namespace deja::core {

inline void transpose16x16(__m512 (&r)[16]) {
  // The zero-masking forms with all lanes on: the same instructions, but
  // GCC 12's plain forms start from an "undefined" vector and warn about it.
  constexpr __mmask16 all = 0xffff;
  constexpr __mmask8 all8 = 0xff;
  __m512 t[16];
  // Round 1: interleave pairs of rows (32-bit elements).
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
  }
  // Round 2: 64-bit elements across row pairs 2 apart.
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, b, d));
  }
  // Rounds 3 and 4: 128-bit lanes.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_maskz_shuffle_f32x4(all, t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_maskz_shuffle_f32x4(all, t[i + 4], t[i + 12], 0xdd);
  }
}

}  // namespace deja::core
#endif
