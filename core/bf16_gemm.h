// Products in bfloat16 with float accumulation, for the reuse engine's
// low-rank GEMMs (inner sizes of a few hundred, where OpenBLAS's sgemm reaches
// ~60% of its peak): AVX512_BF16's vdpbf16ps multiplies two bf16 pairs per
// float lane, twice the FMA rate of float (Zen 4: ~220 against ~110 GFLOP/s
// per core; docs/perf-notes.md, Round 16). Operands are rounded to bf16
// (8 significant bits) once, sums stay float.
//
// Pair words: a uint32 holds two bf16 values, element 0 in the low half, the
// two factors of one lane's pair of products. A product over an inner index
// k runs over pairs p = k / 2 (an odd inner size ends on a zero half).
#pragma once

#include <cstdint>

namespace deja::core {

// Whether this build has the bf16 kernels (compiled for a CPU with
// AVX512_BF16). Without them the functions below still compute the same
// results with plain loops (slowly: for tests, not for use).
bool bf16_available();

// Round to nearest even, as the hardware conversion does for normal numbers.
uint16_t to_bf16(float x);
float from_bf16(uint16_t b);

// Pairs along rows: out[p * ldo + j] = (x[2p][j], x[2p + 1][j]) for
// p < ceil(rows / 2), j < cols (x row-major, ld lds; a missing row 2p + 1 is 0);
// columns cols..ldo of out are set to 0 (padding for whole vectors).
void pack_row_pairs(const float* x, int64_t rows, int64_t cols, int64_t lds, uint32_t* out, int64_t ldo);

// Pairs along columns: out[i * ldo + q] = (x[i][2q], x[i][2q + 1]) for
// i < rows, q < ceil(cols / 2) (a missing column is 0): x rounded to bf16 in place order.
void pack_column_pairs(const float* x, int64_t rows, int64_t cols, int64_t lds, uint32_t* out, int64_t ldo);

// C[i][j] = (accumulate ? C[i][j] : 0) + sum_p a(i, p) . b[p][j] for i < m, j < n,
// where a(i, p) = a[i * a_row + p * a_pair] and "." is the two-element dot
// product of pair words. b: [pairs][ldb] words, ldb >= round_up(n, 16), the
// columns past n readable (pack_row_pairs zeroes them).
void gemm_bf16_pairs(int64_t m, int64_t n, int64_t pairs, const uint32_t* a, int64_t a_row, int64_t a_pair,
                     const uint32_t* b, int64_t ldb, float* c, int64_t ldc, bool accumulate);

// The plain loop, the reference the kernel is tested against (same rounding
// of the inputs, float sums in another order).
void gemm_bf16_pairs_plain(int64_t m, int64_t n, int64_t pairs, const uint32_t* a, int64_t a_row,
                           int64_t a_pair, const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
                           bool accumulate);

constexpr int64_t round_up_16(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace deja::core
