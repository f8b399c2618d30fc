// The weight product every GEMM-owning layer goes through (conv2d after
// im2col, linear, the LSTM input projection), in both directions:
//   forward   Y[N x M] = X[N x K] . W^T         (W is [M x K]: PyTorch's layout)
//   backward  dW[M x K] += dY^T . X              (or its clustered equivalent)
//             dX[N x K]  = dY . W                (optional)
// The dense implementation is plain sgemm; the reuse engine (reuse/) clusters
// the rows of X and computes one product per cluster. Layers choose per
// instance, by config, and tests compare both through this one door.
#pragma once

#include <memory>
#include <string>

#include "core/row_source.h"
#include "core/tensor.h"

namespace deja::core {

// What a forward keeps for its backward (the dense product keeps X; the reuse
// product keeps cluster assignments and centroids, never re-hashing).
class ProductSaved {
 public:
  virtual ~ProductSaved() = default;
};

// Accumulated per-layer statistics since the last reset (reuse fills them;
// dense counts calls and time only).
struct ProductStats {
  int64_t forward_calls = 0;
  double remaining_ratio_sum = 0.0;  // sum of r_c over forward calls
  double hash_s = 0.0, cluster_s = 0.0, gemm_s = 0.0, scatter_s = 0.0;
  // A RowSource's tile fill and a RowSink's add (conv2d: im2col of the patch
  // tiles, col2im of their gradient): the layer's own lowering, which its
  // dense path does as well, so not part of hash/cluster/scatter.
  double lowering_s = 0.0;
  double forward_s = 0.0, backward_s = 0.0;
  double mean_remaining_ratio() const {
    return forward_calls ? remaining_ratio_sum / forward_calls : 1.0;
  }
  // Every count and time of o added to this one (per-epoch and per-repeat totals).
  ProductStats& operator+=(const ProductStats& o) {
    forward_calls += o.forward_calls;
    remaining_ratio_sum += o.remaining_ratio_sum;
    hash_s += o.hash_s;
    cluster_s += o.cluster_s;
    gemm_s += o.gemm_s;
    scatter_s += o.scatter_s;
    lowering_s += o.lowering_s;
    forward_s += o.forward_s;
    backward_s += o.backward_s;
    return *this;
  }
};

class Product {
 public:
  virtual ~Product() = default;
  virtual std::string describe() const = 0;  // "dense", "reuse(hash=qproj, L=10, H=8)"
  virtual bool is_reuse() const { return false; }
  // True only for the plain dense product itself (wrappers such as recorders
  // and the reuse engine say false). A layer may then run the very same GEMMs
  // itself in a cache-friendlier order (conv2d: per chunk of images, without
  // materialising the whole patch matrix) and report them with
  // record_direct_call, so the statistics stay complete.
  virtual bool is_plain_dense() const { return false; }
  void record_direct_call(double forward_s, double backward_s) {
    if (forward_s > 0.0) {
      ++stats_.forward_calls;
      stats_.remaining_ratio_sum += 1.0;
    }
    stats_.forward_s += forward_s;
    stats_.backward_s += backward_s;
  }

  // Writes Y (shape [N, M], overwritten). X is [N, K], W is [M, K]. Returns the
  // state backward needs when `for_backward`, else null.
  virtual std::unique_ptr<ProductSaved> forward(const Tensor& x, const Tensor& w, Tensor& y,
                                                bool for_backward) = 0;
  // dW += dY^T . X (dW may be null: no weight gradient wanted). If dX is not
  // null, dX = dY . W + dx_beta * dX.
  virtual void backward(ProductSaved& saved, const Tensor& dy, const Tensor& w, float* dw,
                        float* dx, float dx_beta) = 0;

  // The same two calls over a RowSource and into a RowSink (conv2d's patch
  // matrix, which need not exist in memory). These defaults materialise X,
  // and dX, and call forward / backward (dX starts from zero, the sink
  // adds); the reuse engine reads X tile by tile instead.
  virtual std::unique_ptr<ProductSaved> forward_rows(const RowSource& x, const Tensor& w, Tensor& y,
                                                     bool for_backward);
  virtual void backward_rows(ProductSaved& saved, const Tensor& dy, const Tensor& w, float* dw,
                             RowSink* dx);

  const ProductStats& stats() const { return stats_; }
  void reset_stats() { stats_ = ProductStats(); }

 protected:
  ProductStats stats_;
};

std::shared_ptr<Product> make_dense_product();

}  // namespace deja::core
