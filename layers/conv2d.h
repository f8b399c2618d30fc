// Conv2d: a 2-D convolution as im2col + one weight product (core/product.h);
// on the plain dense product, 3x3 / stride 1 / padding 1 layers take Winograd
// F(2x2, 3x3) instead (layers/winograd.h) and the rest a chunked im2col.
// Input [N, C, H, W] -> output [N, out, oh, ow]; weight [out, in, kh, kw] and
// bias [out] as PyTorch. All N * oh * ow patch rows of the mini-batch go
// through ONE product forward call and ONE backward call, because the reuse
// engine clusters rows over the whole batch. The bias is the layer's business,
// not the product's. Limits: square stride and padding (one value each), no
// dilation, no groups. The patch matrix costs N*oh*ow*K floats while the graph
// is alive (the dense product keeps it for the weight gradient), and the layer
// keeps that buffer between steps (it is the peak anyway when training).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.h"
#include "layers/im2col.h"
#include "layers/module.h"

namespace deja::layers {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0, kernel_h = 1, kernel_w = 1, stride = 1, padding = 0;
  bool bias = true;
  // Throws std::invalid_argument, e.g. "conv2d: out_channels must be >= 1, got 0".
  void validate() const;
};

class Conv2d final : public Module {
 public:
  // PyTorch's default init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  // fan_in = in * kh * kw; the weight is drawn first, then the bias.
  Conv2d(const Conv2dOptions& options, core::Rng& init_rng);

  std::string type() const override { return "conv2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;
  // "winograd" or "im2col" on the plain dense product, "" on any other (those get im2col rows).
  std::string dense_algorithm(const Shape& input) const override;

  core::Product* product() override { return product_.get(); }
  void set_product(std::shared_ptr<core::Product> product) override;

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined when options().bias is false
  const Conv2dOptions& options() const { return options_; }
  // The im2col geometry for one image of `input` (validated by output_shape).
  ConvGeometry geometry(const Shape& input) const;

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
  std::shared_ptr<core::Product> product_;
};

}  // namespace deja::layers
