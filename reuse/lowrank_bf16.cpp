// The low-rank product's GEMMs in bf16 (see lowrank_bf16.h).
#include "reuse/lowrank_bf16.h"

#include <algorithm>

#include "core/bf16_gemm.h"
#include "core/parallel.h"
#include "core/transpose.h"

namespace deja::reuse {

namespace {
constexpr int64_t kChunkRows = 256;  // Z's rows per packed chunk (even: chunks start on a pair)
}

DirectionProductsBf16::DirectionProductsBf16(const float* g, int64_t inner_, int64_t m_, Bf16Pass pass)
    : inner(inner_), m(m_), ld_rows(core::round_up_16(m_)), words((m_ + 1) / 2) {
  if (pass == Bf16Pass::forward) {
    row_pairs.resize(static_cast<size_t>((inner + 1) / 2 * ld_rows));
    core::pack_row_pairs(g, inner, m, m, row_pairs.data(), ld_rows);
  } else {
    column_pairs.resize(static_cast<size_t>(inner * words));
    core::pack_column_pairs(g, inner, m, m, column_pairs.data(), words);
  }
}

DirectionsBf16::DirectionsBf16(const float* v, int64_t l_, int64_t h_, int64_t k_, Bf16Pass pass)
    : l(l_), h(h_), k(k_), blocks((k_ + l_ - 1) / l_), row_pairs_per_block((l_ + 1) / 2 * h_), words_h((h_ + 1) / 2) {
  const bool forward = pass == Bf16Pass::forward;
  if (forward)
    along_rows.resize(static_cast<size_t>(blocks * row_pairs_per_block));
  else
    along_directions.resize(static_cast<size_t>(blocks * l * words_h));
  for (int64_t s = 0; s < blocks; ++s) {
    const float* vs = v + s * l * h;
    if (forward)
      core::pack_row_pairs(vs, width(s), h, h, along_rows.data() + s * row_pairs_per_block, h);
    else
      core::pack_column_pairs(vs, width(s), h, h, along_directions.data() + s * l * words_h, words_h);
  }
}

void project_tile_bf16(const DirectionsBf16& v, int64_t s, const float* piece, int64_t count, float* p,
                       int64_t ldp, std::vector<uint32_t>& scratch) {
  // A = V_s^T: word (q, pair) at pair * H + q; B = the piece's rows paired
  const int64_t len = v.width(s), pairs = (len + 1) / 2, ld = core::round_up_16(count);
  scratch.resize(static_cast<size_t>(pairs * ld));
  core::pack_row_pairs(piece, len, count, count, scratch.data(), ld);
  core::gemm_bf16_pairs(v.h, count, pairs, v.along_rows.data() + s * v.row_pairs_per_block, 1, v.h, scratch.data(),
                        ld, p, ldp, false);
}

void direction_terms_bf16(const DirectionsBf16& v, int64_t s, const float* qt_s, int64_t ldq, int64_t count,
                          float* piece, std::vector<uint32_t>& scratch) {
  // A = V_s: word (j, pair) at j * words_h + pair; B = Q_s^T's rows paired
  const int64_t ld = core::round_up_16(count);
  scratch.resize(static_cast<size_t>(v.words_h * ld));
  core::pack_row_pairs(qt_s, v.h, count, ldq, scratch.data(), ld);
  core::gemm_bf16_pairs(v.width(s), count, v.words_h, v.along_directions.data() + s * v.l * v.words_h, v.words_h, 1,
                        scratch.data(), ld, piece, count, false);
}

void tile_output_bf16(const float* p_tile, int64_t ldp_row, int64_t count, const DirectionProductsBf16& g,
                      float* y, int64_t ldy, std::vector<uint32_t>& scratch) {
  // A = P_tile^T with pairs along the inner index: word (p, r) at p * ld + r
  const int64_t pairs = (g.inner + 1) / 2, ld = core::round_up_16(count);
  scratch.resize(static_cast<size_t>(pairs * ld));
  core::pack_row_pairs(p_tile, g.inner, count, ldp_row, scratch.data(), ld);
  core::gemm_bf16_pairs(count, g.m, pairs, scratch.data(), 1, ld, g.row_pairs.data(), g.ld_rows, y, ldy, false);
}

void tile_qt_bf16(const DirectionProductsBf16& g, const float* dy_tile, int64_t count, float* qt, int64_t ldq,
                  std::vector<float>& transposed, std::vector<uint32_t>& scratch) {
  // B = dY_tile^T with pairs along M: word (q, r) at q * ld + r
  const int64_t ld = core::round_up_16(count);
  transposed.resize(static_cast<size_t>(g.m * ld));
  core::transpose(dy_tile, count, g.m, g.m, transposed.data(), ld);
  scratch.resize(static_cast<size_t>(g.words * ld));
  core::pack_row_pairs(transposed.data(), g.m, count, ld, scratch.data(), ld);
  core::gemm_bf16_pairs(g.inner, count, g.words, g.column_pairs.data(), g.words, 1, scratch.data(), ld, qt, ldq,
                        false);
}

void projections_times_dy_bf16(const uint32_t* p_pairs, int64_t ld_words, int64_t inner, int64_t n,
                               const float* dy, int64_t m, float* z) {
  const int64_t ld_dy = core::round_up_16(m), chunks = (n + kChunkRows - 1) / kChunkRows;
  std::vector<std::vector<float>> partial(static_cast<size_t>(core::num_threads()));
  core::parallel_for_indexed(chunks, [&](int thread, int64_t c0, int64_t c1) {
    std::vector<float>& zt = partial[static_cast<size_t>(thread)];
    zt.assign(static_cast<size_t>(inner * m), 0.0f);
    std::vector<uint32_t> b(static_cast<size_t>(kChunkRows / 2 * ld_dy));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = c * kChunkRows, count = std::min(kChunkRows, n - r0), pairs = (count + 1) / 2;
      core::pack_row_pairs(dy + r0 * m, count, m, m, b.data(), ld_dy);  // dY's rows paired
      core::gemm_bf16_pairs(inner, m, pairs, p_pairs + r0 / 2, ld_words, 1, b.data(), ld_dy, zt.data(), m, true);
    }
  }, 1);
  std::fill_n(z, inner * m, 0.0f);
  for (const auto& zt : partial)
    for (size_t i = 0; i < zt.size(); ++i) z[i] += zt[i];
}

}  // namespace deja::reuse
