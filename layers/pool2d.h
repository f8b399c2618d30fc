// 2-d max and average pooling over NCHW tensors, PyTorch semantics: max pooling
// pads with -inf (padding never wins), average pooling counts the zero padding
// in its divisor (count_include_pad = true) but not the overhang that
// ceil_mode adds past the padding. Square kernels only (one kernel, stride and
// padding for both axes), no dilation. The max-pool backward scatters through
// int32 argmax indices saved by the forward (index within the input plane).
// On exact ties inside a window the gradient goes to the leftmost column's
// topmost maximum (PyTorch: the first in row-major order); both are valid
// subgradients.
#pragma once

#include <cstdint>

#include "layers/module.h"

namespace deja::layers {

struct Pool2dOptions {
  int64_t kernel = 2, stride = 0 /* 0 means = kernel */, padding = 0;
  bool ceil_mode = false;
  // PyTorch's rules: kernel >= 1, stride >= 0, 0 <= padding <= kernel/2.
  // Messages start with "pool2d: "; the layers validate with their own name.
  void validate() const;
  void validate(const char* layer) const;  // "maxpool2d: padding must be <= kernel/2, got 3"
  int64_t effective_stride() const { return stride == 0 ? kernel : stride; }
};

// Output length of one axis (PyTorch's pooling_output_shape); <= 0 when the
// kernel does not fit the padded input.
int64_t pool_output_size(int64_t input, const Pool2dOptions& opt);

// Functional forms: x is [N, C, H, W]; `layer` names the caller in errors.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
// Shape inference shared by both pools; throws std::invalid_argument naming
// both shapes.
Shape pool2d_output_shape(const char* layer, const Shape& input, const Pool2dOptions& opt);

class MaxPool2d final : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& options);
  std::string type() const override { return "maxpool2d"; }
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options_); }
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;  // one per window element
  const Pool2dOptions& options() const { return options_; }

 private:
  Pool2dOptions options_;
};

class AvgPool2d final : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& options);
  std::string type() const override { return "avgpool2d"; }
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options_); }
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;  // one add per window element
  const Pool2dOptions& options() const { return options_; }

 private:
  Pool2dOptions options_;
};

}  // namespace deja::layers
