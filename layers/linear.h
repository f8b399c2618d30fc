// Linear: y = x . W^T + b through the weight product (core/product.h), weight
// [out, in] and bias [out] as PyTorch. Input [..., in]: the leading dimensions
// are flattened into rows, so an LSTM-style [T, B, in] input is one product
// call over T*B rows. The bias is added and differentiated by the layer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.h"
#include "layers/module.h"

namespace deja::layers {

struct LinearOptions {
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
  // Throws std::invalid_argument, e.g. "linear: in_features must be >= 1, got 0".
  void validate() const;
};

class Linear final : public Module {
 public:
  // PyTorch's default init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)),
  // weight drawn first.
  Linear(const LinearOptions& options, core::Rng& init_rng);

  std::string type() const override { return "linear"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;

  core::Product* product() override { return product_.get(); }
  void set_product(std::shared_ptr<core::Product> product) override;

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined when options().bias is false
  const LinearOptions& options() const { return options_; }

 private:
  LinearOptions options_;
  Tensor weight_, bias_;
  std::shared_ptr<core::Product> product_;
};

}  // namespace deja::layers
