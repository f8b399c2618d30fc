// Batch normalisation, PyTorch semantics. spatial = true: batchnorm2d over
// [N, C, H, W]; spatial = false: batchnorm1d over [N, C] (or [N, C, L]).
// Training normalises with the batch mean and biased variance and updates the
// running stats with the unbiased variance (momentum m: r = (1-m) r + m batch);
// evaluation normalises with the running stats. Parameters "weight" (ones) and
// "bias" (zeros); buffers "running_mean" (zeros) and "running_var" (ones).
// No cumulative-average mode (momentum None) and affine/track stats always on.
#pragma once

#include <cstdint>

#include "layers/module.h"

namespace deja::layers {

struct BatchNormOptions {
  int64_t num_features = 0;
  double eps = 1e-5, momentum = 0.1;
  void validate() const;  // num_features >= 1, eps > 0, 0 <= momentum <= 1
};

class BatchNorm final : public Module {
 public:
  BatchNorm(const BatchNormOptions& options, bool spatial);
  std::string type() const override { return spatial_ ? "batchnorm2d" : "batchnorm1d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;  // folded scale + shift
  const BatchNormOptions& options() const { return options_; }
  bool spatial() const { return spatial_; }

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }

 private:
  BatchNormOptions options_;
  bool spatial_;
  Tensor weight_, bias_, running_mean_, running_var_;
};

}  // namespace deja::layers
