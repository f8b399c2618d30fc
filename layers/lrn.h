// Local response normalisation across channels (AlexNet, CifarNet), PyTorch's
// LocalResponseNorm semantics on [N, C, ...] inputs (any number of trailing
// spatial dims):
//   s_c = k + alpha/size * sum_{c' in [c - size/2, c + (size-1)/2] ∩ [0, C)} a_c'^2
//   b_c = a_c * s_c^-beta
// The forward keeps a running window sum over channels per strip of pixels
// (two passes of memory, not `size`); the backward saves only the scale s (and
// the input, which is alive anyway). beta = 0.75 and 0.5 take an exact sqrt
// path that vectorises; other betas call std::pow per element.
#pragma once

#include <cstdint>

#include "layers/module.h"

namespace deja::layers {

struct LrnOptions {
  int64_t size = 5;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
  // size >= 1, alpha >= 0, beta >= 0, k > 0 (k = 0 divides by zero on dead pixels).
  void validate() const;
};

Tensor local_response_norm(const Tensor& x, const LrnOptions& opt);

class LRN final : public Module {
 public:
  explicit LRN(const LrnOptions& options);
  std::string type() const override { return "lrn"; }
  Tensor forward(const Tensor& x) override { return local_response_norm(x, options_); }
  Shape output_shape(const Shape& input) const override;
  // Running window: square, add, subtract, scale, pow (~4), multiply.
  int64_t forward_flops(const Shape& input) const override;
  const LrnOptions& options() const { return options_; }

 private:
  LrnOptions options_;
};

}  // namespace deja::layers
