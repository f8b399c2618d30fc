// The low-rank product's products in bf16 (core/bf16_gemm.h), for
// "bf16": true: the three GEMMs (Y = P^T G, Z = P dY, Q^T = G dY^T) and,
// from a row source (conv layers), the projections P_s = V_s^T X_s^T and the
// dX terms V_s Q_s^T. Operands are rounded to bf16 as they are packed, sums
// stay float. Inner size `inner` = blocks * H; P is [inner][n], G [inner][M],
// dY [n][M].
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace deja::reuse {

// Which pass packs an operand: each pass packs only the forms it reads.
enum class Bf16Pass { forward, backward };

// G packed once per pass: for Y in the forward, for Q^T in the backward.
struct DirectionProductsBf16 {
  int64_t inner = 0, m = 0;
  int64_t ld_rows = 0;  // round_up_16(M)
  int64_t words = 0;    // ceil(M / 2)
  std::vector<uint32_t> row_pairs;     // forward, [ceil(inner / 2)][ld_rows]: pairs along the inner index (Y)
  std::vector<uint32_t> column_pairs;  // backward, [inner][words]: pairs along M (Q^T)
  DirectionProductsBf16(const float* g, int64_t inner, int64_t m, Bf16Pass pass);
};

// The directions V ([blocks][L][H], the last block's rows past K zero)
// packed once per pass: for the projection in the forward, for the dX terms
// in the backward.
struct DirectionsBf16 {
  int64_t l = 0, h = 0, k = 0, blocks = 0;
  int64_t row_pairs_per_block = 0;  // ceil(L / 2) * H words: pairs along the block's rows, [ceil(L/2)][H]
  int64_t words_h = 0;              // ceil(H / 2)
  std::vector<uint32_t> along_rows;        // forward, per block: V_s^T's operand of the projection
  std::vector<uint32_t> along_directions;  // backward, per block, [L][words_h]: V_s's operand of the dX terms
  DirectionsBf16(const float* v, int64_t l, int64_t h, int64_t k, Bf16Pass pass);
  int64_t width(int64_t s) const { return std::min(l, k - s * l); }
};

// P_s's columns for a tile of `count` rows: p[q * ldp + i] = sum_j V_s[j, q]
// piece[j * count + i] (piece: block s's K-major columns of the tile).
void project_tile_bf16(const DirectionsBf16& v, int64_t s, const float* piece, int64_t count, float* p,
                       int64_t ldp, std::vector<uint32_t>& scratch);

// piece[j * count + i] = sum_q V_s[j, q] qt_s[q * ldq + i]: block s's part of
// a K-major dX tile, (Q_s V_s^T)^T.
void direction_terms_bf16(const DirectionsBf16& v, int64_t s, const float* qt_s, int64_t ldq, int64_t count,
                          float* piece, std::vector<uint32_t>& scratch);

// Y[0:count][0:M] = P_tile^T G for a tile of `count` rows of P (columns of the
// [inner][ldp_row] matrix at p_tile). `scratch` is reused between tiles.
void tile_output_bf16(const float* p_tile, int64_t ldp_row, int64_t count, const DirectionProductsBf16& g,
                      float* y, int64_t ldy, std::vector<uint32_t>& scratch);

// Q^T[0:inner][0:count] = G dY_tile^T for `count` rows of dY (ld M).
void tile_qt_bf16(const DirectionProductsBf16& g, const float* dy_tile, int64_t count, float* qt, int64_t ldq,
                  std::vector<float>& transposed, std::vector<uint32_t>& scratch);

// Z[inner][M] = P dY over all n rows, from P in pair words along the rows
// ([inner][ld_words], ld_words >= ceil(n / 2)); the rows split between the
// threads (each pairs its 256-row chunks of dY while in cache) and summed.
void projections_times_dy_bf16(const uint32_t* p_pairs, int64_t ld_words, int64_t inner, int64_t n,
                               const float* dy, int64_t m, float* z);

}  // namespace deja::reuse
