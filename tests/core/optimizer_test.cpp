#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/optimizer.h"
#include "core/parallel.h"

using namespace deja::core;

namespace {

// Two parameters (3 and 20 floats: the arena pads the first to 16) bound into an arena.
struct TwoParams {
  Tensor a = Tensor::full({3}, 1.0f);
  Tensor b = Tensor::zeros({4, 5});
  ParameterArena arena;
  TwoParams() {
    for (int i = 0; i < 20; ++i) b[i] = 0.1f * static_cast<float>(i) - 1.0f;
    arena.bind({{"a", &a}, {"b", &b}});
  }
  void set_grads(float ga, float gb_scale) {
    Tensor ga_t = a.grad(), gb_t = b.grad();
    for (int i = 0; i < 3; ++i) ga_t[i] = ga;
    for (int i = 0; i < 20; ++i) gb_t[i] = gb_scale * std::sin(static_cast<float>(i));
  }
};

std::vector<float> snapshot(const Tensor& t) { return t.to_vector(); }

}  // namespace

TEST_CASE("sgd with momentum and weight decay matches hand-computed steps") {
  TwoParams p;
  auto opt = make_sgd({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}, p.arena.size());
  p.set_grads(0.5f, 0.0f);
  opt->step(p.arena, 0.1);
  // d = 0.5 + 0.01*1 = 0.51; b = d; p = 1 - 0.051
  CHECK(p.a[0] == doctest::Approx(0.949).epsilon(1e-6));
  opt->step(p.arena, 0.1);
  // d = 0.5 + 0.00949; b = 0.9*0.51 + 0.50949 = 0.96849; p = 0.949 - 0.096849
  CHECK(p.a[2] == doctest::Approx(0.852151).epsilon(1e-6));
  CHECK(opt->steps_taken() == 2);
  REQUIRE(opt->state_tensors().size() == 1);
  CHECK(opt->state_tensors()[0].first == "sgd.momentum");
  CHECK((*opt->state_tensors()[0].second)[0] == doctest::Approx(0.96849).epsilon(1e-6));
  // b had zero grads: only weight decay moved it, by factor (1 - lr*wd) then momentum.
  CHECK(p.b[0] != -1.0f);
  CHECK(opt->describe() == "sgd(lr=0.1, momentum=0.9, nesterov=false, weight_decay=0.01)");
}

TEST_CASE("sgd nesterov and dampening match hand-computed steps") {
  TwoParams p;
  auto nes = make_sgd({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}, p.arena.size());
  p.set_grads(0.5f, 0.0f);
  nes->step(p.arena, 0.1);
  CHECK(p.a[0] == doctest::Approx(0.9031).epsilon(1e-6));  // 1 - 0.1*(0.51 + 0.9*0.51)
  nes->step(p.arena, 0.1);
  CHECK(p.a[0] == doctest::Approx(0.76507411).epsilon(1e-6));

  TwoParams q;
  auto damp = make_sgd({.lr = 0.1, .momentum = 0.9, .dampening = 0.5}, q.arena.size());
  q.set_grads(0.5f, 0.0f);
  damp->step(q.arena, 0.1);  // first step: b = g, dampening not applied (as PyTorch)
  CHECK(q.a[1] == doctest::Approx(0.95).epsilon(1e-6));
  damp->step(q.arena, 0.1);  // b = 0.9*0.5 + 0.5*0.5 = 0.7
  CHECK(q.a[1] == doctest::Approx(0.88).epsilon(1e-6));

  TwoParams r;
  auto plain = make_sgd({.lr = 0.5}, r.arena.size());
  CHECK(plain->state_tensors().empty());
  r.set_grads(0.5f, 1.0f);
  const float b3 = r.b[3];
  plain->step(r.arena, 0.2);  // the step's lr, not the options' lr
  CHECK(r.a[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(r.b[3] == doctest::Approx(b3 - 0.2 * std::sin(3.0)).epsilon(1e-6));
}

TEST_CASE("adam and adamw match hand-computed steps and a reference loop") {
  TwoParams p;
  auto adam = make_adam({.lr = 0.1}, p.arena.size());
  p.set_grads(0.5f, 0.0f);
  adam->step(p.arena, 0.1);
  CHECK(p.a[0] == doctest::Approx(0.9).epsilon(1e-6));  // first step moves by lr * sign(g)
  p.set_grads(-0.25f, 0.0f);
  adam->step(p.arena, 0.1);
  // m = 0.02, v = 0.00031225, bias corrections 0.19 and 0.001999
  CHECK(p.a[0] == doctest::Approx(0.8733663).epsilon(1e-6));
  CHECK(adam->describe() == "adam(lr=0.1, betas=(0.9, 0.999), eps=1e-08, weight_decay=0)");

  TwoParams w;
  auto adamw = make_adam({.lr = 0.1, .weight_decay = 0.1, .decoupled = true}, w.arena.size());
  w.set_grads(0.5f, 0.0f);
  adamw->step(w.arena, 0.1);
  CHECK(w.a[0] == doctest::Approx(0.89).epsilon(1e-6));  // 1*(1 - 0.01) - 0.1

  // L2 Adam with varying grads against a double-precision reference loop.
  TwoParams q;
  const AdamOptions o{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05};
  auto l2 = make_adam(o, q.arena.size());
  const std::vector<float> start = q.b.to_vector();
  std::vector<double> ref(start.begin(), start.end()), m(20, 0), v(20, 0);
  for (int t = 1; t <= 4; ++t) {
    q.set_grads(0.0f, static_cast<float>(t));
    for (int i = 0; i < 20; ++i) {
      const double g = t * std::sin(static_cast<double>(i)) + o.weight_decay * ref[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const double mh = m[i] / (1 - std::pow(o.beta1, t)), vh = v[i] / (1 - std::pow(o.beta2, t));
      ref[i] -= o.lr * mh / (std::sqrt(vh) + o.eps);
    }
    l2->step(q.arena, o.lr);
  }
  for (int i = 0; i < 20; ++i) CHECK(q.b[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  CHECK(q.b[5] != doctest::Approx(0.1 * 5 - 1.0).epsilon(1e-3));  // it moved
}

TEST_CASE("saved optimizer state continues identically") {
  for (const char* type : {"sgd", "adam", "adamw"}) {
    CAPTURE(type);
    Json cfg = {{"type", type}, {"lr", 0.05}, {"weight_decay", 0.01}};
    if (std::string(type) == "sgd") cfg["momentum"] = 0.9;
    TwoParams run, resumed;
    auto a = make_optimizer(cfg, run.arena.size());
    for (int s = 0; s < 3; ++s) {
      run.set_grads(0.3f * s - 0.2f, 1.0f + s);
      a->step(run.arena, 0.05);
    }
    // "Checkpoint": values, state tensors, state json.
    auto b = make_optimizer(cfg, resumed.arena.size());
    resumed.arena.values().copy_from(run.arena.values());
    auto from = a->state_tensors(), to = b->state_tensors();
    REQUIRE(from.size() == to.size());
    for (size_t i = 0; i < from.size(); ++i) {
      CHECK(from[i].first == to[i].first);
      to[i].second->copy_from(*from[i].second);
    }
    b->load_state_json(Json::parse(a->state_json().dump()));
    CHECK(b->steps_taken() == 3);
    for (int s = 3; s < 6; ++s) {
      run.set_grads(0.3f * s - 0.2f, 1.0f + s);
      resumed.set_grads(0.3f * s - 0.2f, 1.0f + s);
      a->step(run.arena, 0.05);
      b->step(resumed.arena, 0.05);
    }
    CHECK(snapshot(run.arena.values()) == snapshot(resumed.arena.values()));
  }
  auto sgd = make_sgd({}, 4);
  CHECK_THROWS_WITH(sgd->load_state_json(Json{{"type", "adam"}, {"steps", 3}}),
                    "sgd: optimizer state is not an sgd state: {\"steps\":3,\"type\":\"adam\"}");
}

TEST_CASE("optimizer steps are identical with one and two threads") {
  Tensor big = Tensor::zeros({100000});
  for (int64_t i = 0; i < big.numel(); ++i) big[i] = std::cos(static_cast<float>(i));
  std::vector<float> results[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor w = big.clone();
    ParameterArena arena;
    arena.bind({{"w", &w}});
    Tensor g = w.grad();
    for (int64_t i = 0; i < g.numel(); ++i) g[i] = std::sin(static_cast<float>(i));
    auto opt = make_optimizer({{"type", "adam"}, {"lr", 0.01}}, arena.size());
    for (int s = 0; s < 3; ++s) opt->step(arena, 0.01);
    results[threads - 1] = arena.values().to_vector();
  }
  set_num_threads(1);
  CHECK(results[0] == results[1]);
  CHECK(results[0] != big.to_vector());
}

TEST_CASE("optimizer misuse is refused") {
  TwoParams p;
  auto opt = make_sgd({}, p.arena.size() + 1);
  CHECK_THROWS_WITH(opt->step(p.arena, 0.1), "sgd: parameter arena has 36 values, optimizer was made for 37");
  auto ok = make_adam({}, p.arena.size());
  CHECK_THROWS_WITH(ok->step(p.arena, -1), "adam: lr must be positive, got -1");
  CHECK_THROWS_WITH(make_sgd({.lr = -1}, 4), "sgd: lr must be a positive number, got -1");
  CHECK_THROWS_WITH(make_sgd({.nesterov = true}, 4),
                    "sgd: nesterov needs momentum > 0 and dampening 0, got momentum 0 and dampening 0");
  CHECK_THROWS_WITH(make_adam({.beta2 = 1.0, .decoupled = true}, 4), "adamw: beta2 must be a number in [0, 1), got 1");
}

TEST_CASE("optimizer configs: defaults, base lr and every error message") {
  CHECK(make_optimizer({{"type", "sgd"}}, 4)->describe() ==
        "sgd(lr=0.01, momentum=0, nesterov=false, weight_decay=0)");
  CHECK(make_optimizer(Json::object(), 4)->describe() == "sgd(lr=0.01, momentum=0, nesterov=false, weight_decay=0)");
  CHECK(make_optimizer({{"type", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}, 4)->describe() ==
        "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0)");
  CHECK(make_optimizer({{"type", "adamw"}, {"betas", {0.8, 0.95}}}, 4)->describe() ==
        "adamw(lr=0.001, betas=(0.8, 0.95), eps=1e-08, weight_decay=0.01)");
  CHECK(optimizer_base_lr({{"type", "adam"}}) == 1e-3);
  CHECK(optimizer_base_lr({{"type", "sgd"}, {"lr", 0.2}}) == 0.2);
  CHECK(optimizer_base_lr(Json::object()) == 0.01);

  struct Case {
    Json cfg;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{{"type", "sgd"}, {"lr", -1}}, "optimizer: key 'lr' must be a positive number, got -1"},
      {{{"type", "adam"}, {"lr", "0.1"}}, "optimizer: key 'lr' must be a positive number, got \"0.1\""},
      {{{"type", "rmsprop"}}, "optimizer: key 'type' must be one of sgd, adam, adamw, got \"rmsprop\""},
      {{{"type", 3}}, "optimizer: key 'type' must be a string, got 3"},
      {{{"type", "sgd"}, {"momentun", 0.9}}, "optimizer: unknown key 'momentun' (did you mean 'momentum'?)"},
      {{{"type", "adam"}, {"momentum", 0.9}}, "optimizer: key 'momentum' does not apply to type 'adam'"},
      {{{"type", "sgd"}, {"betas", {0.9, 0.99}}}, "optimizer: key 'betas' does not apply to type 'sgd'"},
      {{{"type", "sgd"}, {"momentum", 1.0}}, "optimizer: key 'momentum' must be a number in [0, 1), got 1.0"},
      {{{"type", "sgd"}, {"dampening", 2}}, "optimizer: key 'dampening' must be a number in [0, 1], got 2"},
      {{{"type", "sgd"}, {"weight_decay", -0.1}},
       "optimizer: key 'weight_decay' must be a non-negative number, got -0.1"},
      {{{"type", "sgd"}, {"nesterov", 1}}, "optimizer: key 'nesterov' must be true or false, got 1"},
      {{{"type", "sgd"}, {"nesterov", true}}, "optimizer: 'nesterov' needs 'momentum' > 0 and 'dampening' 0"},
      {{{"type", "adam"}, {"betas", {0.9}}}, "optimizer: key 'betas' must be a list of two numbers in [0, 1), got [0.9]"},
      {{{"type", "adam"}, {"betas", {0.9, 1.5}}},
       "optimizer: key 'betas' must be a list of two numbers in [0, 1), got [0.9,1.5]"},
      {{{"type", "adamw"}, {"eps", 0}}, "optimizer: key 'eps' must be a positive number, got 0"},
      {Json::array(), "optimizer: expected an object, got []"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.cfg.dump());
    CHECK_THROWS_WITH_AS(make_optimizer(c.cfg, 4), c.message, std::invalid_argument);
  }
  CHECK_THROWS_WITH(make_optimizer({{"lr", 0}}, 4, "train.optimizer"),
                    "train.optimizer: key 'lr' must be a positive number, got 0");
}
