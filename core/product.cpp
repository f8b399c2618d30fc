// The default RowSource / RowSink calls of a Product: materialise, then the
// plain calls. Used by the dense product's general path and by wrappers
// (recorders in bench and tests) that need X in memory anyway.
#include "core/product.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/transpose.h"

namespace deja::core {

void MatrixRows::fill(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                      int64_t ld) const {
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(out + i * ld, x_ + (r0 + i) * ld_ + c0, sizeof(float) * static_cast<size_t>(c1 - c0));
}

void RowSource::fill_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                            int64_t ld) const {
  thread_local std::vector<float> rows;
  rows.resize(static_cast<size_t>(count * (c1 - c0)));
  fill(r0, count, c0, c1, rows.data(), c1 - c0);
  transpose(rows.data(), count, c1 - c0, c1 - c0, out, ld);
}

void RowSink::add_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, const float* cols,
                         int64_t ld) {
  thread_local std::vector<float> rows;
  const int64_t k = this->cols();
  rows.assign(static_cast<size_t>(count * k), 0.0f);
  transpose(cols, c1 - c0, count, ld, rows.data() + c0, k);
  add(r0, count, rows.data(), k);
}

std::unique_ptr<ProductSaved> Product::forward_rows(const RowSource& x, const Tensor& w, Tensor& y,
                                                    bool for_backward) {
  const int64_t n = x.rows(), k = x.cols();
  Tensor rows = Tensor::empty({n, k});
  parallel_for(n, [&](int64_t r0, int64_t r1) {
    for (int64_t a = r0; a < r1; a += 256) x.fill(a, std::min<int64_t>(256, r1 - a), 0, k, rows.data() + a * k, k);
  }, 256);
  return forward(rows, w, y, for_backward);
}

void Product::backward_rows(ProductSaved& saved, const Tensor& dy, const Tensor& w, float* dw,
                            RowSink* dx) {
  if (!dx) {
    backward(saved, dy, w, dw, nullptr, 0.0f);
    return;
  }
  const int64_t n = dy.size(0), k = w.size(1), granule = std::max<int64_t>(1, dx->granule());
  Tensor rows = Tensor::empty({n, k});
  backward(saved, dy, w, dw, rows.data(), 0.0f);
  parallel_for((n + granule - 1) / granule, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r0 = g * granule;
      dx->add(r0, std::min(granule, n - r0), rows.data() + r0 * k, k);
    }
  });
}

}  // namespace deja::core
