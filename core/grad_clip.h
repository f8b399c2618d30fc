// Global gradient-norm clipping over the flat gradient arena (as PyTorch's
// clip_grad_norm_ with the L2 norm). The norm is summed in double over fixed
// blocks and the block sums are added in order, so it is the same bit for bit
// whatever the thread count.
#pragma once

#include "core/parameters.h"

namespace deja::core {

double global_grad_norm(const ParameterArena&);
// Scales the grads in place by max_norm / (norm + 1e-6) when norm > max_norm;
// returns the norm before clipping. A non-finite norm is returned without
// touching the grads (the caller's NaN check reports it). Throws
// std::invalid_argument when max_norm is not positive.
double clip_grad_norm(ParameterArena&, double max_norm);

}  // namespace deja::core
