// keep_projection against plain-loop references: the dense product when the
// directions span each block, the kept-projection computation (x~ = c + V V^T
// (x - c), centroids and projections by loops, in double) on random data
// through both doors (matrix and row source / sink), and finite differences
// of that forward with the assignment and the directions held fixed.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "reuse/clustering.h"
#include "reuse/kept_projection.h"
#include "reuse/lsh.h"
#include "reuse/reuse_product.h"
#include "tests/reuse/product_doors.h"

using namespace deja;
using core::Tensor;
using reuse::ReuseSettings;
using testing::max_abs_diff;
using testing::normal;
using testing::Outputs;

namespace {

// Normal entries with whole zero sub-vectors in ~1/4 of the blocks (as after a ReLU).
Tensor rows_with_zero_blocks(int64_t n, int64_t k, int64_t l, uint64_t seed) {
  core::Rng rng(seed, 7);
  Tensor x = Tensor::empty({n, k});
  for (int64_t i = 0; i < n * k; ++i) x[i] = rng.normal();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s * l < k; ++s)
      if (rng.uniform() < 0.25f)
        for (int64_t j = s * l; j < std::min(k, (s + 1) * l); ++j) x[i * k + j] = 0.0f;
  return x;
}

ReuseSettings kept(int64_t l, int64_t h, double width) {
  ReuseSettings s;
  s.enabled = true;
  s.hash = "pca";
  s.L = l;
  s.H = h;
  s.width = width;
  s.seed = 5;
  s.keep_projection = true;
  return s;
}

// The assignment and directions the product will use (same settings, same data).
struct Fixed {
  reuse::Clustering c;
  std::vector<float> v;  // [blocks][L][H]
};

Fixed fixed_for(const ReuseSettings& s, const Tensor& x) {
  auto hasher = reuse::make_hasher(s, x.size(1));
  hasher->prepare(x.data(), x.size(0), x.size(1), false);
  Fixed f;
  f.c = reuse::cluster_rows(x.data(), x.size(0), x.size(1), *hasher);
  f.v = reuse::block_directions(*hasher);
  return f;
}

struct Reference {
  std::vector<double> y, dw, dx;
};

// In double: X~ per block from loops, Y = X~ W^T, dW = dY^T X~,
// dX = mean_c(D) + V V^T (D - mean_c(D)) with D = dY W.
Reference reference(const Fixed& f, const Tensor& x, const Tensor& w, const Tensor& dy, int64_t h) {
  const reuse::Clustering& c = f.c;
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0), l = c.L;
  std::vector<double> xt(n * k, 0.0), d(n * k, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t o = 0; o < m; ++o) d[i * k + j] += dy[i * m + o] * double(w[o * k + j]);
  Reference r;
  r.dx.assign(n * k, 0.0);
  for (int64_t s = 0; s < c.blocks; ++s) {
    const int64_t lo = s * l, len = std::min(l, k - lo), nc = c.clusters(s);
    const float* v = f.v.data() + s * l * h;
    std::vector<double> cen(nc * len, 0.0), dmean(nc * len, 0.0);
    std::vector<int64_t> size(nc, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = c.assign[s * n + i];
      ++size[a];
      for (int64_t j = 0; j < len; ++j) {
        cen[a * len + j] += x[i * k + lo + j];
        dmean[a * len + j] += d[i * k + lo + j];
      }
    }
    for (int64_t a = 0; a < nc; ++a)
      for (int64_t j = 0; j < len; ++j) {
        cen[a * len + j] /= double(size[a]);
        dmean[a * len + j] /= double(size[a]);
      }
    // u + V V^T (z - u) for a row's block
    auto kept_part = [&](const double* u, const std::vector<double>& z, double* out) {
      for (int64_t j = 0; j < len; ++j) out[j] = u[j];
      for (int64_t q = 0; q < h; ++q) {
        double p = 0.0;
        for (int64_t j = 0; j < len; ++j) p += (z[j] - u[j]) * v[j * h + q];
        for (int64_t j = 0; j < len; ++j) out[j] += p * v[j * h + q];
      }
    };
    std::vector<double> z(len);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = c.assign[s * n + i];
      for (int64_t j = 0; j < len; ++j) z[j] = x[i * k + lo + j];
      kept_part(&cen[a * len], z, &xt[i * k + lo]);
      for (int64_t j = 0; j < len; ++j) z[j] = d[i * k + lo + j];
      kept_part(&dmean[a * len], z, &r.dx[i * k + lo]);
    }
  }
  r.y.assign(n * m, 0.0);
  r.dw.assign(m * k, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t j = 0; j < k; ++j) {
        r.y[i * m + o] += xt[i * k + j] * w[o * k + j];
        r.dw[o * k + j] += dy[i * m + o] * xt[i * k + j];
      }
  return r;
}

Outputs run(const ReuseSettings& s, const Tensor& x, const Tensor& w, const Tensor& dy) {
  reuse::ReuseProduct p(s);
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  Outputs o{Tensor::full({n, m}, 123.0f), Tensor::zeros({m, k}), Tensor::full({n, k}, 7.0f)};
  auto saved = p.forward(x, w, o.y, true);
  REQUIRE(saved);
  p.backward(*saved, dy, w, o.dw.data(), o.dx.data(), 0.0f);
  return o;
}

}  // namespace

TEST_CASE("keep_projection: directions spanning every block give the dense product") {
  // H = L: V V^T = I, so x~ = x whatever the clusters, and cluster-mode dX
  // is mean(D) (I - I) + D = D.
  const int64_t n = 200, k = 24, m = 7, l = 6;
  Tensor x = rows_with_zero_blocks(n, k, l, 1), w = normal({m, k}, 2), dy = normal({n, m}, 3);
  auto s = kept(l, l, 2.0);
  auto f = fixed_for(s, x);
  REQUIRE(f.c.remaining_ratio() < 0.9);  // the rows do share clusters
  Outputs o = run(s, x, w, dy);
  const testing::DenseErrors e = testing::errors_against_dense(x, w, dy, o);
  CHECK(e.y < 1e-4);
  CHECK(e.dw < 1e-3);
  CHECK(e.dx < 1e-4);
}

TEST_CASE("keep_projection on random data equals the plain computation, through both doors") {
  for (int64_t h : {1, 3, 8}) {
    CAPTURE(h);
    const int64_t n = 300, k = 37, m = 9, l = 8;  // L does not divide K
    Tensor x = rows_with_zero_blocks(n, k, l, 11), w = normal({m, k}, 12), dy = normal({n, m}, 13);
    auto s = kept(l, h, 1.0);
    auto f = fixed_for(s, x);
    CHECK(f.c.remaining_ratio() < 1.0);
    auto ref = reference(f, x, w, dy, h);
    Outputs o = run(s, x, w, dy);
    CHECK(max_abs_diff(o.y, ref.y) < 1e-4);
    CHECK(max_abs_diff(o.dw, ref.dw) < 1e-3);
    CHECK(max_abs_diff(o.dx, ref.dx) < 1e-4);
    Outputs t = testing::run_rows<reuse::ReuseProduct>(s, x, w, dy, 50);
    CHECK(max_abs_diff(t.y, ref.y) < 1e-4);
    CHECK(max_abs_diff(t.dw, ref.dw) < 1e-3);
    CHECK(max_abs_diff(t.dx, ref.dx) < 1e-4);
  }
}

TEST_CASE("keep_projection: analytic gradients match finite differences of its forward") {
  const int64_t n = 40, k = 13, m = 4, l = 5, h = 2;
  Tensor x = rows_with_zero_blocks(n, k, l, 31), w = normal({m, k}, 32), dy = normal({n, m}, 33);
  auto s = kept(l, h, 2.0);  // coarse: clusters of several rows
  auto f = fixed_for(s, x);
  REQUIRE(f.c.remaining_ratio() < 0.5);
  Outputs o = run(s, x, w, dy);
  // g(x, w) = <dY, Y(x, w)> with the assignment and the directions held fixed.
  auto g = [&](const Tensor& xx, const Tensor& ww) {
    auto r = reference(f, xx, ww, dy, h);
    double v = 0.0;
    for (int64_t i = 0; i < n * m; ++i) v += r.y[i] * dy[i];
    return v;
  };
  CHECK(testing::check_finite_differences(x, w, o.dx, o.dw, g, 3) > 1.0);
}

TEST_CASE("keep_projection needs orthonormal directions and the clustered forward") {
  auto s = kept(8, 4, 1.0);
  s.hash = "qproj";
  CHECK_THROWS_WITH_AS(s.validate("model.layers[4].reuse"),
                       "model.layers[4].reuse: key 'keep_projection' needs hash \"pca\" (orthonormal "
                       "directions), got \"qproj\"",
                       std::invalid_argument);
  s.hash = "pca";
  s.forward = "exact";
  CHECK_THROWS_WITH_AS(s.validate("conv2"),
                       "conv2: key 'keep_projection' needs forward \"cluster\", got \"exact\"",
                       std::invalid_argument);
  s.forward = "cluster";
  CHECK_NOTHROW(s.validate("conv2"));
}

TEST_CASE("add_direction_terms equals the plain loop") {
  for (int64_t count : {5, 16, 37})
  for (int64_t h : {3, 8, 11, 16, 20, 33})
    for (int64_t len : {5, 13, 24}) {
      CAPTURE(count);
      CAPTURE(h);
      CAPTURE(len);
      const int64_t ldt = count + 3, ldq = count + 5;
      Tensor tile = normal({len, ldt}, 40), v = normal({len, h}, 41), qt = normal({h, ldq}, 42);
      Tensor expected = tile.clone();
      for (int64_t j = 0; j < len; ++j)
        for (int64_t i = 0; i < count; ++i) {
          double a = 0.0;
          for (int64_t q = 0; q < h; ++q) a += double(v[j * h + q]) * qt[q * ldq + i];
          expected[j * ldt + i] = static_cast<float>(expected[j * ldt + i] + a);
        }
      Tensor stored = tile.clone();
      reuse::add_direction_terms(tile.data(), ldt, len, count, v.data(), h, qt.data(), ldq);
      reuse::add_direction_terms(stored.data(), ldt, len, count, v.data(), h, qt.data(), ldq, /*add=*/false);
      double worst = 0.0, worst_stored = 0.0;
      for (int64_t e = 0; e < len * ldt; ++e) worst = std::max(worst, double(std::abs(tile[e] - expected[e])));
      // stored: the terms alone in the first count columns, the padding untouched
      for (int64_t j = 0; j < len; ++j)
        for (int64_t i = 0; i < ldt; ++i) {
          const int64_t e = j * ldt + i;
          double terms = 0.0;
          for (int64_t q = 0; q < h; ++q) terms += double(v[j * h + q]) * qt[q * ldq + i];
          const double want = i < count ? terms : double(expected[e]);  // past count: the original value
          worst_stored = std::max(worst_stored, std::abs(double(stored[e]) - want));
        }
      CHECK(worst < 1e-4);  // the padding columns count too: untouched
      CHECK(worst_stored < 1e-4);
    }
}
