// conv2d's patch rows made tile by tile (ConvPatchRows) and their gradient
// scattered tile by tile (ConvPatchGradSink), against the definition and
// against im2col / col2im of whole images; and conv2d on the reuse engine
// through them against the same engine on the materialised patch matrix.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/product.h"
#include "core/rng.h"
#include "layers/conv2d.h"
#include "layers/conv_rows.h"
#include "layers/im2col.h"
#include "reuse/reuse_product.h"
#include "tests/layers/conv_geometry.h"
#include "tests/layers/forwarding_product.h"

using deja::core::Rng;
using deja::core::Tensor;
using deja::layers::ConvGeometry;
using deja::layers::ConvPatchGradSink;
using deja::layers::ConvPatchRows;
using deja::testing::conv_geometry;

namespace {

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed, 3);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.normal();
  return v;
}

const ConvGeometry kGeometries[] = {
    conv_geometry(3, 7, 9, 3, 3, 1, 1),    // odd sizes
    conv_geometry(2, 9, 7, 3, 2, 2, 1),    // stride 2, non-square kernel
    conv_geometry(4, 16, 16, 5, 5, 1, 2),  // CifarNet conv2's shape, fewer channels
    conv_geometry(1, 6, 6, 5, 5, 1, 0),    // no padding
};

}  // namespace

TEST_CASE("ConvPatchRows: every tile equals the patch matrix by definition") {
  const int64_t batch = 3;
  uint64_t seed = 40;
  for (const ConvGeometry& g : kGeometries) {
    const std::vector<float> images = random_values(batch * g.channels * g.height * g.width, ++seed);
    ConvPatchRows rows(images.data(), batch, g);
    const int64_t n = rows.rows(), k = rows.cols();
    CHECK(n == batch * g.out_h() * g.out_w());
    CHECK(k == g.patch_size());
    // Tiles that start mid-image, span image boundaries, and cover column ranges
    // that cut through channels and kernel rows.
    const int64_t ow = g.out_w();
    const int64_t ranges[][4] = {{0, n, 0, k}, {5, n - 9, 3, k - 2}, {n - 1, 1, 0, 1}, {1, n / 2, k / 2, k},
                                 {ow, 2 * ow, 3, k - 2}};  // whole output rows, columns cutting channels
    for (const auto& r : ranges) {
      const int64_t r0 = r[0], count = r[1], c0 = r[2], c1 = r[3], ld = c1 - c0 + 3;
      std::vector<float> tile(static_cast<size_t>(count * ld), -99.0f);
      rows.fill(r0, count, c0, c1, tile.data(), ld);
      int bad = 0;
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = c0; j < c1; ++j)
          bad += tile[i * ld + (j - c0)] != deja::layers::conv_patch_value(images.data(), g, r0 + i, j);
      CAPTURE(g.kernel_w);
      CAPTURE(r0);
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("ConvPatchGradSink: tiles added in any split equal col2im of whole images") {
  const int64_t batch = 2;
  uint64_t seed = 50;
  for (const ConvGeometry& g : kGeometries) {
    const int64_t pixels = g.out_h() * g.out_w(), k = g.patch_size(), image = g.channels * g.height * g.width;
    const std::vector<float> rows = random_values(batch * pixels * k, ++seed);
    std::vector<float> expected(static_cast<size_t>(batch * image), 0.5f);
    for (int64_t n = 0; n < batch; ++n)
      deja::layers::col2im_add(rows.data() + n * pixels * k, g, expected.data() + n * image);
    // Splits that cut output rows (the general loop) and whole pairs of
    // output rows (the padded-plane loop), into a gradient that already holds 0.5.
    // Both as rows and as column-major tiles (add_kmajor) of all columns,
    // of whole channels, and of 7 columns (ranges that cut a channel).
    const int64_t taps = g.kernel_h * g.kernel_w;
    for (const int64_t column_split : {int64_t{0}, k, taps, int64_t{7}})  // 0: rows
      for (const int64_t split : {int64_t{7}, 2 * g.out_w()}) {
        std::vector<float> got(static_cast<size_t>(batch * image), 0.5f);
        ConvPatchGradSink sink(got.data(), g);
        CHECK(sink.granule() == pixels);
        CHECK(sink.cols() == k);
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t p = 0; p < pixels; p += split) {
            const int64_t count = std::min<int64_t>(split, pixels - p), r = n * pixels + p;
            if (column_split == 0) {
              sink.add(r, count, rows.data() + r * k, k);
              continue;
            }
            for (int64_t c0 = 0; c0 < k; c0 += column_split) {
              const int64_t c1 = std::min(k, c0 + column_split);
              std::vector<float> cols(static_cast<size_t>((c1 - c0) * (count + 2)));
              for (int64_t i = 0; i < count; ++i)
                for (int64_t j = c0; j < c1; ++j) cols[(j - c0) * (count + 2) + i] = rows[(r + i) * k + j];
              sink.add_kmajor(r, count, c0, c1, cols.data(), count + 2);
            }
          }
        int bad = 0;
        for (size_t i = 0; i < got.size(); ++i) bad += std::fabs(got[i] - expected[i]) > 1e-5f * (1 + std::fabs(expected[i]));
        CAPTURE(split);
        CAPTURE(column_split);
        CHECK(bad == 0);
      }
  }
}

namespace {

struct Grads {
  Tensor y, dx, dw, db;
};

Grads run(const std::shared_ptr<deja::core::Product>& product, const Tensor& x_in, const Tensor& g_out) {
  deja::layers::Conv2dOptions o;
  o.in_channels = 8, o.out_channels = 16, o.kernel_h = o.kernel_w = 5, o.stride = 1, o.padding = 2;
  Rng init(21, 1);
  deja::layers::Conv2d conv(o, init);
  conv.set_product(product);
  deja::core::ParameterArena arena;
  arena.bind(conv.named_parameters());
  Tensor x = x_in.clone();
  x.set_node(std::make_shared<deja::core::LeafNode>(Tensor::zeros(x.shape())));
  Tensor y = conv.forward(x);
  deja::core::backward(y, g_out);
  return {y.detached().clone(), x.grad().clone(), conv.weight().grad().clone(), conv.bias().grad().clone()};
}

int mismatches(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  int bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += std::fabs(a[i] - b[i]) > 1e-4f * (1 + std::fabs(b[i]));
  return bad;
}

}  // namespace

TEST_CASE("conv2d on the reuse engine: tile-by-tile rows equal the materialised patch matrix") {
  Tensor x = Tensor::empty({3, 8, 12, 12});
  Rng rng(77, 2);
  // Quantised values with zeros (like ReLU outputs): real clusters and a zero key.
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = std::max(0.0f, std::round(rng.normal() * 2.0f) / 2.0f);
  Tensor g = Tensor::empty({3, 16, 12, 12});
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = rng.normal();
  for (const char* dx_mode : {"cluster", "exact"}) {
    for (int64_t l : {25, 30, 7}) {
      deja::reuse::ReuseSettings s;
      s.enabled = true;
      s.hash = "qproj";
      s.L = l;
      s.H = 6;
      s.dx = dx_mode;
      Grads tiles = run(std::make_shared<deja::reuse::ReuseProduct>(s), x, g);
      Grads whole = run(std::make_shared<deja::testing::ForwardingProduct>(std::make_shared<deja::reuse::ReuseProduct>(s)), x, g);
      CAPTURE(std::string(dx_mode));
      CAPTURE(l);
      CHECK(mismatches(tiles.y, whole.y) == 0);
      CHECK(mismatches(tiles.dx, whole.dx) == 0);
      CHECK(mismatches(tiles.dw, whole.dw) == 0);
      CHECK(mismatches(tiles.db, whole.db) == 0);
    }
  }
}
