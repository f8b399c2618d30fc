// Per-layer reuse settings: which hash family, the sub-vector length L, the
// number of hash bits/projections H, the qproj bucket width, the input-gradient
// mode and the clustering scope; read from a layer's "reuse" config object over
// a model-wide default, validated with messages naming the layer and the key.
// Limits: H is at most 32 (keys are packed into 64-bit words per block).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/json_util.h"
#include "core/product.h"

namespace deja::reuse {

struct ReuseSettings {
  bool enabled = false;          // false: the layer runs the dense product
  std::string hash = "qproj";    // "sign" | "qproj" | "signnorm" | "pca"
  int64_t L = 10;                // sub-vector length (column block width); need not divide K
  int64_t H = 8;                 // hash bits / projections per block, 1..32
  // qproj/pca bucket width, in units of the RMS norm of the block's non-zero
  // sub-vectors in the current batch (projections use unit-norm directions);
  // 0 = automatic (kDefaultRelativeWidth). For "signnorm" it is the width of
  // the log2-norm bucket (0 = automatic: one bucket per factor of 2).
  double width = 0.0;
  std::string dx = "cluster";    // "cluster" | "exact"
  // "cluster": Y from the cluster products (the papers' forward); "exact":
  // Y = X W^T densely and the clusters serve the backward only (dW, and dX in
  // cluster mode): the loss is exact, the gradients approximate.
  std::string forward = "cluster";
  // With "pca" (orthonormal directions): every row keeps its own projection
  // onto its block's H directions, exactly; only the rest of the sub-vector
  // is shared by the cluster: x~ = c + V V^T (x - c). Costs one more product
  // of rank H per block in each pass (about H / L of a dense one) and cuts
  // the error of Y several-fold at equal r_c (docs/perf-notes.md, Round 11).
  bool keep_projection = false;
  // No clusters at all: every sub-vector is replaced by its projection onto
  // its block's H leading principal directions (LowRankProduct,
  // lowrank_product.h). Needs "pca", whose fit gives the directions.
  bool lowrank = false;
  // lowrank: batches per fit of the directions. 1 fits every batch (~3.6 ms
  // per CifarNet conv2 batch); 8 saves that but trained 0.28 points worse on
  // average over five seeds (docs/perf-notes.md, Round 12).
  int64_t refit = 1;
  // lowrank: the share of the batch's row tiles (0..1) whose residual
  // X - V V^T X (what the directions drop) is kept by the forward, so the
  // backward adds an unbiased sampled estimate of the dense dW's remaining
  // part; 0 = dW sees the H directions only (the exact gradient of the
  // lowrank forward), 1 = dW is the dense dY^T X.
  double dw_sample = 0.0;
  // lowrank: its three GEMMs in bf16 with float sums (AVX512_BF16, about
  // twice float's rate; core/bf16_gemm.h). Operands keep 8 significant bits,
  // far below the directions' own error (err_y ~0.3 at CifarNet conv2 H 8).
  // Builds without the instructions fall back to float with a warning.
  bool bf16 = false;
  std::string scope = "batch";   // "batch" | "cross_batch"
  uint64_t seed = 0;             // hash matrices from make_rng(seed, RngPurpose::Hash, ...)

  // Throws std::invalid_argument "<where>: key 'L' must be >= 1, got 0" etc.
  void validate(const std::string& where) const;
};

// The automatic qproj width (relative to the block RMS norm) when width == 0.
inline constexpr double kDefaultRelativeWidth = 0.5;

// Reads {"enabled", "hash", "L", "H", "width", "dx", "forward", "keep_projection", "lowrank", "refit", "dw_sample", "bf16",
// "scope"}
// over `defaults`
// (absent keys keep the default); rejects unknown keys and bad values with
// messages naming `where` and the key.
ReuseSettings settings_from_json(const core::Json& j, const ReuseSettings& defaults,
                                 const std::string& where);
core::Json settings_to_json(const ReuseSettings&);
// "dense" or "reuse(hash=qproj, L=10, H=8, dx=cluster)"
std::string describe(const ReuseSettings&);
// The dense product when !enabled, a LowRankProduct when lowrank, else a ReuseProduct.
std::shared_ptr<core::Product> make_product(const ReuseSettings&);

}  // namespace deja::reuse
