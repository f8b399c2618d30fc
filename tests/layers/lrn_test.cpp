#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/lrn.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::LRN;
using deja::layers::LrnOptions;

namespace {

LrnOptions lrn(int64_t size, double alpha, double beta, double k) {
  LrnOptions o;
  o.size = size;
  o.alpha = alpha;
  o.beta = beta;
  o.k = k;
  return o;
}

Tensor random_tensor(Shape shape, uint64_t seed, float stddev = 1.0f) {
  Rng rng(seed, 13);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal(0.0f, stddev);
  return t;
}

// PyTorch's LocalResponseNorm, written out per element in double:
// zero-pad the squares by size/2 before and (size-1)/2 after the channel axis,
// average over `size` channels, then b = a / (k + alpha * avg)^beta.
Tensor naive_lrn(const Tensor& x, const LrnOptions& o) {
  const int64_t n = x.size(0), c = x.size(1), p = x.numel() / (n * c);
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t q = 0; q < p; ++q) {
        double sum = 0.0;
        for (int64_t d = ch - o.size / 2; d <= ch + (o.size - 1) / 2; ++d)
          if (d >= 0 && d < c) {
            const double v = x[(i * c + d) * p + q];
            sum += v * v;
          }
        const double div = std::pow(o.k + o.alpha * sum / static_cast<double>(o.size), o.beta);
        y[(i * c + ch) * p + q] = static_cast<float>(x[(i * c + ch) * p + q] / div);
      }
  return y;
}

void check_against_naive(const Tensor& x, const LrnOptions& o) {
  INFO("size ", o.size, " alpha ", o.alpha, " beta ", o.beta, " k ", o.k);
  Tensor want = naive_lrn(x, o);
  Tensor got = deja::layers::local_response_norm(x, o);
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) REQUIRE(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

}  // namespace

TEST_CASE("lrn hand value") {
  // One pixel, two channels, size 2: window(0) = [-1, 0], window(1) = [0, 1].
  Tensor x = Tensor::from({1, 2, 1}, {1.0f, 2.0f});
  Tensor y = LRN(lrn(2, 2.0, 0.5, 1.0)).forward(x);
  CHECK(y[0] == doctest::Approx(1.0 / std::sqrt(1.0 + 1.0 * 1.0)));
  CHECK(y[1] == doctest::Approx(2.0 / std::sqrt(1.0 + 1.0 * 5.0)));
}

TEST_CASE("lrn forward matches PyTorch's definition") {
  // CifarNet's setting, several strips per image (pixels > 256, not a multiple).
  check_against_naive(random_tensor({2, 16, 17, 19}, 1, 3.0f), lrn(9, 1e-3, 0.75, 1.0));
  Tensor x = random_tensor({3, 7, 5}, 2, 2.0f);
  check_against_naive(x, lrn(5, 1e-4, 0.75, 1.0));
  check_against_naive(x, lrn(4, 0.5, 0.75, 2.0));   // even size: asymmetric window
  check_against_naive(x, lrn(3, 0.3, 0.5, 1.0));
  check_against_naive(x, lrn(2, 0.3, 1.0, 1.5));
  check_against_naive(x, lrn(6, 0.7, 0.6, 0.5));    // general beta (std::pow path)
  check_against_naive(x, lrn(1, 0.2, 0.75, 1.0));
  check_against_naive(x, lrn(15, 0.4, 0.75, 1.0));  // window wider than the channels
}

TEST_CASE("lrn gradient matches finite differences") {
  // Large alpha so the cross-channel term carries real weight in the gradient.
  Tensor x = random_tensor({2, 7, 3, 2}, 3);
  for (const LrnOptions& o : {lrn(5, 1.0, 0.75, 1.0), lrn(4, 0.8, 0.75, 2.0), lrn(3, 0.5, 0.6, 1.0),
                              lrn(2, 0.9, 0.5, 1.0), lrn(9, 1.0, 1.0, 1.0)}) {
    INFO("size ", o.size, " beta ", o.beta);
    deja::testing::check_gradients([&] { return deja::layers::local_response_norm(x, o); }, {{"x", &x}});
  }
  // Several strips per image.
  Tensor wide = random_tensor({1, 4, 300}, 4);
  deja::testing::check_gradients([&] { return deja::layers::local_response_norm(wide, lrn(3, 1.0, 0.75, 1.0)); },
                                 {{"wide", &wide}});
}

TEST_CASE("lrn options and shapes are validated") {
  CHECK_THROWS_WITH_AS(LRN(lrn(0, 1e-4, 0.75, 1.0)), "lrn: size must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(LRN(lrn(5, -1.0, 0.75, 1.0)), "lrn: alpha must be >= 0, got -1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(LRN(lrn(5, 1e-4, -0.5, 1.0)), "lrn: beta must be >= 0, got -0.5", std::invalid_argument);
  CHECK_THROWS_WITH_AS(LRN(lrn(5, 1e-4, 0.75, 0.0)), "lrn: k must be > 0, got 0", std::invalid_argument);
  LRN layer(lrn(9, 1e-3, 0.75, 1.0));
  CHECK(layer.type() == "lrn");
  CHECK(layer.output_shape({2, 64, 8, 8}) == Shape{2, 64, 8, 8});
  CHECK_THROWS_WITH_AS(layer.output_shape({2, 64}),
                       "lrn: expected input [N, C, ...] with at least 3 dims, got [2, 64]", std::invalid_argument);
}
