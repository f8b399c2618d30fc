// Flatten: a differentiable reshape to [N, rest].
#include "layers/flatten.h"

#include <stdexcept>

#include "core/ops.h"

namespace deja::layers {

Shape Flatten::output_shape(const Shape& input) const {
  if (input.size() < 2)
    throw std::invalid_argument("flatten: input " + core::shape_to_string(input) +
                                " does not fit: expected [N, ...] with at least 2 dimensions");
  return {input[0], core::shape_numel(input) / input[0]};
}

Tensor Flatten::forward(const Tensor& x) {
  Shape out = output_shape(x.shape());
  if (x.shape() == out) return x;  // already flat: nothing to record
  return core::reshape(x, out);
}

}  // namespace deja::layers
