#include <doctest/doctest.h>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/relu.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;

namespace {
// Values kept away from 0 so the finite differences never straddle the kink.
Tensor away_from_zero(Shape shape, uint64_t seed) {
  Rng rng(seed, 11);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = rng.uniform(0.1f, 2.0f);
    t[i] = rng.uniform() < 0.5f ? -v : v;
  }
  return t;
}
}  // namespace

TEST_CASE("relu forward clamps negatives and keeps the shape") {
  deja::layers::ReLU relu;
  CHECK(relu.type() == "relu");
  Tensor x = Tensor::from({2, 3}, {-1.5f, 0.0f, 2.0f, 3.0f, -0.25f, 0.5f});
  Tensor y = relu.forward(x);
  CHECK(y.shape() == Shape{2, 3});
  CHECK(y.to_vector() == std::vector<float>{0.0f, 0.0f, 2.0f, 3.0f, 0.0f, 0.5f});
  CHECK(relu.output_shape({4, 5, 6}) == Shape{4, 5, 6});
  // Large tensor: exercises the parallel chunks.
  Tensor big = away_from_zero({3, 50000}, 2);
  Tensor out = deja::layers::relu(big);
  for (int64_t i = 0; i < big.numel(); ++i) REQUIRE(out[i] == (big[i] > 0 ? big[i] : 0.0f));
}

TEST_CASE("relu gradient matches finite differences") {
  Tensor x = away_from_zero({3, 4, 5}, 1);
  deja::testing::check_gradients([&] { return deja::layers::relu(x); }, {{"x", &x}});
}

TEST_CASE("relu backward accumulates when its input feeds two consumers") {
  Tensor x = Tensor::from({4}, {-1.0f, 2.0f, 3.0f, -4.0f});
  deja::core::ParameterArena arena;
  arena.bind({{"x", &x}});
  Tensor a = deja::layers::relu(x);
  Tensor b = deja::layers::relu(x);
  deja::core::backward(a, Tensor::full({4}, 1.0f));
  deja::core::backward(b, Tensor::full({4}, 2.0f));
  CHECK(x.grad().to_vector() == std::vector<float>{0.0f, 3.0f, 3.0f, 0.0f});
}
