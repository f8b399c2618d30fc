// Accuracy of a product against the dense computation on the same data: the
// relative Frobenius errors ||A - A_dense|| / ||A_dense|| of Y, dW and dX, and
// the product's remaining ratio r_c. Used by bench, the sweep tool and tests.
#pragma once

#include "core/product.h"
#include "core/tensor.h"

namespace deja::reuse {

struct ProductErrors {
  double err_y, err_dw, err_dx, remaining_ratio;
};

// x [N, K], w [M, K], dy [N, M]. Runs product.forward/backward once (the
// product's stats record that call) and the dense reference once.
ProductErrors compare_to_dense(core::Product& product, const core::Tensor& x,
                               const core::Tensor& w, const core::Tensor& dy);

// ||a - b|| / ||b|| (0 when both are zero).
double relative_error(const float* a, const float* b, int64_t count);

}  // namespace deja::reuse
