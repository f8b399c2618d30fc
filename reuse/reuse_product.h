// ReuseProduct: the LSH-clustered weight product (design.md section 4).
// Forward: rows of X are split into column blocks of width L; each block's
// sub-vectors are hashed and grouped, one product per cluster centroid is
// computed (centroids . W_s^T) and added to every member row of Y; all-zero
// sub-vectors are skipped. Backward is the exact gradient of that clustered
// forward with the assignment held fixed: segment sums of dY per cluster,
// dW_s = centroids^T . G_s, dX either per cluster ("cluster") or dense
// ("exact"). With keep_projection (pca) each row keeps its own part along its
// blocks' directions and the clusters share only the rest (kept_projection.h).
// Limits: scope "cross_batch" reuses the previous batch's hash scale (so keys
// are comparable across batches) but not its products.
#pragma once

#include <memory>

#include <vector>

#include "core/aligned_vector.h"
#include "core/product.h"
#include "reuse/clustering.h"
#include "reuse/settings.h"

namespace deja::reuse {

class Hasher;
struct ClusteringSpare;

class ReuseProduct final : public core::Product {
 public:
  explicit ReuseProduct(const ReuseSettings& settings);
  ~ReuseProduct() override;

  std::string describe() const override;
  bool is_reuse() const override { return true; }

  std::unique_ptr<core::ProductSaved> forward(const core::Tensor& x, const core::Tensor& w,
                                              core::Tensor& y, bool for_backward) override;
  void backward(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                float* dw, float* dx, float dx_beta) override;
  // X tile by tile from the source (never all of it in memory), dX tile by
  // tile into the sink.
  std::unique_ptr<core::ProductSaved> forward_rows(const core::RowSource& x, const core::Tensor& w,
                                                   core::Tensor& y, bool for_backward) override;
  void backward_rows(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                     float* dw, core::RowSink* dx) override;

  // The scheduler switches rungs between steps; hash matrices are rebuilt
  // lazily on the next forward.
  void set_settings(const ReuseSettings& settings);
  const ReuseSettings& settings() const { return settings_; }
  // r_c of the last forward (1.0 before the first).
  double last_remaining_ratio() const { return last_remaining_ratio_; }

 private:
  // Y = sum over blocks of the cluster products (the clustered forward).
  void cluster_forward(const Clustering& c, const core::Tensor& w, float* y);
  // Y = X W^T, dense (forward = "exact").
  void dense_forward_rows(const core::RowSource& x, const core::Tensor& w, float* y);
  void backward_impl(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                     float* dw, float* dx, float dx_beta, core::RowSink* sink);

  ReuseSettings settings_;
  std::unique_ptr<Hasher> hasher_;  // built on first use for the current settings and K
  double last_remaining_ratio_ = 1.0;
  // Work buffers of forward (per-cluster products) and backward (per-thread
  // segment sums, their reduction, per-cluster input gradients).
  // Rows of M floats (products, segment sums) start on cache lines.
  core::AlignedVector<float> products_, seg_;
  std::vector<float> dxc_;
  std::vector<float> kept_q_;  // keep_projection: Q = dY G^T [rows][blocks * H]
  std::vector<core::AlignedVector<float>> partial_;
  int64_t last_clusters_per_block_ = 0;  // table size hint for the next forward
  ClusteringScratchPtr scratch_ = make_clustering_scratch();  // cluster_rows' tables, kept across steps
  // The last released clustering's vectors, reused by the next forward: at
  // fine rungs the centroids pass glibc's mmap threshold (58 MB at CifarNet
  // conv2, r_c 0.28) and fresh pages cost ~10 us each to fault in on these
  // VMs. Shared with the saved states, which may outlive the product.
  std::shared_ptr<ClusteringSpare> spare_;
};

}  // namespace deja::reuse
