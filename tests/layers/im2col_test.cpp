#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "layers/im2col.h"
#include "tests/layers/conv_geometry.h"

using deja::layers::col2im_add;
using deja::layers::ConvGeometry;
using deja::layers::im2col;
using deja::testing::conv_geometry;

TEST_CASE("im2col: geometry sizes") {
  ConvGeometry g = conv_geometry(3, 7, 6, 3, 2, 2, 1, 1, 0);
  CHECK(g.out_h() == 4);  // (7 + 2 - 3) / 2 + 1
  CHECK(g.out_w() == 5);  // (6 - 2) / 1 + 1
  CHECK(g.patch_size() == 18);
}

TEST_CASE("im2col: hand-computed patches with padding, ordered (c, ky, kx)") {
  // Two 2x2 channels, 2x2 kernel, padding 1, stride 2: out 2x2.
  // channel 0: 1 2 / 3 4, channel 1: 5 6 / 7 8
  std::vector<float> image{1, 2, 3, 4, 5, 6, 7, 8};
  ConvGeometry g = conv_geometry(2, 2, 2, 2, 2, 2, 2, 1, 1);
  REQUIRE(g.out_h() == 2);
  REQUIRE(g.out_w() == 2);
  std::vector<float> rows(4 * 8, -1.0f);
  im2col(image.data(), g, rows.data());
  std::vector<float> expected{
      0, 0, 0, 1, 0, 0, 0, 5,  // (0,0): taps at (-1,-1) (-1,0) (0,-1) (0,0)
      0, 0, 2, 0, 0, 0, 6, 0,  // (0,1): taps at (-1,1) (-1,2) (0,1) (0,2)
      0, 3, 0, 0, 0, 7, 0, 0,  // (1,0)
      4, 0, 0, 0, 8, 0, 0, 0,  // (1,1)
  };
  CHECK(rows == expected);
}

TEST_CASE("im2col: col2im_add is the adjoint of im2col") {
  // <col2im(y), x> == <y, im2col(x)> for random x, y, over several geometries
  // (interior fast path, borders, strides wider than the kernel).
  const std::vector<ConvGeometry> cases{
      conv_geometry(3, 7, 6, 3, 2, 2, 1, 1, 0), conv_geometry(2, 9, 9, 5, 5, 1, 1, 2, 2),
      conv_geometry(1, 5, 8, 1, 1, 3, 3, 0, 0), conv_geometry(4, 6, 5, 3, 3, 2, 2, 2, 1)};
  deja::core::Rng rng(7);
  for (const ConvGeometry& g : cases) {
    const int64_t n_image = g.channels * g.height * g.width;
    const int64_t n_rows = g.out_h() * g.out_w() * g.patch_size();
    std::vector<float> x(n_image), y(n_rows), cols(n_rows), back(n_image, 0.0f);
    for (float& v : x) v = rng.normal();
    for (float& v : y) v = rng.normal();
    im2col(x.data(), g, cols.data());
    col2im_add(y.data(), g, back.data());
    double lhs = 0.0, rhs = 0.0;
    for (int64_t i = 0; i < n_image; ++i) lhs += static_cast<double>(back[i]) * x[i];
    for (int64_t i = 0; i < n_rows; ++i) rhs += static_cast<double>(y[i]) * cols[i];
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
    CHECK(lhs != 0.0);
  }
}

TEST_CASE("im2col: col2im_add accumulates into the image") {
  ConvGeometry g = conv_geometry(1, 3, 3, 2, 2, 1, 1, 0, 0);
  std::vector<float> rows(4 * 4, 1.0f);
  std::vector<float> image(9, 10.0f);
  col2im_add(rows.data(), g, image.data());
  // How many 2x2 windows cover each pixel of a 3x3 image, plus the 10 already there.
  CHECK(image == std::vector<float>{11, 12, 11, 12, 14, 12, 11, 12, 11});
}

TEST_CASE("im2col: K-major patches equal im2col's rows transposed, also after a same-size geometry") {
  // A and B have the same output width (16) and padded plane (20 x 20) but
  // different padding: the K-major kernels keep a zero-bordered plane per
  // thread, and B's image part covers A's border cells, so a size-only check
  // would read stale borders when A runs again.
  const ConvGeometry a = conv_geometry(2, 16, 16, 5, 5, 1, 1, 2, 2);
  const ConvGeometry b = conv_geometry(2, 18, 18, 5, 5, 1, 1, 1, 1);
  // Output widths with their own compiled kernels (4, 8, 32) and one without (6).
  const ConvGeometry c = conv_geometry(3, 4, 4, 3, 3, 1, 1, 1, 1), d = conv_geometry(2, 8, 8, 3, 3, 1, 1, 1, 1),
                     e = conv_geometry(1, 32, 32, 3, 3, 1, 1, 1, 1), f = conv_geometry(2, 6, 6, 3, 3, 1, 1, 1, 1);
  deja::core::Rng rng(11);
  for (const ConvGeometry& g : {a, b, a, c, d, e, f}) {
    const int64_t p = g.out_h() * g.out_w(), k = g.patch_size();
    std::vector<float> x(static_cast<size_t>(g.channels * g.height * g.width));
    for (float& v : x) v = rng.normal();
    std::vector<float> rows(static_cast<size_t>(p * k)), cols(static_cast<size_t>(p * k));
    im2col(x.data(), g, rows.data());
    deja::layers::im2col_kmajor(x.data(), g, cols.data(), p);
    int bad = 0;
    for (int64_t i = 0; i < p; ++i)
      for (int64_t j = 0; j < k; ++j) bad += cols[j * p + i] != rows[i * k + j];
    CAPTURE(g.height);
    CHECK(bad == 0);
    // A tile of output rows [1, 3) and columns [3, k - 2) (cutting channels).
    const int64_t oy0 = 1, oy1 = 3, c0 = 3, c1 = k - 2, ow = g.out_w(), ld = (oy1 - oy0) * ow + 1;
    std::vector<float> tile(static_cast<size_t>((c1 - c0) * ld), -99.0f);
    deja::layers::im2col_kmajor(x.data(), g, oy0, oy1, c0, c1, tile.data(), ld);
    bad = 0;
    for (int64_t j = c0; j < c1; ++j)
      for (int64_t q = 0; q < (oy1 - oy0) * ow; ++q) bad += tile[(j - c0) * ld + q] != rows[(oy0 * ow + q) * k + j];
    CHECK(bad == 0);
    // col2im_kmajor_add of the same tile equals col2im_add of its rows.
    std::vector<float> full_rows(static_cast<size_t>(p * k), 0.0f);
    for (int64_t j = c0; j < c1; ++j)
      for (int64_t q = 0; q < (oy1 - oy0) * ow; ++q) full_rows[(oy0 * ow + q) * k + j] = tile[(j - c0) * ld + q];
    std::vector<float> expected(x.size(), 0.25f), got(x.size(), 0.25f);
    col2im_add(full_rows.data(), g, expected.data());
    deja::layers::col2im_kmajor_add(tile.data(), ld, g, oy0, oy1, c0, c1, got.data());
    bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += std::abs(got[i] - expected[i]) > 1e-5f;
    CHECK(bad == 0);
  }
}
