// Locality-sensitive hashers for the reuse engine, one interface, four
// families. Every family projects a block's sub-vector x (length <= L; the
// last block of a row is shorter when L does not divide K, which is the same
// as zero padding) onto H directions R [L x H] and turns the projections into
// a 64-bit key. R is random Gaussian, one matrix per layer and seed shared by
// all blocks, except for "pca", which fits one per block:
//   "sign"     : bit h = (x.r_h >= 0): the papers' hyperplanes, direction only;
//   "qproj"    : q_h = floor(x.a_h / w + b_h), a_h unit-norm, b_h ~ U[0,1),
//                w = width * (RMS norm of the block's non-zero sub-vectors,
//                estimated per batch from a strided sample of rows); the key
//                is a 64-bit mix of (q_1..q_H): magnitude aware;
//   "signnorm" : the sign bits plus the bucket floor(log2 |x| / width);
//   "pca"      : qproj's key on each block's own directions, the H leading
//                eigenvectors of the second moment E[x x^T] of the block's
//                sub-vectors in the batch's sample (the same sample as the
//                width). Quantising along the directions where the data
//                varies most leaves clusters whose spread lies in the
//                low-variance directions: at equal r_c, the error of Y on
//                CifarNet conv2 drops by up to a third against random ones
//                and inference keeps more accuracy; but CifarNet trains
//                worse on it than on qproj at equal r_c, so training uses
//                qproj (docs/perf-notes.md, "Round 8").
// All-zero sub-vectors get kZeroKey, which no other sub-vector gets.
// Limits: qproj/signnorm/pca keys are 64-bit mixes, so two different projection
// tuples collide with probability ~2^-64 per pair (ignored).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/row_source.h"
#include "reuse/settings.h"

namespace deja::reuse {

inline constexpr uint64_t kZeroKey = 0;

class Hasher {
 public:
  // k: the row length (columns of X); blocks = ceil(k / L).
  Hasher(const ReuseSettings& settings, int64_t k);
  virtual ~Hasher() = default;

  int64_t k() const { return k_; }
  int64_t L() const { return l_; }
  int64_t H() const { return h_; }
  int64_t blocks() const { return blocks_; }
  int64_t block_width(int64_t block) const;  // L, or the remainder for the last block

  // Per-batch scale estimation (qproj, pca) and principal directions (pca).
  // With `freeze`, an already estimated scale and directions are kept
  // (cross-batch scope: keys stay comparable across batches).
  // Reads a sample of x's rows (x has k() columns).
  void prepare(const core::RowSource& x, bool freeze);
  void prepare(const float* x, int64_t rows, int64_t ldx, bool freeze);
  // keys[r] = key of rows r's sub-vector of `block`, for r < rows; x points at
  // row 0's first column of the block, rows are ldx apart.
  virtual void hash_block(const float* x, int64_t rows, int64_t ldx, int64_t block,
                          uint64_t* keys) const = 0;
  // The same keys from a column-major tile: row r's element j of the block
  // is xt[j * ldt + r]. The default transposes and calls hash_block; qproj
  // reads the columns directly (its AVX-512 path).
  virtual void hash_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block,
                                 uint64_t* keys) const;
  // Both of the above, also giving each row's raw projections onto the
  // block's directions, proj[q * ldproj + r] = x_r . R[:, q] for q < H
  // (keep_projection). The defaults hash, then project with plain loops;
  // qproj/pca take them from the registers the keys come from.
  virtual void hash_block_projected(const float* x, int64_t rows, int64_t ldx, int64_t block,
                                    uint64_t* keys, float* proj, int64_t ldproj) const;
  virtual void hash_block_kmajor_projected(const float* xt, int64_t rows, int64_t ldt, int64_t block,
                                           uint64_t* keys, float* proj, int64_t ldproj) const;
  // The projections alone, from a column-major tile (lowrank).
  virtual void project_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block, float* proj,
                                    int64_t ldproj) const;
  uint64_t key(const float* sub, int64_t block) const {  // one sub-vector, for tests
    uint64_t out;
    hash_block(sub, 1, 0, block, &out);
    return out;
  }

  // R [L x H] row-major of a block (qproj, pca: unit-norm columns; shared by
  // all blocks except for pca), the offsets b [H] (qproj, pca), and the
  // absolute bucket width of a block (qproj, pca; 0 before prepare).
  std::vector<float> projections(int64_t block = 0) const;
  const std::vector<float>& offsets() const { return b_; }  // qproj: >= H entries
  float bucket_width(int64_t block) const {
    return block < static_cast<int64_t>(width_.size()) ? width_[block] : 0.0f;
  }

 protected:
  // proj[q * ldproj + i] = sum_j x[i * row_step + j * col_step] R[j, q]:
  // the plain projections of either layout (the defaults above use it).
  void project_plain(const float* x, int64_t rows, int64_t row_step, int64_t col_step, int64_t block,
                     float* proj, int64_t ldproj) const;
  // pca: each block's R from its second moments (moments[s * L * L ...],
  // the upper triangle of a block_width(s)^2 matrix):
  // a full eigen solve the first time, then a few steps of subspace
  // iteration from the previous batch's directions (the directions move
  // little between batches; the full solve cost ~0.2 ms per 50-wide block).
  void fit_principal_directions(const std::vector<float>& moments);
  // R of `block`: [L][hp_] row-major, hp_ in {8, 16, 32} >= H, zero padded (vector-friendly).
  const float* block_projections(int64_t block) const {
    return per_block_ ? r_.data() + block * l_ * hp_ : r_.data();
  }

  int64_t k_, l_, h_, blocks_;
  bool per_block_;            // pca: one R per block
  std::vector<char> fitted_;  // pca: block s has directions from data (warm start next time)
  std::vector<float> r_;      // [L][hp_], or [blocks][L][hp_] when per_block_
  int64_t hp_;
  std::vector<float> b_;      // [H]
  std::vector<float> width_;  // [blocks] absolute widths (qproj)
  double relative_width_;
};

// The hasher of `settings.hash` for rows of length k; throws
// std::invalid_argument for an unknown family.
std::unique_ptr<Hasher> make_hasher(const ReuseSettings& settings, int64_t k);

}  // namespace deja::reuse
