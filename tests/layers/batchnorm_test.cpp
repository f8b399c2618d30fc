#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/batchnorm.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::BatchNorm;
using deja::layers::BatchNormOptions;

namespace {

BatchNormOptions bn(int64_t c, double eps = 1e-5, double momentum = 0.1) {
  BatchNormOptions o;
  o.num_features = c;
  o.eps = eps;
  o.momentum = momentum;
  return o;
}

Tensor random_tensor(Shape shape, uint64_t seed) {
  Rng rng(seed, 17);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal(1.5f, 2.0f);
  return t;
}

}  // namespace

TEST_CASE("batchnorm1d train: batch statistics, running stats after one step") {
  BatchNorm layer(bn(2), false);
  CHECK(layer.type() == "batchnorm1d");
  // Column 0: 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3);
  // column 1: 4, 4, 4, 8 (mean 5, biased var 3, unbiased 4).
  Tensor x = Tensor::from({4, 2}, {1, 4, 2, 4, 3, 4, 6, 8});
  layer.weight()[0] = 2.0f;
  layer.bias()[1] = -1.0f;
  Tensor y = layer.forward(x);
  const double s0 = std::sqrt(3.5 + 1e-5), s1 = std::sqrt(3.0 + 1e-5);
  CHECK(y[0] == doctest::Approx(2.0 * (1 - 3) / s0));
  CHECK(y[6] == doctest::Approx(2.0 * (6 - 3) / s0));
  CHECK(y[1] == doctest::Approx((4 - 5) / s1 - 1.0));
  CHECK(y[7] == doctest::Approx((8 - 5) / s1 - 1.0));
  CHECK(layer.running_mean()[0] == doctest::Approx(0.1 * 3));
  CHECK(layer.running_mean()[1] == doctest::Approx(0.1 * 5));
  CHECK(layer.running_var()[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3));
  CHECK(layer.running_var()[1] == doctest::Approx(0.9 + 0.1 * 4.0));

  // Eval normalises with the running statistics.
  layer.eval();
  Tensor e = layer.forward(x);
  const double rm0 = 0.3, rv0 = 0.9 + 0.1 * 14.0 / 3;
  CHECK(e[2] == doctest::Approx(2.0 * (2 - rm0) / std::sqrt(rv0 + 1e-5)));
  CHECK(layer.running_mean()[0] == doctest::Approx(0.3));  // eval leaves the stats alone
}

TEST_CASE("batchnorm2d forward matches a naive loop in train and eval") {
  BatchNorm layer(bn(3, 1e-3, 0.25), true);
  CHECK(layer.type() == "batchnorm2d");
  Tensor x = random_tensor({4, 3, 5, 6}, 1);
  for (int64_t c = 0; c < 3; ++c) {
    layer.weight()[c] = 0.5f + static_cast<float>(c);
    layer.bias()[c] = -0.3f * static_cast<float>(c);
  }
  Tensor y = layer.forward(x);
  for (int64_t c = 0; c < 3; ++c) {
    double sum = 0.0, sq = 0.0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t p = 0; p < 30; ++p) sum += x[(n * 3 + c) * 30 + p];
    const double mean = sum / 120;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t p = 0; p < 30; ++p) sq += std::pow(x[(n * 3 + c) * 30 + p] - mean, 2);
    const double var = sq / 120;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t p = 0; p < 30; ++p) {
        const int64_t i = (n * 3 + c) * 30 + p;
        REQUIRE(y[i] == doctest::Approx((x[i] - mean) / std::sqrt(var + 1e-3) * layer.weight()[c] +
                                        layer.bias()[c]).epsilon(1e-4));
      }
    CHECK(layer.running_mean()[c] == doctest::Approx(0.25 * mean).epsilon(1e-5));
    CHECK(layer.running_var()[c] == doctest::Approx(0.75 + 0.25 * sq / 119).epsilon(1e-5));
  }
  layer.eval();
  Tensor e = layer.forward(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / 30) % 3;
    REQUIRE(e[i] == doctest::Approx((x[i] - layer.running_mean()[c]) / std::sqrt(layer.running_var()[c] + 1e-3) *
                                        layer.weight()[c] + layer.bias()[c]).epsilon(1e-4));
  }
}

TEST_CASE("batchnorm gradients match finite differences (train and eval, 1d and 2d)") {
  for (bool spatial : {true, false}) {
    for (bool training : {true, false}) {
      INFO("spatial ", spatial, " training ", training);
      BatchNorm layer(bn(3), spatial);
      Tensor x = spatial ? random_tensor({3, 3, 2, 3}, 2) : random_tensor({5, 3}, 3);
      Rng rng(4, 1);
      for (int64_t c = 0; c < 3; ++c) {
        layer.weight()[c] = rng.uniform(0.5f, 1.5f);
        layer.bias()[c] = rng.normal();
        layer.running_mean()[c] = rng.normal();
        layer.running_var()[c] = rng.uniform(0.5f, 2.0f);
      }
      // Gradients of eval mode depend on the running stats; keep them fixed by
      // putting the layer in eval before the check (train mode updates them,
      // which does not change its output).
      layer.train(training);
      deja::testing::GradCheckOptions opt;
      opt.eps = 5e-3f;
      deja::testing::check_gradients([&] { return layer.forward(x); },
                                     {{"x", &x}, {"weight", &layer.weight()}, {"bias", &layer.bias()}}, opt);
    }
  }
}

TEST_CASE("batchnorm options and shapes are validated") {
  CHECK_THROWS_WITH_AS(BatchNorm(bn(0), true), "batchnorm: num_features must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(BatchNorm(bn(4, 0.0), true), "batchnorm: eps must be > 0, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(BatchNorm(bn(4, 1e-5, 1.5), false), "batchnorm: momentum must be in [0, 1], got 1.5",
                       std::invalid_argument);
  BatchNorm b2(bn(4), true), b1(bn(4), false);
  CHECK(b2.named_parameters().size() == 2);
  CHECK(b2.named_buffers()[1].name == "running_var");
  CHECK(b2.output_shape({2, 4, 3, 3}) == Shape{2, 4, 3, 3});
  CHECK(b1.output_shape({2, 4, 7}) == Shape{2, 4, 7});
  CHECK_THROWS_WITH_AS(b2.output_shape({2, 5, 3, 3}), "batchnorm2d: expected input [N, 4, H, W], got [2, 5, 3, 3]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(b1.output_shape({2, 4, 3, 3}),
                       "batchnorm1d: expected input [N, 4] or [N, 4, L], got [2, 4, 3, 3]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(b1.forward(Tensor::zeros({1, 4})),
                       "batchnorm1d: expected more than 1 value per channel when training, got input [1, 4]",
                       std::invalid_argument);
}
