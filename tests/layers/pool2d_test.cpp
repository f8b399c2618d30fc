#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/pool2d.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::AvgPool2d;
using deja::layers::MaxPool2d;
using deja::layers::Pool2dOptions;

namespace {

Pool2dOptions pool(int64_t k, int64_t s, int64_t p, bool ceil = false) {
  Pool2dOptions o;
  o.kernel = k;
  o.stride = s;
  o.padding = p;
  o.ceil_mode = ceil;
  return o;
}

// Distinct values (a shuffled ramp, spaced 0.1 apart) so maxima have no ties
// and a finite-difference step of 0.01 never changes the argmax.
Tensor distinct(Shape shape, uint64_t seed) {
  Tensor t = Tensor::empty(std::move(shape));
  std::vector<int64_t> order(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) order[i] = i;
  Rng rng(seed, 7);
  for (int64_t i = t.numel() - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint32_t>(i + 1))]);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = 0.1f * static_cast<float>(order[i]) - 3.0f;
  return t;
}

// Naive pooling straight from the definition (PyTorch): output size with the
// ceil_mode rule, -inf padding for max, count_include_pad divisor for average.
Tensor naive_pool(const Tensor& x, const Pool2dOptions& o, bool max) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t s = o.stride ? o.stride : o.kernel;
  auto out_size = [&](int64_t in) {
    const double v = static_cast<double>(in + 2 * o.padding - o.kernel) / s;
    int64_t r = static_cast<int64_t>(o.ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
    if (o.ceil_mode && (r - 1) * s >= in + o.padding) --r;
    return r;
  };
  const int64_t oh = out_size(h), ow = out_size(w);
  Tensor y = Tensor::empty({n, c, oh, ow});
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t r0 = i * s - o.padding, c0 = j * s - o.padding;
        const int64_t r1 = std::min(r0 + o.kernel, h + o.padding), c1 = std::min(c0 + o.kernel, w + o.padding);
        float best = -std::numeric_limits<float>::infinity();
        double sum = 0.0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t q = c0; q < c1; ++q) {
            if (r < 0 || r >= h || q < 0 || q >= w) continue;
            const float v = x[(pl * h + r) * w + q];
            best = std::max(best, v);
            sum += v;
          }
        y[(pl * oh + i) * ow + j] = max ? best : static_cast<float>(sum / ((r1 - r0) * (c1 - c0)));
      }
  return y;
}

void check_against_naive(const Tensor& x, const Pool2dOptions& o) {
  INFO("kernel ", o.kernel, " stride ", o.stride, " padding ", o.padding, " ceil ", o.ceil_mode);
  for (bool max : {true, false}) {
    Tensor want = naive_pool(x, o, max);
    Tensor got = max ? deja::layers::max_pool2d(x, o) : deja::layers::avg_pool2d(x, o);
    REQUIRE(got.shape() == want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) REQUIRE(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("pooling hand values") {
  Tensor x = Tensor::empty({1, 1, 4, 4});
  for (int64_t i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
  MaxPool2d mp(pool(3, 2, 1));
  CHECK(mp.type() == "maxpool2d");
  CHECK(mp.forward(x).to_vector() == std::vector<float>{6, 8, 14, 16});

  // PyTorch: avg_pool2d(arange(1, 10).view(1, 1, 3, 3), 2, 2, ceil_mode=True)
  // divides the overhanging windows by their valid size only.
  Tensor x3 = Tensor::empty({1, 1, 3, 3});
  for (int64_t i = 0; i < 9; ++i) x3[i] = static_cast<float>(i + 1);
  AvgPool2d ap(pool(2, 2, 0, true));
  CHECK(ap.type() == "avgpool2d");
  CHECK(ap.forward(x3).to_vector() == std::vector<float>{3.0f, 4.5f, 7.5f, 9.0f});
  // count_include_pad: a corner window of 3x3 ones with padding 1 is 4/9.
  Tensor ones = Tensor::full({1, 1, 3, 3}, 1.0f);
  Tensor a = deja::layers::avg_pool2d(ones, pool(3, 2, 1));
  CHECK(a.shape() == Shape{1, 1, 2, 2});
  CHECK(a[0] == doctest::Approx(4.0 / 9));
}

TEST_CASE("pooling matches naive loops over many geometries") {
  Tensor x = distinct({2, 3, 9, 8}, 1);
  check_against_naive(x, pool(2, 0, 0));
  check_against_naive(x, pool(3, 2, 1));
  check_against_naive(x, pool(3, 2, 1, true));
  check_against_naive(x, pool(3, 2, 0, true));
  check_against_naive(x, pool(3, 1, 1));
  check_against_naive(x, pool(4, 3, 2, true));
  check_against_naive(x, pool(5, 3, 0));
  check_against_naive(x, pool(1, 1, 0));
  // All-negative input: padding (-inf for max) must never win.
  Tensor neg = Tensor::full({1, 2, 5, 5}, -7.0f);
  check_against_naive(neg, pool(3, 2, 1, true));
  // Larger planes go through several threads.
  check_against_naive(distinct({4, 8, 16, 16}, 2), pool(3, 2, 1));
}

TEST_CASE("pooling gradients match finite differences") {
  Tensor x = distinct({2, 2, 7, 6}, 3);
  deja::testing::check_gradients([&] { return deja::layers::max_pool2d(x, pool(3, 2, 1, true)); }, {{"x", &x}});
  deja::testing::check_gradients([&] { return deja::layers::max_pool2d(x, pool(2, 0, 0)); }, {{"x", &x}});
  deja::testing::check_gradients([&] { return deja::layers::avg_pool2d(x, pool(3, 2, 1, true)); }, {{"x", &x}});
  deja::testing::check_gradients([&] { return deja::layers::avg_pool2d(x, pool(4, 3, 2, true)); }, {{"x", &x}});
  deja::testing::check_gradients([&] { return deja::layers::avg_pool2d(x, pool(3, 1, 1)); }, {{"x", &x}});
}

TEST_CASE("overlapping max windows route the gradient to each window's maximum") {
  // 1x1x3x3 with the maximum in the centre: every 2x2 stride-1 window picks it.
  Tensor x = Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 9, 5, 6, 7, 8});
  deja::core::ParameterArena arena;
  arena.bind({{"x", &x}});
  Tensor y = deja::layers::max_pool2d(x, pool(2, 1, 0));
  deja::core::backward(y, Tensor::from({1, 1, 2, 2}, {1, 2, 3, 4}));
  CHECK(x.grad().to_vector() == std::vector<float>{0, 0, 0, 0, 10, 0, 0, 0, 0});
}

TEST_CASE("pooling options and shapes are validated") {
  CHECK_THROWS_WITH_AS(MaxPool2d(pool(3, 2, 3)), "maxpool2d: padding must be <= kernel/2, got 3",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AvgPool2d(pool(2, 2, 2)), "avgpool2d: padding must be <= kernel/2, got 2",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(MaxPool2d(pool(0, 1, 0)), "maxpool2d: kernel must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(MaxPool2d(pool(2, -1, 0)), "maxpool2d: stride must be >= 1 (or 0 for = kernel), got -1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AvgPool2d(pool(2, 1, -1)), "avgpool2d: padding must be >= 0, got -1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(pool(3, 2, 2).validate(), "pool2d: padding must be <= kernel/2, got 2",
                       std::invalid_argument);

  MaxPool2d mp(pool(3, 2, 1));
  CHECK(mp.output_shape({128, 64, 32, 32}) == Shape{128, 64, 16, 16});
  CHECK(mp.forward_flops({1, 1, 4, 4}) == 4 * 9);
  CHECK(MaxPool2d(pool(3, 2, 0, true)).output_shape({1, 1, 6, 6}) == Shape{1, 1, 3, 3});
  CHECK(MaxPool2d(pool(3, 2, 0)).output_shape({1, 1, 6, 6}) == Shape{1, 1, 2, 2});
  CHECK_THROWS_WITH_AS(MaxPool2d(pool(5, 1, 0)).output_shape({1, 3, 4, 4}),
                       "maxpool2d: input [1, 3, 4, 4] is too small for kernel 5 (stride 1, padding 0): "
                       "output would be [1, 3, 0, 0]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AvgPool2d(pool(2, 0, 0)).output_shape({3, 4}),
                       "avgpool2d: expected input [N, C, H, W], got [3, 4]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(deja::layers::max_pool2d(Tensor::zeros({1, 1, 2, 9}), pool(3, 1, 0)),
                       "maxpool2d: input [1, 1, 2, 9] is too small for kernel 3 (stride 1, padding 0): "
                       "output would be [1, 1, 0, 7]",
                       std::invalid_argument);
}
