// Small differentiable ops that are not layers of their own.
#pragma once

#include "core/tensor.h"

namespace deja::core {

// Same data, new shape; the gradient flows back reshaped. One -1 is inferred.
Tensor reshape(const Tensor& x, Shape shape);

}  // namespace deja::core
