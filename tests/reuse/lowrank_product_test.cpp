// The low-rank product against plain-loop references: the dense product when
// the directions span every block, x~ = V V^T x (in double) on random data
// through both doors, finite differences of its forward with the directions
// held fixed, and the settings' validation.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/bf16_gemm.h"
#include "core/rng.h"
#include "reuse/kept_projection.h"
#include "reuse/lowrank_product.h"
#include "reuse/lsh.h"
#include "reuse/settings.h"
#include "tests/reuse/product_doors.h"

using namespace deja;
using core::Tensor;
using reuse::ReuseSettings;
using testing::max_abs_diff;
using testing::normal;
using testing::Outputs;

namespace {

ReuseSettings lowrank(int64_t l, int64_t h) {
  ReuseSettings s;
  s.enabled = true;
  s.hash = "pca";
  s.L = l;
  s.H = h;
  s.seed = 3;
  s.lowrank = true;
  return s;
}

struct Reference {
  std::vector<double> y, dw, dx;
};

// x~ = V_s V_s^T x per block (v: [blocks][L][H]), Y = X~ W^T, dW = dY^T X~,
// dX_s = (dY W)_s V_s V_s^T (dx "exact": dX = dY W).
Reference reference_with(const std::vector<float>& v, const ReuseSettings& s, const Tensor& x, const Tensor& w,
                         const Tensor& dy) {
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0), l = s.L, h = s.H;
  auto project = [&](const std::vector<double>& row, std::vector<double>& out) {
    std::fill(out.begin(), out.end(), 0.0);
    for (int64_t b = 0; b * l < k; ++b) {
      const int64_t len = std::min(l, k - b * l);
      const float* vb = v.data() + b * l * h;
      for (int64_t q = 0; q < h; ++q) {
        double p = 0.0;
        for (int64_t j = 0; j < len; ++j) p += row[b * l + j] * vb[j * h + q];
        for (int64_t j = 0; j < len; ++j) out[b * l + j] += p * vb[j * h + q];
      }
    }
  };
  Reference r;
  r.y.assign(n * m, 0.0);
  r.dw.assign(m * k, 0.0);
  r.dx.assign(n * k, 0.0);
  std::vector<double> row(k), xt(k), d(k), dt(k);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) row[j] = x[i * k + j];
    project(row, xt);
    for (int64_t j = 0; j < k; ++j) {
      d[j] = 0.0;
      for (int64_t o = 0; o < m; ++o) d[j] += double(dy[i * m + o]) * w[o * k + j];
    }
    project(d, dt);
    for (int64_t j = 0; j < k; ++j) r.dx[i * k + j] = s.dx == "exact" ? d[j] : dt[j];
    for (int64_t o = 0; o < m; ++o)
      for (int64_t j = 0; j < k; ++j) {
        r.y[i * m + o] += xt[j] * w[o * k + j];
        r.dw[o * k + j] += double(dy[i * m + o]) * xt[j];
      }
  }
  return r;
}

// The directions of a pca hasher fitted on x, as the product's first forward fits them.
std::vector<float> fitted_directions(const ReuseSettings& s, const Tensor& x) {
  auto hasher = reuse::make_hasher(s, x.size(1));
  hasher->prepare(x.data(), x.size(0), x.size(1), false);
  return reuse::block_directions(*hasher);
}

Reference reference(const ReuseSettings& s, const Tensor& x, const Tensor& w, const Tensor& dy) {
  return reference_with(fitted_directions(s, x), s, x, w, dy);
}

// Matrix door; dX starts at 2 and is kept at half weight (beta 0.5) when asked.
Outputs run(const ReuseSettings& s, const Tensor& x, const Tensor& w, const Tensor& dy, float beta = 0.0f) {
  reuse::LowRankProduct p(s);
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  Outputs o{Tensor::full({n, m}, 123.0f), Tensor::full({m, k}, 1.0f), Tensor::full({n, k}, 2.0f)};
  auto saved = p.forward(x, w, o.y, true);
  REQUIRE(saved);
  p.backward(*saved, dy, w, o.dw.data(), o.dx.data(), beta);
  for (int64_t q = 0; q < m * k; ++q) o.dw[q] -= 1.0f;        // dW accumulates
  for (int64_t q = 0; q < n * k; ++q) o.dx[q] -= 2.0f * beta;  // dX = ... + beta dX
  return o;
}

}  // namespace

TEST_CASE("lowrank: directions spanning every block give the dense product") {
  const int64_t n = 150, k = 24, m = 5, l = 6;
  Tensor x = normal({n, k}, 1), w = normal({m, k}, 2), dy = normal({n, m}, 3);
  Outputs o = run(lowrank(l, l), x, w, dy);
  const testing::DenseErrors e = testing::errors_against_dense(x, w, dy, o);
  CHECK(e.y < 1e-4);
  CHECK(e.dw < 1e-3);
  CHECK(e.dx < 1e-4);
}

TEST_CASE("lowrank on random data equals the plain computation, through both doors") {
  for (const char* dx : {"cluster", "exact"})
  for (int64_t h : {1, 3, 8}) {
    CAPTURE(dx);
    CAPTURE(h);
    const int64_t n = 300, k = 37, m = 9, l = 8;  // L does not divide K; 300 rows: a 256-row tile and a tail
    Tensor x = normal({n, k}, 11), w = normal({m, k}, 12), dy = normal({n, m}, 13);
    auto s = lowrank(l, h);
    s.dx = dx;
    auto ref = reference(s, x, w, dy);
    Outputs o = run(s, x, w, dy, 0.5f);
    CHECK(max_abs_diff(o.y, ref.y) < 1e-4);
    CHECK(max_abs_diff(o.dw, ref.dw) < 1e-3);
    CHECK(max_abs_diff(o.dx, ref.dx) < 1e-4);
    Outputs t = testing::run_rows<reuse::LowRankProduct>(s, x, w, dy, 70);
    CHECK(max_abs_diff(t.y, ref.y) < 1e-4);
    CHECK(max_abs_diff(t.dw, ref.dw) < 1e-3);
    CHECK(max_abs_diff(t.dx, ref.dx) < 1e-4);
    double ny = 0.0;
    for (double y : ref.y) ny += y * y;
    CHECK(ny > 1.0);  // not a vacuous comparison
  }
}

TEST_CASE("lowrank: analytic gradients match finite differences of its forward") {
  const int64_t n = 30, k = 13, m = 4, l = 5, h = 2;
  Tensor x = normal({n, k}, 31), w = normal({m, k}, 32), dy = normal({n, m}, 33);
  auto s = lowrank(l, h);
  Outputs o = run(s, x, w, dy);
  // The directions are held fixed: fitted on x once, applied to perturbed inputs.
  const std::vector<float> v = fitted_directions(s, x);
  auto g = [&](const Tensor& xx, const Tensor& ww) {
    const std::vector<double> y = reference_with(v, s, xx, ww, dy).y;
    double total = 0.0;
    for (int64_t e = 0; e < n * m; ++e) total += double(dy[e]) * y[e];
    return total;
  };
  testing::check_finite_differences(x, w, o.dx, o.dw, g, 5);
}

TEST_CASE("lowrank refits its directions every `refit`-th forward") {
  const int64_t n = 200, k = 24, m = 3, l = 8, h = 3;
  Tensor x1 = normal({n, k}, 61), x2 = normal({n, k}, 62), w = normal({m, k}, 63);
  for (int64_t i = 0; i < n; ++i)  // x2 spreads along other columns than x1
    for (int64_t j = 0; j < k; ++j) x2[i * k + j] *= 1.0f + static_cast<float>((j * 5) % 8);
  for (int64_t refit : {1, 2}) {
    CAPTURE(refit);
    auto s = lowrank(l, h);
    s.refit = refit;
    // The reference hasher sees the batches the product fits on, in order.
    auto hasher = reuse::make_hasher(s, k);
    hasher->prepare(x1.data(), n, k, false);
    if (refit == 1) hasher->prepare(x2.data(), n, k, false);
    const std::vector<double> want =
        reference_with(reuse::block_directions(*hasher), s, x2, w, Tensor::zeros({n, m})).y;
    reuse::LowRankProduct product(s);
    Tensor y = Tensor::empty({n, m});
    product.forward(x1, w, y, false);
    product.forward(x2, w, y, false);
    CHECK(max_abs_diff(y, want) < 1e-3);
    double ny = 0.0;
    for (double e : want) ny += e * e;
    CHECK(ny > 1.0);
  }
}

TEST_CASE("lowrank dw_sample 1: dW is the dense dY^T X, Y and dX stay the lowrank ones") {
  const int64_t n = 700, k = 37, m = 6, l = 8, h = 2;  // three tiles, the last partial
  Tensor x = normal({n, k}, 71), w = normal({m, k}, 72), dy = normal({n, m}, 73);
  auto s = lowrank(l, h);
  auto ref = reference(s, x, w, dy);
  s.dw_sample = 1.0;
  std::vector<double> dense_dw(m * k, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t j = 0; j < k; ++j) dense_dw[o * k + j] += double(dy[i * m + o]) * x[i * k + j];
  for (bool rows : {false, true}) {
    CAPTURE(rows);
    Outputs o = rows ? testing::run_rows<reuse::LowRankProduct>(s, x, w, dy, 70) : run(s, x, w, dy);
    CHECK(max_abs_diff(o.dw, dense_dw) < 1e-3);
    CHECK(max_abs_diff(o.dw, ref.dw) > 1.0);  // the directions alone give another dW
    CHECK(max_abs_diff(o.y, ref.y) < 1e-4);
    CHECK(max_abs_diff(o.dx, ref.dx) < 1e-4);
  }
}

TEST_CASE("lowrank dw_sample: a drawn tile adds (T / c) times its residual's dW, about c / T of the time") {
  // dY is non-zero on tile 1 only, so each backward's dW minus the lowrank
  // one is either 0 (tile 1 not drawn) or (T / c) dY_1^T (X_1 - X~_1).
  const int64_t tiles = 4, n = tiles * 256, k = 20, m = 3, l = 8, h = 2;
  Tensor x = normal({n, k}, 81), w = normal({m, k}, 82), dy = Tensor::zeros({n, m});
  for (int64_t i = 256 * m; i < 512 * m; ++i) dy[i] = static_cast<float>(std::sin(0.37 * double(i)));
  auto s = lowrank(l, h);
  s.refit = 1000;  // one fit: the reference's directions hold for every batch
  auto ref = reference(s, x, w, dy);
  std::vector<double> tile_dw(m * k, 0.0);  // dY_1^T X_1, dense
  for (int64_t i = 256; i < 512; ++i)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t j = 0; j < k; ++j) tile_dw[o * k + j] += double(dy[i * m + o]) * x[i * k + j];
  std::vector<double> want(m * k);  // (T / c) (dY_1^T X_1 - dY_1^T X~_1), c = 2
  for (int64_t q = 0; q < m * k; ++q) want[q] = ref.dw[q] + 2.0 * (tile_dw[q] - ref.dw[q]);
  s.dw_sample = 0.5;
  reuse::LowRankProduct product(s);
  int drawn = 0;
  const int passes = 40;
  for (int pass = 0; pass < passes; ++pass) {
    Tensor y = Tensor::empty({n, m}), dw = Tensor::zeros({m, k});
    auto saved = product.forward(x, w, y, true);
    product.backward(*saved, dy, w, dw.data(), nullptr, 0.0f);
    const bool with_tile = max_abs_diff(dw, ref.dw) > 1e-2;
    CAPTURE(pass);
    CHECK(max_abs_diff(dw, with_tile ? want : ref.dw) < 1e-3);
    drawn += with_tile;
  }
  CHECK(drawn > passes / 4);  // a draw of 2 tiles of 4 takes tile 1 half the time
  CHECK(drawn < passes * 3 / 4);
}

TEST_CASE("lowrank bf16: both doors give the float results to bf16's precision") {
  // 700 rows: three tiles, the last partial; 5 blocks of H 3 make an odd
  // inner size (a zero half-pair); M 6 ends inside a vector.
  const int64_t n = 700, k = 37, m = 6, l = 8, h = 3;
  Tensor x = normal({n, k}, 91), w = normal({m, k}, 92), dy = normal({n, m}, 93);
  auto s = lowrank(l, h);
  auto ref = reference(s, x, w, dy);
  s.bf16 = true;
  auto largest = [](const std::vector<double>& v) {
    double a = 0.0;
    for (double e : v) a = std::max(a, std::abs(e));
    return a;
  };
  for (bool rows : {false, true}) {
    CAPTURE(rows);
    Outputs o = rows ? testing::run_rows<reuse::LowRankProduct>(s, x, w, dy, 70) : run(s, x, w, dy);
    const double ey = max_abs_diff(o.y, ref.y) / largest(ref.y), edw = max_abs_diff(o.dw, ref.dw) / largest(ref.dw),
                 edx = max_abs_diff(o.dx, ref.dx) / largest(ref.dx);
    CHECK(ey < 2e-2);
    CHECK(edw < 2e-2);
    CHECK(edx < 2e-2);
    if (core::bf16_available()) {  // rounded operands: not the float results to the last bit
      CHECK(ey > 1e-5);
      CHECK(edw > 1e-5);
      CHECK(edx > 1e-5);
    }
  }
}

TEST_CASE("lowrank settings: validation and the product they make") {
  auto s = lowrank(8, 4);
  CHECK(reuse::describe(s) == "reuse(hash=pca, L=8, H=4, dx=cluster, lowrank)");
  CHECK(dynamic_cast<reuse::LowRankProduct*>(reuse::make_product(s).get()) != nullptr);
  s.hash = "qproj";
  CHECK_THROWS_WITH_AS(s.validate("conv2"), "conv2: key 'lowrank' needs hash \"pca\" (its directions), got \"qproj\"",
                       std::invalid_argument);
  s.hash = "pca";
  s.keep_projection = true;
  CHECK_THROWS_WITH_AS(s.validate("conv2"), "conv2: keys 'lowrank' and 'keep_projection' exclude each other",
                       std::invalid_argument);
  s.keep_projection = false;
  s.dx = "exact";
  CHECK_NOTHROW(s.validate("conv2"));
  s.forward = "exact";
  CHECK_THROWS_WITH_AS(s.validate("conv2"), "conv2: key 'lowrank' computes Y itself (leave 'forward' unset)",
                       std::invalid_argument);
  s.forward = "cluster";
  s.refit = 0;
  CHECK_THROWS_WITH_AS(s.validate("conv2"), "conv2: key 'refit' must be >= 1, got 0", std::invalid_argument);
  s.refit = 8;
  CHECK(reuse::describe(s) == "reuse(hash=pca, L=8, H=4, dx=exact, lowrank, refit=8)");
  s.lowrank = false;
  CHECK_THROWS_WITH_AS(s.validate("conv2"),
                       "conv2: key 'refit' applies to 'lowrank' only (the clustered product fits every batch)",
                       std::invalid_argument);
  auto lr = lowrank(8, 4);
  lr.refit = 8;
  auto j = reuse::settings_to_json(lr);
  CHECK(reuse::settings_from_json(j, ReuseSettings(), "conv2").lowrank);
  CHECK(reuse::settings_from_json(j, ReuseSettings(), "conv2").refit == 8);
  lr.dw_sample = 0.125;
  CHECK(reuse::describe(lr) == "reuse(hash=pca, L=8, H=4, dx=cluster, lowrank, refit=8, dw_sample=0.125)");
  CHECK(reuse::settings_from_json(reuse::settings_to_json(lr), ReuseSettings(), "conv2").dw_sample == 0.125);
  lr.dw_sample = 1.5;
  CHECK_THROWS_WITH_AS(lr.validate("conv2"), "conv2: key 'dw_sample' must be in 0..1, got 1.5", std::invalid_argument);
  lr.dw_sample = 0.5;
  lr.lowrank = false;
  lr.refit = 1;
  CHECK_THROWS_WITH_AS(lr.validate("conv2"), "conv2: key 'dw_sample' applies to 'lowrank' only",
                       std::invalid_argument);
  auto half = lowrank(8, 4);
  half.bf16 = true;
  CHECK(reuse::describe(half) == "reuse(hash=pca, L=8, H=4, dx=cluster, lowrank, bf16)");
  CHECK(reuse::settings_from_json(reuse::settings_to_json(half), ReuseSettings(), "conv2").bf16);
  CHECK_FALSE(reuse::settings_from_json(reuse::settings_to_json(lowrank(8, 4)), ReuseSettings(), "conv2").bf16);
  half.dw_sample = 0.5;
  CHECK_THROWS_WITH_AS(half.validate("conv2"), "conv2: keys 'bf16' and 'dw_sample' exclude each other",
                       std::invalid_argument);
  half.dw_sample = 0.0;
  half.lowrank = false;
  CHECK_THROWS_WITH_AS(half.validate("conv2"), "conv2: key 'bf16' applies to 'lowrank' only", std::invalid_argument);
}
