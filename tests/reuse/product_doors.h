// Shared pieces of the product tests (keep_projection, lowrank): normal
// tensors, the row-source / row-sink door, comparisons against dense double
// results, and a finite-difference check of a product's gradients.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/row_source.h"
#include "core/tensor.h"
#include "reuse/settings.h"

namespace deja::testing {

inline core::Tensor normal(core::Shape shape, uint64_t seed) {
  core::Rng rng(seed, 9);
  core::Tensor t = core::Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal();
  return t;
}

struct Outputs {
  core::Tensor y, dw, dx;
};

inline double max_abs_diff(const core::Tensor& a, const std::vector<double>& b) {
  double d = 0.0;
  for (size_t i = 0; i < b.size(); ++i) d = std::max(d, std::abs(double(a[static_cast<int64_t>(i)]) - b[i]));
  return d;
}

// dX rows added into a matrix, a granule of rows at a time (as conv2d's col2im).
class MatrixSink final : public core::RowSink {
 public:
  MatrixSink(core::Tensor& dx, int64_t granule) : dx_(dx), granule_(granule) {}
  int64_t granule() const override { return granule_; }
  int64_t cols() const override { return dx_.size(1); }
  void add(int64_t r0, int64_t count, const float* rows, int64_t ld) override {
    const int64_t k = dx_.size(1);
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < k; ++j) dx_[(r0 + i) * k + j] += rows[i * ld + j];
  }

 private:
  core::Tensor& dx_;
  int64_t granule_;
};

// Forward and backward through forward_rows / backward_rows: X from a source
// without memory behind it (rows k + 2 apart), dX into a sink of `granule` rows.
template <typename ProductType>
Outputs run_rows(const reuse::ReuseSettings& s, const core::Tensor& x, const core::Tensor& w,
                 const core::Tensor& dy, int64_t granule) {
  ProductType p(s);
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  core::Tensor padded = core::Tensor::full({n, k + 2}, 99.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) padded[i * (k + 2) + j] = x[i * k + j];
  core::MatrixRows source(padded.data(), n, k, k + 2);
  REQUIRE(source.data() == nullptr);
  Outputs o{core::Tensor::full({n, m}, 123.0f), core::Tensor::zeros({m, k}), core::Tensor::zeros({n, k})};
  auto saved = p.forward_rows(source, w, o.y, true);
  REQUIRE(saved);
  MatrixSink sink(o.dx, granule);
  p.backward_rows(*saved, dy, w, o.dw.data(), &sink);
  return o;
}

// Largest differences of Y, dW and dX from the dense product's, in double.
struct DenseErrors {
  double y = 0.0, dw = 0.0, dx = 0.0;
};

inline DenseErrors errors_against_dense(const core::Tensor& x, const core::Tensor& w, const core::Tensor& dy,
                                        const Outputs& o) {
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  DenseErrors e;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < m; ++c) {
      double y = 0.0;
      for (int64_t j = 0; j < k; ++j) y += double(x[i * k + j]) * w[c * k + j];
      e.y = std::max(e.y, std::abs(y - o.y[i * m + c]));
    }
  for (int64_t c = 0; c < m; ++c)
    for (int64_t j = 0; j < k; ++j) {
      double g = 0.0;
      for (int64_t i = 0; i < n; ++i) g += double(dy[i * m + c]) * x[i * k + j];
      e.dw = std::max(e.dw, std::abs(g - o.dw[c * k + j]));
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double g = 0.0;
      for (int64_t c = 0; c < m; ++c) g += double(dy[i * m + c]) * w[c * k + j];
      e.dx = std::max(e.dx, std::abs(g - o.dx[i * k + j]));
    }
  return e;
}

// Central differences (eps 1e-2) of f(x, w) against dx at every x_step-th
// element of X and dw at every element of W (REQUIRE, relative 2e-3);
// returns the sum of |fd| over the X elements checked.
inline double check_finite_differences(const core::Tensor& x, const core::Tensor& w, const core::Tensor& dx,
                                       const core::Tensor& dw,
                                       const std::function<double(const core::Tensor&, const core::Tensor&)>& f,
                                       int64_t x_step) {
  const float eps = 1e-2f;
  double grad_norm = 0.0;
  for (int64_t q = 0; q < x.numel(); q += x_step) {
    core::Tensor xp = x.clone(), xm = x.clone();
    xp[q] += eps;
    xm[q] -= eps;
    const double fd = (f(xp, w) - f(xm, w)) / (2.0 * eps);
    REQUIRE(dx[q] == doctest::Approx(fd).epsilon(2e-3).scale(1.0));
    grad_norm += std::abs(fd);
  }
  for (int64_t q = 0; q < w.numel(); ++q) {
    core::Tensor wp = w.clone(), wm = w.clone();
    wp[q] += eps;
    wm[q] -= eps;
    const double fd = (f(x, wp) - f(x, wm)) / (2.0 * eps);
    REQUIRE(dw[q] == doctest::Approx(fd).epsilon(2e-3).scale(1.0));
  }
  return grad_norm;
}

}  // namespace deja::testing
