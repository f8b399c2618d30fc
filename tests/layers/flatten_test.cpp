#include <doctest/doctest.h>

#include <stdexcept>

#include "core/rng.h"
#include "layers/flatten.h"
#include "tests/gradcheck.h"

using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::Flatten;

TEST_CASE("flatten: shape, values and gradient") {
  Flatten flat;
  CHECK(flat.type() == "flatten");
  CHECK(flat.output_shape({4, 3, 2, 5}) == Shape{4, 30});
  CHECK(flat.output_shape({4, 7}) == Shape{4, 7});
  CHECK_THROWS_WITH_AS(flat.output_shape({12}),
                       "flatten: input [12] does not fit: expected [N, ...] with at least 2 "
                       "dimensions",
                       std::invalid_argument);
  deja::core::Rng rng(3);
  Tensor x = Tensor::empty({2, 3, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = rng.normal();
  Tensor y = flat.forward(x);
  CHECK(y.shape() == Shape{2, 12});
  CHECK(y.to_vector() == x.to_vector());
  CHECK(flat.forward_flops({2, 3, 2, 2}) == 0);
  deja::testing::check_gradients([&] { return flat.forward(x); }, {{"x", &x}});
}
