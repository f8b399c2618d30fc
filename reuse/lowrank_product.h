// LowRankProduct ("lowrank": true in a layer's reuse settings): no clusters;
// every row's sub-vector of block s is replaced by its projection onto the
// block's H leading principal directions V_s (the "pca" hasher's fit, every
// `refit`-th batch), x~ = V_s V_s^T x. Then
//   Y = sum_s P_s G_s,  P_s = X_s V_s,  G_s = V_s^T W_s^T,
//   dW_s += (V_s P_s^T dY)^T,  dX_s = (dY G_s^T) V_s^T,
// the exact gradient of that forward with V held fixed ("dx": "exact" gives
// the dense dY W instead; it did not change CifarNet's accuracy, so the
// forward's error is what costs). "dw_sample" f > 0 adds to dW an unbiased
// estimate of what the directions drop, from a uniform draw of a share f of
// the row tiles: (T / c) dY_S^T (X_S - X~_S), whose residual the forward keeps
// (one more product of the drawn rows' full K). Three GEMMs of inner size blocks * H
// (~H / L of the dense product's K) and one projection pass over X; from a
// row source, Y and Q^T are computed tile by tile while in cache. "bf16"
// runs the products in bfloat16 with float sums (lowrank_bf16.h; twice the
// multiply rate on AVX512_BF16 CPUs), the saved P as bf16 pair words. Why it
// exists: with keep_projection (kept_projection.h) the clusters of the
// remainder barely lower the error (CifarNet conv2, H 8: 0.160 with them,
// 0.176 without), so the clustering engine's passes buy nothing there
// (docs/perf-notes.md, Rounds 11-12).
#pragma once

#include <memory>
#include <vector>

#include "core/product.h"
#include "reuse/settings.h"

namespace deja::reuse {

class Hasher;

class LowRankProduct final : public core::Product {
 public:
  explicit LowRankProduct(const ReuseSettings& settings);
  ~LowRankProduct() override;

  std::string describe() const override;
  bool is_reuse() const override { return true; }

  std::unique_ptr<core::ProductSaved> forward(const core::Tensor& x, const core::Tensor& w,
                                              core::Tensor& y, bool for_backward) override;
  void backward(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                float* dw, float* dx, float dx_beta) override;
  std::unique_ptr<core::ProductSaved> forward_rows(const core::RowSource& x, const core::Tensor& w,
                                                   core::Tensor& y, bool for_backward) override;
  void backward_rows(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                     float* dw, core::RowSink* dx) override;

  void set_settings(const ReuseSettings& settings);
  // "bf16" asked for and this build has the kernels
  bool use_bf16() const;
  const ReuseSettings& settings() const { return settings_; }

 private:
  void backward_impl(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w, float* dw,
                     float* dx, float dx_beta, core::RowSink* sink);
  // dx "exact": the dense input gradient dY W of the forward's n rows, into dx or the sink
  void exact_dx(int64_t n, const core::Tensor& dy, const core::Tensor& w, float* dx, float dx_beta,
                core::RowSink* sink) const;

  ReuseSettings settings_;
  std::unique_ptr<Hasher> hasher_;
  std::vector<float> qt_;  // backward, matrix door: Q^T = G dY^T, [blocks * H][rows], kept across calls
  int64_t forwards_ = 0;   // since the hasher was made: the directions are fitted every refit-th forward
};

}  // namespace deja::reuse
