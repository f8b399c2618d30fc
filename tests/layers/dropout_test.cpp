#include <doctest/doctest.h>

#include <stdexcept>

#include "core/autograd.h"
#include "core/rng.h"
#include "layers/dropout.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Tensor;
using deja::layers::Dropout;
using deja::layers::DropoutOptions;

TEST_CASE("dropout is the identity in eval and inverted-scaled in train") {
  Dropout drop(DropoutOptions{0.3}, deja::core::make_rng(7, deja::core::RngPurpose::Dropout));
  CHECK(drop.type() == "dropout");
  Tensor x = Tensor::empty({200, 500});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = 1.0f + static_cast<float>(i % 13);
  drop.eval();
  Tensor same = drop.forward(x);
  CHECK(same.data() == x.data());

  drop.train();
  Tensor y = drop.forward(x);
  int64_t zeros = 0;
  bool scaled = true;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (y[i] == 0.0f)
      ++zeros;
    else if (std::abs(y[i] - x[i] / 0.7f) > 1e-5f * x[i])
      scaled = false;
  }
  CHECK(scaled);
  // 100000 Bernoulli(0.3) draws: standard deviation ~145, allow 5 sigma.
  CHECK(std::abs(static_cast<double>(zeros) - 30000.0) < 725.0);
  // The stream moves on: the next mask differs.
  Tensor y2 = drop.forward(x);
  int64_t differ = 0;
  for (int64_t i = 0; i < x.numel(); ++i) differ += (y[i] == 0.0f) != (y2[i] == 0.0f);
  CHECK(differ > 1000);
}

TEST_CASE("dropout is reproducible from the rng state") {
  Tensor x = Tensor::full({1000}, 2.0f);
  Rng a(5, 3), b(5, 3);
  Tensor ya = deja::layers::dropout(x, 0.5, a);
  Tensor yb = deja::layers::dropout(x, 0.5, b);
  CHECK(ya.to_vector() == yb.to_vector());
  CHECK(a.state().state == b.state().state);
}

TEST_CASE("dropout gradient with a fixed mask matches finite differences") {
  Rng init(2, 1);
  Tensor x = Tensor::empty({6, 7});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = init.normal();
  deja::testing::check_gradients(
      [&] {
        Rng rng(11, 3);  // re-seeded each call: the same mask every time
        return deja::layers::dropout(x, 0.4, rng);
      },
      {{"x", &x}});
}

TEST_CASE("dropout options are validated") {
  CHECK_THROWS_WITH_AS(DropoutOptions{1.0}.validate(), "dropout: p must be in [0, 1), got 1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(DropoutOptions{-0.5}.validate(), "dropout: p must be in [0, 1), got -0.5",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Dropout(DropoutOptions{1.5}, Rng()), "dropout: p must be in [0, 1), got 1.5",
                       std::invalid_argument);
}
