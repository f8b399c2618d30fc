#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/linear.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::Linear;
using deja::layers::LinearOptions;

namespace {
Tensor random_tensor(Shape shape, uint64_t seed) {
  Rng rng(seed, 5);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal();
  return t;
}

LinearOptions options(int64_t in, int64_t out, bool bias = true) {
  LinearOptions o;
  o.in_features = in;
  o.out_features = out;
  o.bias = bias;
  return o;
}

std::string validation_message(const LinearOptions& o) {
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("linear: forward matches x . W^T + b over flattened leading dims") {
  Rng init(2, 1);
  Linear fc(options(4, 3), init);
  Tensor x = random_tensor({2, 5, 4}, 3);
  Tensor y = fc.forward(x);
  REQUIRE(y.shape() == Shape{2, 5, 3});
  for (int64_t r = 0; r < 10; ++r)
    for (int64_t m = 0; m < 3; ++m) {
      double s = fc.bias()[m];
      for (int64_t k = 0; k < 4; ++k) s += static_cast<double>(x[r * 4 + k]) * fc.weight()[m * 4 + k];
      CHECK(y[r * 3 + m] == doctest::Approx(s).epsilon(1e-5));
    }
}

TEST_CASE("linear: gradients w.r.t. input, weight and bias") {
  Rng init(3, 1);
  Linear fc(options(6, 5), init);
  Tensor x = random_tensor({2, 3, 6}, 4);
  deja::testing::check_gradients([&] { return fc.forward(x); },
                                 {{"x", &x}, {"weight", &fc.weight()}, {"bias", &fc.bias()}});
}

TEST_CASE("linear: gradients without bias, input needing no gradient") {
  Rng init(4, 1);
  Linear fc(options(7, 2, false), init);
  Tensor x = random_tensor({9, 7}, 5);
  CHECK_FALSE(fc.bias().defined());
  deja::testing::check_gradients([&] { return fc.forward(x); }, {{"weight", &fc.weight()}});
}

TEST_CASE("linear: input gradient accumulates when the input feeds two layers") {
  Rng init(5, 1);
  Linear a(options(3, 2), init), b(options(3, 4), init);
  Tensor x = random_tensor({2, 3}, 6);
  deja::core::ParameterArena arena;
  arena.bind({{"x", &x}});
  Tensor ya = a.forward(x), yb = b.forward(x);
  Tensor ga = Tensor::full(ya.shape(), 1.0f), gb = Tensor::full(yb.shape(), 1.0f);
  deja::core::backward(ya, ga);
  deja::core::backward(yb, gb);
  // d/dx of sum(ya) + sum(yb) = column sums of Wa plus column sums of Wb.
  for (int64_t k = 0; k < 3; ++k) {
    double expected = 0.0;
    for (int64_t m = 0; m < 2; ++m) expected += a.weight()[m * 3 + k];
    for (int64_t m = 0; m < 4; ++m) expected += b.weight()[m * 3 + k];
    CHECK(x.grad()[k] == doctest::Approx(expected).epsilon(1e-5));
    CHECK(x.grad()[3 + k] == doctest::Approx(expected).epsilon(1e-5));
  }
}

TEST_CASE("linear: validation, shapes, flops, init") {
  CHECK(validation_message(options(0, 3)) == "linear: in_features must be >= 1, got 0");
  CHECK(validation_message(options(3, -1)) == "linear: out_features must be >= 1, got -1");
  CHECK(validation_message(options(3, 1)).empty());
  Rng init(1);
  CHECK_THROWS_WITH_AS(Linear(options(0, 3), init), "linear: in_features must be >= 1, got 0",
                       std::invalid_argument);
  Linear fc(options(100, 10), init);
  CHECK(fc.type() == "linear");
  CHECK(fc.output_shape({8, 100}) == Shape{8, 10});
  CHECK(fc.output_shape({4, 8, 100}) == Shape{4, 8, 10});
  CHECK_THROWS_WITH_AS(fc.output_shape({8, 99}),
                       "linear: input [8, 99] does not fit: expected [..., 100]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(fc.output_shape({}), "linear: input [] does not fit: expected [..., 100]",
                       std::invalid_argument);
  CHECK(fc.forward_flops({8, 100}) == 2LL * 8 * 100 * 10);
  CHECK(fc.weight().shape() == Shape{10, 100});
  float max_abs = 0.0f;
  for (int64_t i = 0; i < fc.weight().numel(); ++i)
    max_abs = std::max(max_abs, std::fabs(fc.weight()[i]));
  CHECK(max_abs <= 0.1f);
  CHECK(max_abs > 0.09f);
  CHECK(fc.product() != nullptr);
  CHECK_THROWS_WITH_AS(fc.set_product(nullptr), "linear: set_product needs a product, got null",
                       std::invalid_argument);
}
