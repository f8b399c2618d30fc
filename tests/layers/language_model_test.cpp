// Language model: shapes and row order, tied weights registered once and
// trained by both uses, gradient checks of the whole model, config reading, and
// a tiny character model that learns a repeating pattern to near-zero loss with
// state carried across truncated-BPTT windows.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/json_util.h"
#include "core/optimizer.h"
#include "core/parameters.h"
#include "layers/cross_entropy.h"
#include "layers/dropout.h"
#include "layers/language_model.h"
#include "tests/gradcheck.h"

using namespace deja;
using core::Tensor;

TEST_CASE("language model: logits [B*T, vocab] in row order b*T + t") {
  layers::LanguageModel lm({11, 6, 5, 2, 0.0, false}, 3);
  lm.eval();
  Tensor ids = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = lm.forward(ids);
  REQUIRE(y.shape() == core::Shape{6, 11});
  CHECK(lm.output_shape({2, 3}) == core::Shape{6, 11});
  // Row b*T + t depends only on batch row b: running batch row 1 alone (fresh
  // state) gives rows 3..5.
  lm.reset_state();
  Tensor y1 = lm.forward(Tensor::from({1, 3}, {4, 5, 6}));
  for (int64_t i = 0; i < y1.numel(); ++i) CHECK(y1[i] == doctest::Approx(y[3 * 11 + i]).epsilon(1e-5));
  auto names = lm.named_parameters();
  std::vector<std::string> got;
  for (auto& p : names) got.push_back(p.name);
  CHECK(got == std::vector<std::string>{"encoder.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                        "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.weight_ih_l1",
                                        "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
                                        "decoder.weight", "decoder.bias"});
}

TEST_CASE("language model: tied weights are registered once and get both gradients") {
  layers::LanguageModel lm({7, 4, 4, 1, 0.0, true}, 5);
  std::vector<std::string> got;
  for (auto& p : lm.named_parameters()) got.push_back(p.name);
  CHECK(got == std::vector<std::string>{"encoder.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                        "rnn.bias_ih_l0", "rnn.bias_hh_l0", "decoder.bias"});
  lm.eval();
  Tensor ids = Tensor::from({2, 3}, {0, 1, 2, 3, 1, 0});
  testing::check_gradients(
      [&] {
        lm.reset_state();
        return lm.forward(ids);
      },
      lm.named_parameters());
  // Token 6 is never an input, yet its (tied) row gets a gradient from the decoder.
  core::ParameterArena arena;
  arena.bind(lm.named_parameters());
  lm.reset_state();
  core::backward(lm.forward(ids), Tensor::full({6, 7}, 0.5f));
  Tensor dw = lm.embedding().weight().grad();
  double row6 = 0.0;
  for (int d = 0; d < 4; ++d) row6 += std::fabs(dw[6 * 4 + d]);
  CHECK(row6 > 0.0);
}

TEST_CASE("language model: gradients of the untied model with dropout") {
  layers::LanguageModel lm({6, 3, 4, 2, 0.3, false}, 6);
  lm.train();
  Tensor ids = Tensor::from({2, 3}, {0, 5, 2, 3, 1, 4});
  // The model's three dropout streams are rewound every call: the same masks.
  std::vector<core::Rng::State> states;
  auto rngs = [&] {
    std::vector<core::Rng*> r{&lm.lstm().dropout_rng()};
    for (auto& [name, m] : lm.named_modules())
      if (m->type() == "dropout") r.push_back(&static_cast<layers::Dropout*>(m)->rng());
    return r;
  };
  for (core::Rng* r : rngs()) states.push_back(r->state());
  REQUIRE(states.size() == 3);
  testing::check_gradients(
      [&] {
        auto r = rngs();
        for (size_t i = 0; i < r.size(); ++i) r[i]->set_state(states[i]);
        lm.reset_state();
        return lm.forward(ids);
      },
      lm.named_parameters());
}

TEST_CASE("language model: config reading") {
  auto j = core::parse_json_text(
      R"({"type": "language_model", "embedding": 8, "hidden": 8, "layers": 1, "dropout": 0.5,
          "tie_weights": true, "reuse": {"enabled": true}})",
      "test");
  layers::LanguageModelOptions o = layers::language_model_options_from_json(j, 50);
  CHECK(o.vocab == 50);
  CHECK(o.embedding == 8);
  CHECK(o.layers == 1);
  CHECK(o.dropout == 0.5);
  CHECK(o.tie_weights);
  auto defaults = layers::language_model_options_from_json(core::parse_json_text("{}", "t"), 9);
  CHECK(defaults.hidden == 200);
  CHECK_THROWS_WITH_AS(
      layers::language_model_options_from_json(core::parse_json_text(R"({"hiden": 3})", "t"), 9),
      "model: unknown key 'hiden' (did you mean 'hidden'?)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      layers::language_model_options_from_json(
          core::parse_json_text(R"({"embedding": 8, "hidden": 6, "tie_weights": true})", "t"), 9),
      "model: language_model: tie_weights needs embedding == hidden, got 8 and 6",
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      layers::language_model_options_from_json(core::parse_json_text(R"({"type": "lstm"})", "t"), 9),
      "model: key 'type' must be \"language_model\", got \"lstm\"", std::invalid_argument);
  CHECK_THROWS_WITH_AS(layers::LanguageModelOptions({0, 4, 4, 1, 0.0, false}).validate(),
                       "language_model: vocab must be >= 1, got 0", std::invalid_argument);
}

TEST_CASE("language model: a tiny character model learns a repeating pattern") {
  // Period 6 "0 1 0 2 0 3": what follows a 0 depends on the token before it,
  // so the state must carry information across steps (and across windows).
  const std::vector<int> period{0, 1, 0, 2, 0, 3};
  const int64_t B = 2, T = 9, vocab = 4;
  layers::LanguageModel lm({vocab, 8, 16, 1, 0.0, false}, 7);
  lm.train();
  core::ParameterArena arena;
  arena.bind(lm.named_parameters());
  auto adam = core::make_adam({0.02, 0.9, 0.999, 1e-8, 0.0, false}, arena.size());
  auto token = [&](int64_t b, int64_t pos) { return period[static_cast<size_t>((pos + b * 2) % 6)]; };
  double loss_value = 0.0, first_loss = 0.0;
  int64_t pos = 0;
  for (int step = 0; step < 400; ++step) {
    Tensor ids = Tensor::empty({B, T});
    std::vector<int32_t> labels(static_cast<size_t>(B * T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        ids[b * T + t] = static_cast<float>(token(b, pos + t));
        labels[static_cast<size_t>(b * T + t)] = token(b, pos + t + 1);
      }
    pos += T;
    lm.detach_state();
    arena.zero_grad();
    Tensor loss = layers::softmax_cross_entropy(lm.forward(ids), labels);
    core::backward(loss);
    adam->step(arena, 0.02);
    loss_value = loss[0];
    if (step == 0) first_loss = loss_value;
  }
  CHECK(first_loss > 1.0);
  CHECK(loss_value < 0.02);
}
