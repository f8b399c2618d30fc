// Winograd F(2x2, 3x3): forward, dX and dW against the convolution and its
// gradients computed by plain loops (in double), on odd and even plane sizes,
// planes smaller than one tile, several chunks of images, and accumulation
// into existing gradients; the weight transform against its definition.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "layers/winograd.h"
#include "tests/layers/conv_geometry.h"

using deja::core::Rng;
using deja::layers::ConvGeometry;

namespace {

// A 3x3 / stride 1 / padding 1 convolution.
ConvGeometry same_3x3(int64_t c, int64_t h, int64_t w) { return deja::testing::conv_geometry(c, h, w, 3, 3, 1, 1); }

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed, 5);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.normal();
  return v;
}

struct Reference {
  std::vector<double> y, dx, dw;
};

// The 3x3 / pad 1 convolution and its gradients for the upstream gradient dy, by definition.
Reference reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& bias,
                    const std::vector<float>& dy, int64_t n, int64_t c, int64_t m, int64_t h, int64_t wd) {
  Reference r;
  r.y.assign(n * m * h * wd, 0.0);
  r.dx.assign(n * c * h * wd, 0.0);
  r.dw.assign(m * c * 9, 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t mi = 0; mi < m; ++mi)
      for (int64_t oy = 0; oy < h; ++oy)
        for (int64_t ox = 0; ox < wd; ++ox) {
          const int64_t out = ((b * m + mi) * h + oy) * wd + ox;
          double s = bias.empty() ? 0.0 : bias[mi];
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t a = 0; a < 3; ++a)
              for (int64_t e = 0; e < 3; ++e) {
                const int64_t iy = oy + a - 1, ix = ox + e - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                const int64_t in = ((b * c + ci) * h + iy) * wd + ix, k = (mi * c + ci) * 9 + a * 3 + e;
                s += double(x[in]) * w[k];
                r.dx[in] += double(dy[out]) * w[k];
                r.dw[k] += double(dy[out]) * x[in];
              }
          r.y[out] = s;
        }
  return r;
}

// Largest |got - want| relative to the largest |want|.
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0.0, scale = 1e-12;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

struct Case {
  int64_t n, c, m, h, w;
};

}  // namespace

TEST_CASE("winograd conv: forward, dX and dW equal the convolution's by definition") {
  deja::core::set_num_threads(2);  // the transforms and GEMMs run on the pool's workers too
  const Case cases[] = {
      {2, 3, 5, 8, 8},    // even plane, 4 tiles wide (the row-vectorised path)
      {2, 4, 3, 7, 9},    // odd height and width: the last tiles are partial
      {3, 5, 4, 2, 2},    // one tile per image (VGG's conv5)
      {2, 2, 6, 1, 1},    // a plane smaller than one tile
      {3, 3, 2, 1, 6},    // one row
      {2, 3, 4, 5, 5},    // odd plane narrower than 4 tiles (the tile-by-tile path)
      {33, 16, 16, 32, 32},  // 16 MB of transforms per chunk: two chunks of images
  };
  uint64_t seed = 10;
  for (const Case& k : cases) {
    CAPTURE(k.n);
    CAPTURE(k.c);
    CAPTURE(k.m);
    CAPTURE(k.h);
    CAPTURE(k.w);
    const ConvGeometry g = same_3x3(k.c, k.h, k.w);
    const auto x = random_values(k.n * k.c * k.h * k.w, ++seed);
    const auto w = random_values(k.m * k.c * 9, ++seed);
    const auto bias = random_values(k.m, ++seed);
    const auto dy = random_values(k.n * k.m * k.h * k.w, ++seed);
    const Reference want = reference(x, w, bias, dy, k.n, k.c, k.m, k.h, k.w);

    std::vector<float> y(want.y.size(), std::nanf(""));
    deja::layers::winograd_forward(x.data(), k.n, g, w.data(), k.m, bias.data(), y.data());
    CHECK(relative_error(y, want.y) < 1e-5);

    std::vector<float> dx(want.dx.size(), std::nanf("")), dw(want.dw.size(), std::nanf(""));
    deja::layers::winograd_backward(x.data(), dy.data(), k.n, g, w.data(), k.m, dx.data(), 0.0f, dw.data(), 0.0f);
    CHECK(relative_error(dx, want.dx) < 1e-5);
    CHECK(relative_error(dw, want.dw) < 1e-5);

    // beta = 1 adds to what is there; either gradient alone gives the same values.
    std::vector<float> dx2(dx.size(), 1.0f), dw2(dw.size(), 2.0f);
    deja::layers::winograd_backward(x.data(), dy.data(), k.n, g, w.data(), k.m, dx2.data(), 1.0f, nullptr, 0.0f);
    deja::layers::winograd_backward(x.data(), dy.data(), k.n, g, w.data(), k.m, nullptr, 0.0f, dw2.data(), 1.0f);
    std::vector<double> dx_plus(want.dx), dw_plus(want.dw);
    for (auto& v : dx_plus) v += 1.0;
    for (auto& v : dw_plus) v += 2.0;
    CHECK(relative_error(dx2, dx_plus) < 1e-5);
    CHECK(relative_error(dw2, dw_plus) < 1e-5);
  }
  deja::core::set_num_threads(1);
}

TEST_CASE("winograd conv: the same bits on one thread and on two") {
  const int64_t n = 33, c = 16, m = 24, h = 9, w = 11;
  const ConvGeometry g = same_3x3(c, h, w);
  const auto x = random_values(n * c * h * w, 1), wt = random_values(m * c * 9, 2);
  const auto bias = random_values(m, 3), dy = random_values(n * m * h * w, 4);
  std::vector<float> y[2], dx[2], dw[2];
  for (int threads = 1; threads <= 2; ++threads) {
    deja::core::set_num_threads(threads);
    const int r = threads - 1;
    y[r].resize(n * m * h * w);
    dx[r].resize(x.size());
    dw[r].resize(wt.size());
    deja::layers::winograd_forward(x.data(), n, g, wt.data(), m, bias.data(), y[r].data());
    deja::layers::winograd_backward(x.data(), dy.data(), n, g, wt.data(), m, dx[r].data(), 0.0f, dw[r].data(), 0.0f);
  }
  deja::core::set_num_threads(1);
  CHECK(y[0] == y[1]);
  CHECK(dx[0] == dx[1]);
  CHECK(dw[0] == dw[1]);
}

TEST_CASE("winograd conv: without a bias the output is the bare convolution") {
  const ConvGeometry g = same_3x3(2, 5, 4);
  const auto x = random_values(2 * 5 * 4, 3);
  const auto w = random_values(3 * 2 * 9, 4);
  const auto dy = random_values(3 * 5 * 4, 5);
  const Reference want = reference(x, w, {}, dy, 1, 2, 3, 5, 4);
  std::vector<float> y(want.y.size());
  deja::layers::winograd_forward(x.data(), 1, g, w.data(), 3, nullptr, y.data());
  CHECK(relative_error(y, want.y) < 1e-5);
}

TEST_CASE("winograd weight transform: U = G g G^T, and G^T dU G is its adjoint") {
  // G g G^T of a kernel with a single 1 at (a, b) is the outer product of G's columns a and b.
  const float g_cols[3][4] = {{1, 0.5f, 0.5f, 0}, {0, 0.5f, -0.5f, 0}, {0, 0.5f, 0.5f, 1}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      const int64_t stride = deja::layers::winograd::position_stride(1);
      std::vector<float> kernel(9, 0.0f), u(16 * stride), rotated(16 * stride);
      kernel[a * 3 + b] = 1.0f;
      deja::layers::winograd::transform_weights(kernel.data(), 1, 1, false, u.data());
      deja::layers::winograd::transform_weights(kernel.data(), 1, 1, true, rotated.data());
      for (int p = 0; p < 4; ++p)
        for (int q = 0; q < 4; ++q) {
          CHECK(u[(p * 4 + q) * stride] == doctest::Approx(g_cols[a][p] * g_cols[b][q]));
          CHECK(rotated[(p * 4 + q) * stride] == doctest::Approx(g_cols[2 - a][p] * g_cols[2 - b][q]));
        }
    }
  // <U(g), dU> == <g, G^T dU G> for random g and dU.
  const int64_t stride = deja::layers::winograd::position_stride(1);
  const auto g = random_values(9, 7), du = random_values(16 * stride, 8);
  std::vector<float> u(16 * stride), dg(9);
  deja::layers::winograd::transform_weights(g.data(), 1, 1, false, u.data());
  deja::layers::winograd::weight_grad_from_transformed(du.data(), 1, 1, 0.0f, dg.data());
  double lhs = 0.0, rhs = 0.0;
  for (int i = 0; i < 16; ++i) lhs += double(u[i * stride]) * du[i * stride];
  for (int i = 0; i < 9; ++i) rhs += double(g[i]) * dg[i];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
}

TEST_CASE("winograd_applies: 3x3, stride 1, padding 1 and at least 16 channels each way") {
  ConvGeometry g = same_3x3(64, 8, 8);
  CHECK(deja::layers::winograd_applies(g, 64));
  CHECK_FALSE(deja::layers::winograd_applies(g, 8));
  g.channels = 3;
  CHECK_FALSE(deja::layers::winograd_applies(g, 64));
  g = same_3x3(64, 8, 8);
  g.stride_h = g.stride_w = 2;
  CHECK_FALSE(deja::layers::winograd_applies(g, 64));
  g = same_3x3(64, 8, 8);
  g.pad_h = g.pad_w = 0;
  CHECK_FALSE(deja::layers::winograd_applies(g, 64));
  g = same_3x3(64, 8, 8);
  g.kernel_h = g.kernel_w = 5;
  CHECK_FALSE(deja::layers::winograd_applies(g, 64));
}
