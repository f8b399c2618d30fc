// LSTM: values against a naive reference written here (double precision, gate
// order i, f, g, o), gradient checks through time with carried state and
// inter-layer dropout, and state carry / reset / detach behaviour.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/lstm.h"
#include "reuse/settings.h"
#include "tests/gradcheck.h"

using namespace deja;
using core::Tensor;

namespace {

Tensor random_tensor(core::Shape shape, uint64_t seed, float scale = 1.0f) {
  core::Rng rng(seed, 7);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-scale, scale);
  return t;
}

double sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Naive multi-layer LSTM (no dropout) from given initial states; returns the
// last layer's outputs [B, T, H] and fills the final states.
std::vector<double> reference(layers::Lstm& lstm, const Tensor& x, std::vector<std::vector<double>> h,
                              std::vector<std::vector<double>> c) {
  const int64_t B = x.size(0), T = x.size(1), H = lstm.options().hidden_size;
  std::vector<double> in(x.data(), x.data() + x.numel());
  int64_t in_size = x.size(2);
  for (int64_t k = 0; k < lstm.options().num_layers; ++k) {
    const Tensor& wi = lstm.weight_ih(k);
    const Tensor& wh = lstm.weight_hh(k);
    const Tensor& bi = lstm.bias_ih(k);
    const Tensor& bh = lstm.bias_hh(k);
    std::vector<double> out(static_cast<size_t>(B * T * H));
    auto& hk = h[static_cast<size_t>(k)];
    auto& ck = c[static_cast<size_t>(k)];
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> a(static_cast<size_t>(4 * H));
        for (int64_t r = 0; r < 4 * H; ++r) {
          double s = bi[r] + bh[r];
          for (int64_t q = 0; q < in_size; ++q) s += wi[r * in_size + q] * in[(b * T + t) * in_size + q];
          for (int64_t q = 0; q < H; ++q) s += wh[r * H + q] * hk[b * H + q];
          a[r] = s;
        }
        for (int64_t j = 0; j < H; ++j) {
          const double i = sig(a[j]), f = sig(a[H + j]), g = std::tanh(a[2 * H + j]),
                       o = sig(a[3 * H + j]);
          ck[b * H + j] = f * ck[b * H + j] + i * g;
          hk[b * H + j] = o * std::tanh(ck[b * H + j]);
          out[(b * T + t) * H + j] = hk[b * H + j];
        }
      }
    }
    in = out;
    in_size = H;
  }
  return in;
}

layers::Lstm make_lstm(int64_t in, int64_t hidden, int64_t num_layers, double dropout, uint64_t seed) {
  core::Rng init(seed, 1);
  return layers::Lstm({in, hidden, num_layers, dropout}, init, core::Rng(seed, 3));
}

}  // namespace

TEST_CASE("lstm: one step matches a hand computation") {
  // input 1, hidden 1: every weight is a scalar per gate, easy to follow by hand.
  core::Rng init(1, 1);
  layers::Lstm lstm({1, 1, 1, 0.0}, init, core::Rng(1, 3));
  const float wi[4] = {0.5f, -0.25f, 1.0f, 0.75f};  // i, f, g, o
  const float wh[4] = {0.1f, 0.2f, -0.3f, 0.4f};
  const float bi[4] = {0.0f, 1.0f, 0.0f, -0.5f};
  const float bh[4] = {0.05f, 0.0f, 0.1f, 0.0f};
  for (int r = 0; r < 4; ++r) {
    lstm.weight_ih(0)[r] = wi[r];
    lstm.weight_hh(0)[r] = wh[r];
    lstm.bias_ih(0)[r] = bi[r];
    lstm.bias_hh(0)[r] = bh[r];
  }
  lstm.set_state(0, Tensor::from({1, 1}, {0.6f}), Tensor::from({1, 1}, {-0.2f}));
  Tensor y = lstm.forward(Tensor::from({1, 1, 1}, {2.0f}));
  // a_i = 0.5*2 + 0.1*0.6 + 0.05 = 1.11 ; a_f = -0.5 + 0.12 + 1 = 0.62
  // a_g = 2 - 0.18 + 0.1 = 1.92       ; a_o = 1.5 + 0.24 - 0.5 = 1.24
  const double i = sig(1.11), f = sig(0.62), g = std::tanh(1.92), o = sig(1.24);
  const double c = f * -0.2 + i * g;
  const double h = o * std::tanh(c);
  CHECK(y[0] == doctest::Approx(h).epsilon(1e-6));
  CHECK(lstm.h_state(0)[0] == doctest::Approx(h).epsilon(1e-6));
  CHECK(lstm.c_state(0)[0] == doctest::Approx(c).epsilon(1e-6));
}

TEST_CASE("lstm: two layers over several steps match the naive reference, state carried") {
  layers::Lstm lstm = make_lstm(5, 7, 2, 0.0, 11);
  const int64_t B = 3, T = 4, H = 7;
  Tensor x = random_tensor({B, T, 5}, 2);
  std::vector<std::vector<double>> h(2), c(2);
  for (int k = 0; k < 2; ++k) {
    Tensor h0 = random_tensor({B, H}, 30 + k, 0.5f), c0 = random_tensor({B, H}, 40 + k, 0.5f);
    lstm.set_state(k, h0, c0);
    h[k].assign(h0.data(), h0.data() + h0.numel());
    c[k].assign(c0.data(), c0.data() + c0.numel());
  }
  auto hh = h, cc = c;
  std::vector<double> ref = reference(lstm, x, h, c);
  Tensor y = lstm.forward(x);
  REQUIRE(y.shape() == core::Shape{B, T, H});
  for (int64_t n = 0; n < y.numel(); ++n) CHECK(y[n] == doctest::Approx(ref[n]).epsilon(1e-5));

  // The second window continues from the first one's final state: equal to the
  // reference over the concatenated sequence.
  Tensor x2 = random_tensor({B, 2, 5}, 3);
  Tensor y2 = lstm.forward(x2);
  Tensor xcat = Tensor::empty({B, T + 2, 5});
  for (int64_t b = 0; b < B; ++b) {
    std::copy(x.data() + b * T * 5, x.data() + (b + 1) * T * 5, xcat.data() + b * (T + 2) * 5);
    std::copy(x2.data() + b * 2 * 5, x2.data() + (b + 1) * 2 * 5, xcat.data() + (b * (T + 2) + T) * 5);
  }
  std::vector<double> ref_cat = reference(lstm, xcat, hh, cc);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t j = 0; j < H; ++j)
        CHECK(y2[(b * 2 + t) * H + j] == doctest::Approx(ref_cat[(b * (T + 2) + T + t) * H + j]).epsilon(1e-5));
}

TEST_CASE("lstm: reset_state starts from zeros, a new batch size resizes the state") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.0, 5);
  Tensor x = random_tensor({2, 3, 3}, 9);
  Tensor first = lstm.forward(x).clone();
  Tensor carried = lstm.forward(x).clone();
  bool differs = false;
  for (int64_t i = 0; i < first.numel(); ++i) differs |= std::fabs(first[i] - carried[i]) > 1e-6f;
  CHECK(differs);  // the carried state changes the output
  lstm.reset_state();
  Tensor again = lstm.forward(x);
  for (int64_t i = 0; i < first.numel(); ++i) CHECK(again[i] == first[i]);
  // A batch of 1 (the first sample) starts from zeros: equal to the first row of `first`.
  Tensor x1 = x.slice_rows(0, 1).clone();
  Tensor one = lstm.forward(x1);
  CHECK(lstm.h_state(1).shape() == core::Shape{1, 4});
  for (int64_t i = 0; i < one.numel(); ++i) CHECK(one[i] == doctest::Approx(first[i]).epsilon(1e-6));
}

TEST_CASE("lstm: gradients through time, two layers, carried state in (finite differences)") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.0, 21);
  Tensor x = random_tensor({2, 3, 3}, 4);
  Tensor h0a = random_tensor({2, 4}, 50, 0.5f), c0a = random_tensor({2, 4}, 51, 0.5f);
  Tensor h0b = random_tensor({2, 4}, 52, 0.5f), c0b = random_tensor({2, 4}, 53, 0.5f);
  auto params = lstm.named_parameters("rnn");
  params.push_back({"x", &x});
  params.push_back({"h0_l0", &h0a});
  params.push_back({"c0_l0", &c0a});
  params.push_back({"h0_l1", &h0b});
  params.push_back({"c0_l1", &c0b});
  testing::check_gradients(
      [&] {
        lstm.set_state(0, h0a, c0a);
        lstm.set_state(1, h0b, c0b);
        return lstm.forward(x);
      },
      params);
}

TEST_CASE("lstm: gradients with inter-layer dropout in train mode") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.4, 22);
  lstm.train();
  Tensor x = random_tensor({2, 4, 3}, 5);
  auto params = lstm.named_parameters();
  params.push_back({"x", &x});
  const core::Rng::State rng_state = lstm.dropout_rng().state();
  testing::check_gradients(
      [&] {
        lstm.dropout_rng().set_state(rng_state);  // the same mask every call
        lstm.reset_state();
        return lstm.forward(x);
      },
      params);
}

TEST_CASE("lstm: dropout only in train mode, only between layers") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.5, 23);
  Tensor x = random_tensor({2, 3, 3}, 6);
  lstm.eval();
  Tensor e1 = lstm.forward(x).clone();
  lstm.reset_state();
  const auto before = lstm.dropout_rng().state();
  Tensor e2 = lstm.forward(x).clone();
  CHECK(lstm.dropout_rng().state().state == before.state);  // eval draws nothing
  for (int64_t i = 0; i < e1.numel(); ++i) CHECK(e1[i] == e2[i]);
  lstm.train();
  lstm.reset_state();
  Tensor t1 = lstm.forward(x);
  bool differs = false;
  for (int64_t i = 0; i < e1.numel(); ++i) differs |= std::fabs(t1[i] - e1[i]) > 1e-6f;
  CHECK(differs);
  // A single layer has no dropout at all, even in train mode.
  layers::Lstm single = make_lstm(3, 4, 1, 0.5, 24);
  single.train();
  Tensor s1 = single.forward(x).clone();
  single.eval();
  single.reset_state();
  Tensor s2 = single.forward(x);
  for (int64_t i = 0; i < s1.numel(); ++i) CHECK(s1[i] == s2[i]);
}

TEST_CASE("lstm: a window's gradient stops at the carried state; detach_state cuts installed links") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.0, 25);
  core::ParameterArena arena;
  arena.bind(lstm.named_parameters());
  Tensor x1 = random_tensor({2, 3, 3}, 7), x2 = random_tensor({2, 3, 3}, 8);
  auto sum_backward = [](const Tensor& y) {
    Tensor g = Tensor::full(y.shape(), 1.0f);
    core::backward(y, g);
  };
  lstm.forward(x1);  // window 1: graph built, never back-propagated
  for (int k = 0; k < 2; ++k) CHECK_FALSE(lstm.h_state(k).requires_grad());
  std::vector<Tensor> h, c;
  for (int k = 0; k < 2; ++k) {
    h.push_back(lstm.h_state(k).clone());
    c.push_back(lstm.c_state(k).clone());
  }
  arena.zero_grad();
  sum_backward(lstm.forward(x2));
  Tensor grads_carried = arena.grads().clone();
  // The same window from the same state values installed by hand: equal gradients,
  // so nothing flowed back into window 1.
  for (int k = 0; k < 2; ++k) lstm.set_state(k, h[k], c[k]);
  arena.zero_grad();
  sum_backward(lstm.forward(x2));
  for (int64_t i = 0; i < arena.grads().numel(); ++i)
    CHECK(arena.grads()[i] == doctest::Approx(grads_carried[i]).epsilon(1e-6));

  // A state that requires grad keeps its link until detach_state, values kept.
  Tensor hp = random_tensor({2, 4}, 60), cp = random_tensor({2, 4}, 61);
  core::ParameterArena state_arena;
  state_arena.bind({{"h", &hp}, {"c", &cp}});
  lstm.set_state(0, hp, cp);
  CHECK(lstm.h_state(0).requires_grad());
  lstm.detach_state();
  CHECK_FALSE(lstm.h_state(0).requires_grad());
  CHECK_FALSE(lstm.c_state(0).requires_grad());
  CHECK(lstm.h_state(0)[3] == hp[3]);
}

TEST_CASE("lstm: products per layer, options validation and shape errors") {
  layers::Lstm lstm = make_lstm(3, 4, 2, 0.0, 26);
  REQUIRE(lstm.products().size() == 2);
  CHECK(lstm.product() == lstm.products()[0]);
  CHECK(lstm.products()[0] != lstm.products()[1]);
  CHECK(lstm.product()->describe() == "dense");
  Tensor x = random_tensor({2, 3, 3}, 9);
  lstm.forward(x);
  CHECK(lstm.products()[0]->stats().forward_calls == 1);
  CHECK(lstm.products()[1]->stats().forward_calls == 1);
  auto shared = core::make_dense_product();
  lstm.set_product(shared);
  CHECK(lstm.products()[1] == shared.get());
  lstm.forward(x);
  CHECK(shared->stats().forward_calls == 2);

  CHECK_THROWS_WITH_AS(lstm.forward(Tensor::zeros({2, 3, 5})),
                       "lstm: expected input [B, T, 3], got [2, 3, 5]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(layers::LstmOptions({3, 0, 1, 0.0}).validate(),
                       "lstm: hidden_size must be >= 1, got 0", std::invalid_argument);
  CHECK_THROWS_WITH_AS(layers::LstmOptions({3, 4, 1, 1.0}).validate(),
                       "lstm: dropout must be in [0, 1), got 1.000000", std::invalid_argument);
  CHECK_THROWS_WITH_AS(lstm.set_state(2, Tensor::zeros({1, 4}), Tensor::zeros({1, 4})),
                       "lstm: set_state layer 2 out of range [0, 2)", std::invalid_argument);
  auto names = lstm.named_parameters();
  REQUIRE(names.size() == 8);
  CHECK(names[0].name == "weight_ih_l0");
  CHECK(names[5].name == "weight_hh_l1");
  CHECK(names[1].tensor->shape() == core::Shape{16, 4});
  CHECK(names[4].tensor->shape() == core::Shape{16, 4});
}

TEST_CASE("lstm: saturated gates stay finite and match the reference") {
  layers::Lstm lstm = make_lstm(4, 5, 1, 0.0, 27);
  for (int64_t i = 0; i < lstm.weight_ih(0).numel(); ++i) lstm.weight_ih(0)[i] *= 60.0f;
  Tensor x = random_tensor({2, 5, 4}, 10, 3.0f);
  std::vector<std::vector<double>> h{std::vector<double>(10, 0.0)}, c{std::vector<double>(10, 0.0)};
  std::vector<double> ref = reference(lstm, x, h, c);
  Tensor y = lstm.forward(x);
  for (int64_t n = 0; n < y.numel(); ++n) {
    REQUIRE(std::isfinite(y[n]));
    CHECK(y[n] == doctest::Approx(ref[n]).epsilon(1e-5));
  }
}

TEST_CASE("lstm: reuse on the input projection equals dense when every row is its own cluster") {
  // L = 1 and a tiny bucket width: every distinct scalar is its own cluster, so
  // the clustered product is the exact one (forward, and backward in "cluster" mode).
  reuse::ReuseSettings s;
  s.enabled = true;
  s.hash = "qproj";
  s.L = 1;
  s.H = 1;
  s.width = 1e-6;
  s.dx = "cluster";
  Tensor x = random_tensor({3, 4, 6}, 11);
  std::vector<float> outputs[2], grads[2];
  for (int use_reuse = 0; use_reuse < 2; ++use_reuse) {
    layers::Lstm lstm = make_lstm(6, 5, 2, 0.0, 28);
    if (use_reuse)
      for (int64_t k = 0; k < 2; ++k) lstm.set_layer_product(k, reuse::make_product(s));
    Tensor xin = x.clone();
    auto params = lstm.named_parameters();
    params.push_back({"x", &xin});
    core::ParameterArena arena;
    arena.bind(params);
    Tensor y = lstm.forward(xin);
    core::backward(y, random_tensor(y.shape(), 12));
    outputs[use_reuse] = y.to_vector();
    grads[use_reuse] = arena.grads().to_vector();
    if (use_reuse) {
      CHECK(lstm.product()->is_reuse());
      CHECK(lstm.products()[1]->stats().mean_remaining_ratio() == doctest::Approx(1.0));
    }
  }
  for (size_t i = 0; i < outputs[0].size(); ++i)
    CHECK(outputs[1][i] == doctest::Approx(outputs[0][i]).epsilon(1e-4));
  for (size_t i = 0; i < grads[0].size(); ++i)
    CHECK(grads[1][i] == doctest::Approx(grads[0][i]).epsilon(1e-4).scale(1e-3));
}
