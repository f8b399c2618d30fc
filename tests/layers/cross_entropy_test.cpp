#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/cross_entropy.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Tensor;
using deja::layers::softmax_cross_entropy;

TEST_CASE("cross entropy value, accuracy count and stability") {
  Tensor logits = Tensor::from({2, 3}, {1.0f, 2.0f, 3.0f, 0.5f, 0.5f, -1.0f});
  int64_t correct = -1;
  Tensor loss = softmax_cross_entropy(logits, {2, 1}, &correct);
  // Row 0: -log(e^3 / (e^1 + e^2 + e^3)); row 1: -log(e^.5 / (2 e^.5 + e^-1)).
  const double r0 = -std::log(std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)));
  const double r1 = -std::log(std::exp(0.5) / (2 * std::exp(0.5) + std::exp(-1.0)));
  CHECK(loss.numel() == 1);
  CHECK(loss[0] == doctest::Approx((r0 + r1) / 2).epsilon(1e-6));
  // Row 1 ties between classes 0 and 1: the first maximum (0) is the prediction.
  CHECK(correct == 1);
  // Huge logits do not overflow (max-shifted log-sum-exp).
  Tensor big = Tensor::from({1, 2}, {1000.0f, 0.0f});
  CHECK(softmax_cross_entropy(big, {1})[0] == doctest::Approx(1000.0f));
  CHECK(softmax_cross_entropy(big, {0})[0] == doctest::Approx(0.0f));
}

TEST_CASE("cross entropy gradient matches finite differences and (p - onehot)/N") {
  Rng rng(3, 1);
  Tensor logits = Tensor::empty({4, 5});
  for (int64_t i = 0; i < logits.numel(); ++i) logits[i] = rng.normal(0.0f, 2.0f);
  const std::vector<int32_t> labels{0, 4, 2, 2};
  deja::testing::check_gradients([&] { return softmax_cross_entropy(logits, labels); }, {{"logits", &logits}});

  // Plain backward (gradient 1): row sums are zero, label entries negative.
  deja::core::ParameterArena arena;
  Tensor l2 = Tensor::from({1, 3}, {0.0f, 0.0f, 0.0f});
  arena.bind({{"l2", &l2}});
  deja::core::backward(softmax_cross_entropy(l2, {1}));
  CHECK(l2.grad()[0] == doctest::Approx(1.0 / 3));
  CHECK(l2.grad()[1] == doctest::Approx(1.0 / 3 - 1));
}

TEST_CASE("cross entropy rejects bad labels and shapes with exact messages") {
  Tensor logits = Tensor::zeros({4, 5});
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(logits, {0, 1, 2, 7}),
                       "cross_entropy: label 7 of row 3 is out of range [0, 5)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(logits, {0, -1, 2, 3}),
                       "cross_entropy: label -1 of row 1 is out of range [0, 5)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(logits, {0, 1}),
                       "cross_entropy: 2 labels for logits [4, 5]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(Tensor::zeros({2, 3, 4}), {0, 1}),
                       "cross_entropy: logits must be [N, C] with N, C >= 1, got [2, 3, 4]",
                       std::invalid_argument);
}
