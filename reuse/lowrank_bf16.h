// The low-rank product's three GEMMs in bf16 (core/bf16_gemm.h), for
// "bf16": true: the operands are rounded to bf16 as they are packed, sums
// stay float. Inner size `inner` = blocks * H; P is [inner][n] (the
// forward's projections), G [inner][M], dY [n][M].
#pragma once

#include <cstdint>
#include <vector>

namespace deja::reuse {

// G packed once per pass in the two forms the products read.
struct DirectionProductsBf16 {
  int64_t inner = 0, m = 0;
  int64_t ld_rows = 0;  // round_up_16(M)
  int64_t words = 0;    // ceil(M / 2)
  std::vector<uint32_t> row_pairs;     // [ceil(inner / 2)][ld_rows]: pairs along the inner index (Y)
  std::vector<uint32_t> column_pairs;  // [inner][words]: pairs along M (Q^T)
  DirectionProductsBf16(const float* g, int64_t inner, int64_t m);
};

// Y[0:count][0:M] = P_tile^T G for a tile of `count` rows of P (columns of the
// [inner][ldp_row] matrix at p_tile). `scratch` is reused between tiles.
void tile_output_bf16(const float* p_tile, int64_t ldp_row, int64_t count, const DirectionProductsBf16& g,
                      float* y, int64_t ldy, std::vector<uint32_t>& scratch);

// Q^T[0:inner][0:count] = G dY_tile^T for `count` rows of dY (ld M).
void tile_qt_bf16(const DirectionProductsBf16& g, const float* dy_tile, int64_t count, float* qt, int64_t ldq,
                  std::vector<float>& transposed, std::vector<uint32_t>& scratch);

// Z[inner][M] = P dY over all n rows, the rows split between the threads
// (each packs its 256-row chunks of P and dY while in cache) and summed.
void projections_times_dy_bf16(const float* p, int64_t inner, int64_t n, const float* dy, int64_t m, float* z);

}  // namespace deja::reuse
