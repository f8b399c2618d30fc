#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "core/lr_schedule.h"

using namespace deja::core;

TEST_CASE("constant schedule with linear warmup, per step") {
  LrSchedule s({{"type", "constant"}, {"warmup_epochs", 2}, {"warmup_start_factor", 0.1}}, 0.1, 10);
  CHECK(s.lr(0, 0, 10) == doctest::Approx(0.01));
  CHECK(s.lr(0, 5, 10) == doctest::Approx(0.1 * (0.1 + 0.9 * 0.25)));
  CHECK(s.lr(1, 0, 10) == doctest::Approx(0.055));
  CHECK(s.lr(1, 9, 10) == doctest::Approx(0.1 * (0.1 + 0.9 * 0.95)));
  CHECK(s.lr(2, 0, 10) == doctest::Approx(0.1));
  CHECK(s.lr(9, 3, 10) == doctest::Approx(0.1));
  CHECK(LrSchedule(Json::object(), 0.3, 5).lr(4, 0, 1) == 0.3);  // type defaults to constant
  CHECK(s.describe() == "constant(base_lr=0.1, warmup_epochs=2, warmup_start_factor=0.1)");
}

TEST_CASE("step and multistep decay at epoch boundaries") {
  LrSchedule step({{"type", "step"}, {"step_epochs", 3}, {"gamma", 0.5}}, 0.1, 10);
  CHECK(step.lr(0, 0, 4) == doctest::Approx(0.1));
  CHECK(step.lr(2, 3, 4) == doctest::Approx(0.1));
  CHECK(step.lr(3, 0, 4) == doctest::Approx(0.05));
  CHECK(step.lr(6, 2, 4) == doctest::Approx(0.025));
  CHECK(step.describe() == "step(base_lr=0.1, step_epochs=3, gamma=0.5)");

  LrSchedule multi({{"type", "multistep"}, {"milestones", {2, 5}}}, 0.1, 8);
  CHECK(multi.lr(1, 0, 1) == doctest::Approx(0.1));
  CHECK(multi.lr(2, 0, 1) == doctest::Approx(0.01));
  CHECK(multi.lr(4, 0, 1) == doctest::Approx(0.01));
  CHECK(multi.lr(5, 0, 1) == doctest::Approx(0.001));
  CHECK(multi.lr(7, 0, 1) == doctest::Approx(0.001));
  CHECK(multi.describe() == "multistep(base_lr=0.1, milestones=[2, 5], gamma=0.1)");

  // Warmup multiplies the decayed rate.
  LrSchedule warm({{"type", "multistep"}, {"milestones", {1}}, {"warmup_epochs", 1.5}, {"warmup_start_factor", 0.5}},
                  1.0, 4);
  CHECK(warm.lr(1, 0, 2) == doctest::Approx(0.1 * (0.5 + 0.5 / 1.5)));
  CHECK(warm.lr(1, 1, 2) == doctest::Approx(0.1));
}

TEST_CASE("cosine runs from the base rate after warmup to min_lr at the end") {
  LrSchedule c({{"type", "cosine"}, {"min_lr", 0.001}}, 0.1, 10);
  CHECK(c.lr(0, 0, 10) == doctest::Approx(0.1));
  CHECK(c.lr(5, 0, 10) == doctest::Approx(0.001 + 0.099 * 0.5));
  CHECK(c.lr(2, 5, 10) == doctest::Approx(0.001 + 0.099 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25))));
  CHECK(c.lr(9, 9, 10) == doctest::Approx(0.001 + 0.099 * 0.5 * (1 + std::cos(std::numbers::pi * 0.99))));
  CHECK(c.lr(9, 999, 1000) > 0.001);
  CHECK(c.lr(9, 999, 1000) < 0.0011);
  // Never increases.
  double prev = 1.0;
  for (int e = 0; e < 10; ++e)
    for (int st = 0; st < 7; ++st) {
      CHECK(c.lr(e, st, 7) <= prev);
      prev = c.lr(e, st, 7);
    }

  LrSchedule w({{"type", "cosine"}, {"warmup_epochs", 2}}, 0.1, 6);
  CHECK(w.lr(0, 0, 4) == doctest::Approx(0.01));
  CHECK(w.lr(1, 0, 4) == doctest::Approx(0.055));
  CHECK(w.lr(2, 0, 4) == doctest::Approx(0.1));  // cosine starts where warmup ends
  CHECK(w.lr(4, 0, 4) == doctest::Approx(0.05));
  CHECK(w.describe() == "cosine(base_lr=0.1, min_lr=0, epochs=6, warmup_epochs=2, warmup_start_factor=0.1)");
}

TEST_CASE("plateau reduces after patience epochs without relative improvement; state resumes") {
  LrSchedule p({{"type", "plateau"}, {"patience", 1}, {"factor", 0.5}, {"threshold", 0.1}, {"min_lr", 0.02}},
               0.1, 20);
  CHECK(p.lr(0, 0, 1) == doctest::Approx(0.1));
  p.on_epoch_end(0, 1.0);   // best 1.0
  p.on_epoch_end(1, 0.95);  // not below 0.9: bad 1 (patience 1: tolerated)
  CHECK(p.lr(2, 0, 1) == doctest::Approx(0.1));
  p.on_epoch_end(2, 0.92);  // bad 2 > 1: reduce
  CHECK(p.lr(3, 0, 1) == doctest::Approx(0.05));
  p.on_epoch_end(2, 5.0);  // replayed epoch: ignored
  p.on_epoch_end(3, 0.5);  // improvement: best 0.5
  p.on_epoch_end(4, 0.46);  // 0.46 is not below 0.45: bad 1
  CHECK(p.lr(5, 0, 1) == doctest::Approx(0.05));

  LrSchedule resumed({{"type", "plateau"}, {"patience", 1}, {"factor", 0.5}, {"threshold", 0.1}, {"min_lr", 0.02}},
                     0.1, 20);
  resumed.load_state(Json::parse(p.state().dump()));
  for (LrSchedule* s : {&p, &resumed}) {
    s->on_epoch_end(5, std::nan(""));  // NaN never improves: bad 2 -> reduce
    CHECK(s->lr(6, 0, 1) == doctest::Approx(0.025));
    s->on_epoch_end(6, 0.6);
    s->on_epoch_end(7, 0.6);  // reduce again, floored at min_lr
    CHECK(s->lr(8, 0, 1) == doctest::Approx(0.02));
  }
  CHECK(p.state() == resumed.state());
  CHECK(LrSchedule({{"type", "plateau"}}, 0.1, 3).state()["best"].is_null());
  CHECK_THROWS_WITH(LrSchedule({{"type", "cosine"}}, 0.1, 3).load_state(p.state()),
                    doctest::Contains("lr_schedule: saved schedule state is not of type 'cosine'"));

  // Other types ignore validation losses.
  LrSchedule c({{"type", "constant"}}, 0.1, 3);
  for (int e = 0; e < 3; ++e) c.on_epoch_end(e, 10.0 + e);
  CHECK(c.lr(2, 0, 1) == 0.1);
}

TEST_CASE("lr schedule configs: every error message") {
  struct Case {
    Json cfg;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{{"type", "linear"}},
       "lr_schedule: key 'type' must be one of constant, step, multistep, cosine, plateau, got \"linear\""},
      {{{"type", "cosine"}, {"min_lr", 0.2}},
       "lr_schedule: key 'min_lr' must be a non-negative number below the base lr 0.1, got 0.2"},
      {{{"type", "cosine"}, {"gamma", 0.5}}, "lr_schedule: key 'gamma' does not apply to type 'cosine'"},
      {{{"type", "step"}, {"step_epoch", 3}}, "lr_schedule: unknown key 'step_epoch' (did you mean 'step_epochs'?)"},
      {{{"type", "step"}}, "lr_schedule: key 'step_epochs' is required for type 'step'"},
      {{{"type", "step"}, {"step_epochs", 0}}, "lr_schedule: key 'step_epochs' must be a positive integer, got 0"},
      {{{"type", "step"}, {"step_epochs", 2}, {"gamma", 1.5}},
       "lr_schedule: key 'gamma' must be a number in (0, 1], got 1.5"},
      {{{"type", "multistep"}}, "lr_schedule: key 'milestones' is required for type 'multistep'"},
      {{{"type", "multistep"}, {"milestones", {5, 2}}},
       "lr_schedule: key 'milestones' must be a non-empty list of increasing positive integers, got [5,2]"},
      {{{"type", "multistep"}, {"milestones", 3}},
       "lr_schedule: key 'milestones' must be a non-empty list of increasing positive integers, got 3"},
      {{{"warmup_epochs", 10}}, "lr_schedule: key 'warmup_epochs' must be a non-negative number below the run's 10 epochs, got 10"},
      {{{"warmup_epochs", -1}}, "lr_schedule: key 'warmup_epochs' must be a non-negative number below the run's 10 epochs, got -1"},
      {{{"warmup_start_factor", 0}}, "lr_schedule: key 'warmup_start_factor' must be a number in (0, 1], got 0"},
      {{{"type", "plateau"}, {"patience", -1}}, "lr_schedule: key 'patience' must be a non-negative integer, got -1"},
      {{{"type", "plateau"}, {"patience", 1.5}}, "lr_schedule: key 'patience' must be a non-negative integer, got 1.5"},
      {{{"type", "plateau"}, {"factor", 1}}, "lr_schedule: key 'factor' must be a number in (0, 1), got 1"},
      {{{"type", "plateau"}, {"threshold", "small"}},
       "lr_schedule: key 'threshold' must be a number in [0, 1), got \"small\""},
      {Json::array({1}), "lr_schedule: expected an object, got [1]"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.cfg.dump());
    CHECK_THROWS_WITH_AS(LrSchedule(c.cfg, 0.1, 10), c.message, std::invalid_argument);
  }
  CHECK_THROWS_WITH(LrSchedule(Json::object(), 0.1, 0, "train.schedule"),
                    "train.schedule: total epochs must be positive, got 0");
  CHECK_THROWS_WITH(LrSchedule(Json::object(), -0.1, 3), "lr_schedule: base learning rate must be positive, got -0.1");
  CHECK_THROWS_WITH(LrSchedule(Json::object(), 0.1, 3).lr(0, 4, 4), "lr_schedule: bad position epoch 0, step 4 of 4");
}
