// compare_to_dense: one forward/backward of a product and of plain sgemm on
// the same data, reduced to relative errors.
#include "reuse/compare.h"

#include <cmath>
#include <stdexcept>

#include "core/blas.h"
#include "reuse/reuse_product.h"

namespace deja::reuse {

double relative_error(const float* a, const float* b, int64_t count) {
  double diff = 0.0, ref = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double d = double(a[i]) - double(b[i]);
    diff += d * d;
    ref += double(b[i]) * double(b[i]);
  }
  if (ref == 0.0) return diff == 0.0 ? 0.0 : std::sqrt(diff);
  return std::sqrt(diff / ref);
}

ProductErrors compare_to_dense(core::Product& product, const core::Tensor& x,
                               const core::Tensor& w, const core::Tensor& dy) {
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  if (w.size(1) != k || dy.numel() != n * m)
    throw std::invalid_argument("compare_to_dense: X " + core::shape_to_string(x.shape()) + ", W " +
                                core::shape_to_string(w.shape()) + ", dY " +
                                core::shape_to_string(dy.shape()));
  using core::Tensor;
  using core::Trans;
  Tensor y = Tensor::empty({n, m}), y_ref = Tensor::empty({n, m});
  Tensor dw = Tensor::zeros({m, k}), dw_ref = Tensor::zeros({m, k});
  Tensor dx = Tensor::zeros({n, k}), dx_ref = Tensor::empty({n, k});
  auto saved = product.forward(x, w, y, true);
  product.backward(*saved, dy, w, dw.data(), dx.data(), 0.0f);
  const auto* reuse = dynamic_cast<const ReuseProduct*>(&product);
  const double r_c = reuse ? reuse->last_remaining_ratio() : product.stats().mean_remaining_ratio();
  core::gemm(Trans::No, Trans::Yes, n, m, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y_ref.data(), m);
  core::gemm(Trans::Yes, Trans::No, m, k, n, 1.0f, dy.data(), m, x.data(), k, 0.0f, dw_ref.data(), k);
  core::gemm(Trans::No, Trans::No, n, k, m, 1.0f, dy.data(), m, w.data(), k, 0.0f, dx_ref.data(), k);
  return {relative_error(y.data(), y_ref.data(), n * m),
          relative_error(dw.data(), dw_ref.data(), m * k),
          relative_error(dx.data(), dx_ref.data(), n * k), r_c};
}

}  // namespace deja::reuse
