// The reuse product against plain-loop references: dense results when every
// row is its own cluster, exact results for identical rows, the clustered
// computation (centroids by loops) on random data, and finite differences of
// the clustered forward with the assignment held fixed.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "reuse/clustering.h"
#include "reuse/compare.h"
#include "reuse/lsh.h"
#include "reuse/reuse_product.h"
#include "tests/reuse/product_doors.h"

using namespace deja;
using core::Tensor;
using reuse::ReuseSettings;

namespace {

Tensor random_tensor(core::Shape shape, uint64_t seed, float zero_fraction = 0.0f) {
  core::Rng rng(seed, 7);
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    t[i] = rng.normal();
    if (rng.uniform() < zero_fraction) t[i] = 0.0f;
  }
  return t;
}

// Random rows with whole zero sub-vectors (as after a ReLU) in ~1/4 of the blocks.
Tensor random_rows_with_zero_blocks(int64_t n, int64_t k, int64_t l, uint64_t seed) {
  Tensor x = random_tensor({n, k}, seed);
  core::Rng rng(seed, 8);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s * l < k; ++s)
      if (rng.uniform() < 0.25f)
        for (int64_t j = s * l; j < std::min(k, (s + 1) * l); ++j) x[i * k + j] = 0.0f;
  return x;
}

ReuseSettings settings(const std::string& hash, int64_t l, int64_t h, double width = 0.0) {
  ReuseSettings s;
  s.enabled = true;
  s.hash = hash;
  s.L = l;
  s.H = h;
  s.width = width;
  s.seed = 42;
  return s;
}

// The assignment the product will use (same settings, same data).
reuse::Clustering assignment(const ReuseSettings& s, const Tensor& x) {
  auto hasher = reuse::make_hasher(s, x.size(1));
  hasher->prepare(x.data(), x.size(0), x.size(1), false);
  return reuse::cluster_rows(x.data(), x.size(0), x.size(1), *hasher);
}

// The clustered computation written plainly, in double: centroids by loops
// over the members, Y, dW = sum_s centroids^T G_s, dX per cluster or dense.
struct Reference {
  std::vector<double> y, dw, dx_cluster, dx_exact;
};

Reference reference(const reuse::Clustering& c, const Tensor& x, const Tensor& w, const Tensor& dy) {
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0), l = c.L;
  Reference r;
  r.y.assign(n * m, 0.0);
  r.dw.assign(m * k, 0.0);
  r.dx_cluster.assign(n * k, 0.0);
  r.dx_exact.assign(n * k, 0.0);
  for (int64_t s = 0; s < c.blocks; ++s) {
    const int64_t lo = s * l, hi = std::min(k, lo + l), nc = c.clusters(s);
    std::vector<double> cen(nc * l, 0.0), g(nc * m, 0.0);
    std::vector<int64_t> size(nc, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = c.assign[s * n + i];
      ++size[a];
      for (int64_t j = lo; j < hi; ++j) cen[a * l + j - lo] += x[i * k + j];
      for (int64_t o = 0; o < m; ++o) g[a * m + o] += dy[i * m + o];
    }
    for (int64_t a = 0; a < nc; ++a)
      for (int64_t j = 0; j < l; ++j) cen[a * l + j] /= static_cast<double>(size[a]);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = c.assign[s * n + i];
      for (int64_t o = 0; o < m; ++o)
        for (int64_t j = lo; j < hi; ++j) r.y[i * m + o] += cen[a * l + j - lo] * w[o * k + j];
      for (int64_t j = lo; j < hi; ++j)
        for (int64_t o = 0; o < m; ++o)
          r.dx_cluster[i * k + j] += g[a * m + o] / static_cast<double>(size[a]) * w[o * k + j];
    }
    for (int64_t a = 0; a < nc; ++a)
      for (int64_t o = 0; o < m; ++o)
        for (int64_t j = lo; j < hi; ++j) r.dw[o * k + j] += cen[a * l + j - lo] * g[a * m + o];
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t o = 0; o < m; ++o) r.dx_exact[i * k + j] += dy[i * m + o] * double(w[o * k + j]);
  return r;
}

double max_abs_diff(const float* a, const std::vector<double>& b) {
  double d = 0.0;
  for (size_t i = 0; i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
  return d;
}

struct Outputs {
  Tensor y, dw, dx;
  double r_c;
};

Outputs run(const ReuseSettings& s, const Tensor& x, const Tensor& w, const Tensor& dy,
            float dx_beta = 0.0f, float dx_init = 0.0f) {
  reuse::ReuseProduct p(s);
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  Outputs o{Tensor::full({n, m}, 123.0f), Tensor::zeros({m, k}), Tensor::full({n, k}, dx_init), 0.0};
  auto saved = p.forward(x, w, o.y, true);
  REQUIRE(saved);
  p.backward(*saved, dy, w, o.dw.data(), o.dx.data(), dx_beta);
  o.r_c = p.last_remaining_ratio();
  CHECK(p.stats().forward_calls == 1);
  CHECK(p.stats().remaining_ratio_sum == doctest::Approx(o.r_c));
  return o;
}

}  // namespace

TEST_CASE("every row its own cluster: reuse equals dense") {
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    CAPTURE(hash);
    const int64_t n = 24, k = 23, m = 7;
    Tensor x = random_tensor({n, k}, 1), w = random_tensor({m, k}, 2), dy = random_tensor({n, m}, 3);
    auto s = settings(hash, 12, 32, 0.02);  // blocks of 12 and 11 columns
    auto c = assignment(s, x);
    for (int64_t b = 0; b < c.blocks; ++b) REQUIRE(c.clusters(b) == n);  // H = 32 separates them
    for (std::string dx : {"cluster", "exact"}) {
      s.dx = dx;
      reuse::ReuseProduct p(s);
      auto e = reuse::compare_to_dense(p, x, w, dy);
      CHECK(e.remaining_ratio == 1.0);
      CHECK(e.err_y < 1e-6);
      CHECK(e.err_dw < 1e-6);
      CHECK(e.err_dx < 1e-6);
    }
  }
}

TEST_CASE("identical rows: one cluster per block and exact forward and dW") {
  const int64_t n = 50, k = 17, m = 6;
  Tensor row = random_tensor({1, k}, 4);
  Tensor x = Tensor::empty({n, k});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = row[j];
  Tensor w = random_tensor({m, k}, 5), dy = random_tensor({n, m}, 6);
  auto s = settings("qproj", 4, 8);
  auto c = assignment(s, x);
  for (int64_t b = 0; b < c.blocks; ++b) CHECK(c.clusters(b) == 1);
  s.dx = "exact";
  reuse::ReuseProduct p(s);
  auto e = reuse::compare_to_dense(p, x, w, dy);
  CHECK(e.remaining_ratio == doctest::Approx(1.0 / n));
  CHECK(e.err_y < 1e-6);
  CHECK(e.err_dw < 1e-6);
  CHECK(e.err_dx < 1e-6);
}

TEST_CASE("random data: forward, dW and both dX modes equal the plain clustered computation") {
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    for (int64_t h : {1, 3, 32}) {
      CAPTURE(hash);
      CAPTURE(h);
      const int64_t n = 300, k = 37, m = 9, l = 8;  // L does not divide K
      Tensor x = random_rows_with_zero_blocks(n, k, l, 11);
      Tensor w = random_tensor({m, k}, 12), dy = random_tensor({n, m}, 13);
      auto s = settings(hash, l, h, 1.0);
      auto c = assignment(s, x);
      CHECK(c.remaining_ratio() < 1.0);
      CHECK(c.remaining_ratio() > 0.0);
      auto ref = reference(c, x, w, dy);
      auto o = run(s, x, w, dy);
      CHECK(o.r_c == doctest::Approx(c.remaining_ratio()));
      CHECK(max_abs_diff(o.y.data(), ref.y) < 1e-4);
      CHECK(max_abs_diff(o.dw.data(), ref.dw) < 1e-3);
      CHECK(max_abs_diff(o.dx.data(), ref.dx_cluster) < 1e-4);
      s.dx = "exact";
      auto oe = run(s, x, w, dy);
      CHECK(max_abs_diff(oe.dx.data(), ref.dx_exact) < 1e-4);
      CHECK(max_abs_diff(oe.dw.data(), ref.dw) < 1e-3);
    }
  }
}

TEST_CASE("wide outputs over many block groups: column slices equal the plain clustered computation") {
  // M = 130: two 64-column slices and a 2-column tail per pass. ~3000
  // clusters per block (a fine width on distinct rows): a slice of a block's
  // per-cluster rows is ~190K floats, over one group's budget, so every
  // block is its own group and Y / dY pass once per group and slice.
  const int64_t n = 3000, k = 40, m = 130, l = 10;
  Tensor x = random_rows_with_zero_blocks(n, k, l, 61), w = random_tensor({m, k}, 62),
         dy = random_tensor({n, m}, 63);
  auto s = settings("qproj", l, 8, 0.05);
  auto c = assignment(s, x);
  CHECK(c.clusters(0) > 2048);  // more than fits one group's slice
  auto ref = reference(c, x, w, dy);
  auto o = run(s, x, w, dy);
  CHECK(max_abs_diff(o.y.data(), ref.y) < 1e-4);
  CHECK(max_abs_diff(o.dw.data(), ref.dw) < 1e-3);
  CHECK(max_abs_diff(o.dx.data(), ref.dx_cluster) < 1e-4);
}

TEST_CASE("forward exact: Y is the dense product, the backward is the clustered one") {
  const int64_t n = 300, k = 37, m = 9, l = 8;
  Tensor x = random_rows_with_zero_blocks(n, k, l, 21);
  Tensor w = random_tensor({m, k}, 22), dy = random_tensor({n, m}, 23);
  auto s = settings("qproj", l, 4, 1.0);
  auto c = assignment(s, x);
  REQUIRE(c.remaining_ratio() < 0.9);  // real clustering, so the cluster forward differs from dense
  auto ref = reference(c, x, w, dy);
  std::vector<double> dense_y(static_cast<size_t>(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t j = 0; j < k; ++j) dense_y[i * m + o] += double(x[i * k + j]) * w[o * k + j];
  for (std::string dx : {"cluster", "exact"}) {
    CAPTURE(dx);
    s.dx = dx;
    s.forward = "exact";
    auto o = run(s, x, w, dy);
    CHECK(max_abs_diff(o.y.data(), dense_y) < 1e-4);
    CHECK(max_abs_diff(o.y.data(), ref.y) > 1e-2);
    CHECK(max_abs_diff(o.dw.data(), ref.dw) < 1e-3);
    CHECK(max_abs_diff(o.dx.data(), dx == "cluster" ? ref.dx_cluster : ref.dx_exact) < 1e-4);
    CHECK(o.r_c == doctest::Approx(c.remaining_ratio()));
  }
  // Rows that are not one matrix in memory (as conv2d's patches) take the
  // tiled path: rows ld = k + 3 apart, so the source has no data().
  Tensor padded = Tensor::full({n, k + 3}, 9.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) padded[i * (k + 3) + j] = x[i * k + j];
  core::MatrixRows strided(padded.data(), n, k, k + 3);
  REQUIRE(strided.data() == nullptr);
  reuse::ReuseProduct tiled(s);
  Tensor yt = Tensor::full({n, m}, 5.0f);
  CHECK(tiled.forward_rows(strided, w, yt, true));
  CHECK(max_abs_diff(yt.data(), dense_y) < 1e-4);
  // Without a backward (inference) no clustering runs: the dense product, r_c 1.
  reuse::ReuseProduct p(s);
  Tensor y = Tensor::full({n, m}, 5.0f);
  CHECK_FALSE(p.forward(x, w, y, false));
  CHECK(max_abs_diff(y.data(), dense_y) < 1e-4);
  CHECK(p.last_remaining_ratio() == 1.0);
  CHECK(p.stats().cluster_s == 0.0);
}

TEST_CASE("vector kernels: output widths around 64, L below and above 16, streamed and scaled dX") {
  // M = 80 and 70: a full 64-float slice plus a masked tail; M = 16: tail only.
  // K = 160 (a multiple of 16, aligned rows): dX is streamed when beta == 0;
  // K = 150: the plain path. L = 10 writes whole 16-float vectors past the
  // block (overwritten by the next block), L = 20 takes the masked loop.
  for (int64_t m : {16, 70, 80}) {
    for (int64_t k : {150, 160}) {
      for (int64_t l : {10, 20}) {
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(l);
        const int64_t n = 203;
        Tensor x = random_rows_with_zero_blocks(n, k, l, 31), w = random_tensor({m, k}, 32),
               dy = random_tensor({n, m}, 33);
        auto s = settings("qproj", l, 4, 1.0);
        auto c = assignment(s, x);
        CHECK(c.remaining_ratio() < 1.0);
        auto ref = reference(c, x, w, dy);
        // beta 0 over NaN: dX must be overwritten, never read.
        auto o = run(s, x, w, dy, 0.0f, std::nanf(""));
        int64_t non_finite = 0;  // max_abs_diff would not see a NaN
        for (int64_t i = 0; i < n * k; ++i) non_finite += !std::isfinite(o.dx[i]);
        CHECK(non_finite == 0);
        CHECK(max_abs_diff(o.y.data(), ref.y) < 1e-4);
        CHECK(max_abs_diff(o.dw.data(), ref.dw) < 1e-3);
        CHECK(max_abs_diff(o.dx.data(), ref.dx_cluster) < 1e-4);
        auto ob = run(s, x, w, dy, 0.5f, 2.0f);
        std::vector<double> want = ref.dx_cluster;
        for (auto& v : want) v += 1.0;
        CHECK(max_abs_diff(ob.dx.data(), want) < 1e-4);
      }
    }
  }
}

TEST_CASE("dX honours beta, and dW accumulates") {
  const int64_t n = 64, k = 20, m = 5;
  Tensor x = random_rows_with_zero_blocks(n, k, 6, 21), w = random_tensor({m, k}, 22),
         dy = random_tensor({n, m}, 23);
  for (std::string dx : {"cluster", "exact"}) {
    auto s = settings("qproj", 6, 4);
    s.dx = dx;
    auto c = assignment(s, x);
    auto ref = reference(c, x, w, dy);
    const auto& want = dx == "cluster" ? ref.dx_cluster : ref.dx_exact;
    auto o = run(s, x, w, dy, 0.5f, 2.0f);
    for (size_t i = 0; i < want.size(); ++i) REQUIRE(o.dx[i] == doctest::Approx(want[i] + 1.0).epsilon(1e-4));
    // A second backward adds to dW.
    reuse::ReuseProduct p(s);
    Tensor y = Tensor::empty({n, m}), dw = Tensor::full({m, k}, 1.0f);
    auto saved = p.forward(x, w, y, true);
    p.backward(*saved, dy, w, dw.data(), nullptr, 0.0f);
    for (int64_t i = 0; i < m * k; ++i) REQUIRE(dw[i] == doctest::Approx(ref.dw[i] + 1.0).epsilon(1e-4));
  }
}

TEST_CASE("analytic reuse gradients match finite differences of the clustered forward") {
  const int64_t n = 40, k = 13, m = 4, l = 5;
  Tensor x = random_rows_with_zero_blocks(n, k, l, 31), w = random_tensor({m, k}, 32),
         dy = random_tensor({n, m}, 33);
  auto s = settings("qproj", l, 2, 2.0);  // coarse: clusters of several rows
  auto c = assignment(s, x);
  REQUIRE(c.remaining_ratio() < 0.5);
  auto o = run(s, x, w, dy);
  // f(x, w) = <dY, Y_clustered(x, w)> with the assignment c held fixed.
  auto f = [&](const Tensor& xx, const Tensor& ww) {
    auto r = reference(c, xx, ww, dy);
    double v = 0.0;
    for (int64_t i = 0; i < n * m; ++i) v += r.y[i] * dy[i];
    return v;
  };
  CHECK(testing::check_finite_differences(x, w, o.dx, o.dw, f, 3) > 1.0);
}

TEST_CASE("one row and zero rows are handled") {
  const int64_t k = 11, m = 3;
  Tensor w = random_tensor({m, k}, 41);
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    Tensor x1 = random_tensor({1, k}, 42), dy1 = random_tensor({1, m}, 43);
    reuse::ReuseProduct p(settings(hash, 4, 8));
    auto e = reuse::compare_to_dense(p, x1, w, dy1);
    CHECK(e.err_y < 1e-6);
    CHECK(e.err_dw < 1e-6);
    CHECK(e.err_dx < 1e-6);
    CHECK(e.remaining_ratio == 1.0);

    Tensor x0 = Tensor::empty({0, k}), y0 = Tensor::empty({0, m}), dy0 = Tensor::empty({0, m});
    Tensor dw = Tensor::zeros({m, k});
    auto saved = p.forward(x0, w, y0, true);
    REQUIRE(saved);
    p.backward(*saved, dy0, w, dw.data(), nullptr, 0.0f);
    for (int64_t i = 0; i < m * k; ++i) CHECK(dw[i] == 0.0f);
    CHECK(p.last_remaining_ratio() == 0.0);
  }
}

TEST_CASE("results do not depend on the thread count") {
  const int64_t n = 3000, k = 45, m = 16;
  Tensor x = random_rows_with_zero_blocks(n, k, 10, 51), w = random_tensor({m, k}, 52),
         dy = random_tensor({n, m}, 53);
  auto s = settings("qproj", 10, 8);
  core::set_num_threads(1);
  auto a = run(s, x, w, dy);
  core::set_num_threads(2);
  auto b = run(s, x, w, dy);
  CHECK(a.r_c == b.r_c);
  for (int64_t i = 0; i < n * m; ++i) REQUIRE(a.y[i] == b.y[i]);
  for (int64_t i = 0; i < n * k; ++i) REQUIRE(a.dx[i] == doctest::Approx(b.dx[i]).epsilon(1e-5));
}

TEST_CASE("bad shapes are rejected") {
  reuse::ReuseProduct p(settings("qproj", 4, 4));
  Tensor x = Tensor::zeros({5, 8}), w = Tensor::zeros({3, 7}), y = Tensor::zeros({5, 3});
  CHECK_THROWS_WITH(p.forward(x, w, y, false),
                    "reuse product: X [5, 8], W [3, 7], Y [5, 3] (expected X [N, K], W [M, K], Y [N, M])");
}
