// ReLU: y = max(x, 0), element-wise, as one coarse autograd op. The backward
// keeps only the output (y > 0 is the mask), which the next layer usually holds
// anyway. Parallel over the flat tensor; no shape constraints.
#pragma once

#include "layers/module.h"

namespace deja::layers {

// Functional form: a new tensor; records the graph when x needs a gradient.
Tensor relu(const Tensor& x);

class ReLU final : public Module {
 public:
  ReLU() = default;
  std::string type() const override { return "relu"; }
  Tensor forward(const Tensor& x) override { return relu(x); }
  Shape output_shape(const Shape& input) const override { return input; }
};

}  // namespace deja::layers
