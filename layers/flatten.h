// Flatten: [N, d1, d2, ...] -> [N, d1*d2*...], a differentiable view
// (core::reshape), no copy. Needs at least 2 dimensions, like PyTorch's
// nn.Flatten (start_dim 1).
#pragma once

#include <string>

#include "layers/module.h"

namespace deja::layers {

class Flatten final : public Module {
 public:
  std::string type() const override { return "flatten"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
};

}  // namespace deja::layers
