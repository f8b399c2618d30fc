// Embedding: lookup values, scatter-add gradient (finite differences and
// repeated ids), bad ids and options rejected with exact messages.
#include <doctest/doctest.h>

#include <stdexcept>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/embedding.h"
#include "tests/gradcheck.h"

using namespace deja;
using core::Tensor;

TEST_CASE("embedding: looks up rows of the weight") {
  core::Rng init(3, 1);
  layers::Embedding emb({5, 3}, init);
  Tensor ids = Tensor::from({2, 2}, {4, 0, 2, 4});
  Tensor y = emb.forward(ids);
  REQUIRE(y.shape() == core::Shape{2, 2, 3});
  const int rows[4] = {4, 0, 2, 4};
  for (int n = 0; n < 4; ++n)
    for (int d = 0; d < 3; ++d) CHECK(y[n * 3 + d] == emb.weight()[rows[n] * 3 + d]);
  // N(0, 1) init: not all equal, not tiny.
  double sq = 0.0;
  for (int64_t i = 0; i < emb.weight().numel(); ++i) sq += emb.weight()[i] * emb.weight()[i];
  CHECK(sq / emb.weight().numel() > 0.2);
}

TEST_CASE("embedding: gradient scatter-adds, repeated ids accumulate") {
  core::Rng init(4, 1);
  layers::Embedding emb({6, 4}, init);
  Tensor ids = Tensor::from({2, 3}, {1, 5, 1, 0, 1, 3});
  testing::check_gradients([&] { return emb.forward(ids); }, emb.named_parameters());

  core::ParameterArena arena;
  arena.bind(emb.named_parameters());
  Tensor y = emb.forward(ids);
  Tensor g = Tensor::empty(y.shape());
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = static_cast<float>(i);
  core::backward(y, g);
  Tensor dw = emb.weight().grad();
  // id 1 at positions 0, 2, 4: sum of their gradient rows.
  for (int d = 0; d < 4; ++d) CHECK(dw[1 * 4 + d] == static_cast<float>(0 * 4 + d + 2 * 4 + d + 4 * 4 + d));
  for (int d = 0; d < 4; ++d) CHECK(dw[2 * 4 + d] == 0.0f);  // never looked up
}

TEST_CASE("embedding: bad ids and options are rejected") {
  core::Rng init(5, 1);
  layers::Embedding emb({4, 2}, init);
  CHECK_THROWS_WITH_AS(emb.forward(Tensor::from({1, 2}, {1, 4})),
                       "embedding: token id 4.000000 at position 1 is not an integer in [0, 4)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(emb.forward(Tensor::from({1, 1}, {1.5f})),
                       "embedding: token id 1.500000 at position 0 is not an integer in [0, 4)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(emb.forward(Tensor::from({1, 1}, {-1.0f})),
                       "embedding: token id -1.000000 at position 0 is not an integer in [0, 4)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(layers::EmbeddingOptions({0, 3}).validate(),
                       "embedding: num_embeddings must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(layers::EmbeddingOptions({3, 0}).validate(), "embedding: dim must be >= 1, got 0",
                       std::invalid_argument);
}
