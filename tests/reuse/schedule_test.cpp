// The adaptive reuse scheduler: plateau and epoch triggers on synthetic loss
// curves (expected move steps worked out by hand below), monotone moves, the
// final dense phase, the checkpoint round trip, config errors, and the
// automatic ladder from a calibration batch.
#include <doctest/doctest.h>

#include <cmath>

#include "core/rng.h"
#include "reuse/schedule.h"

using namespace deja;
using namespace deja::reuse;
using core::Json;

namespace {

std::vector<ReuseSettings> bases(std::vector<bool> enabled) {
  std::vector<ReuseSettings> out;
  for (size_t i = 0; i < enabled.size(); ++i) {
    ReuseSettings s;
    s.enabled = enabled[i];
    s.seed = 100 + i;
    out.push_back(s);
  }
  return out;
}

const std::vector<std::string> kNames = {"conv1", "conv2", "fc"};

// Falls by 0.02 per step from 2.0 for 50 steps, then flat at 1.0. With window
// 10 the window averages are 1.91, 1.71, 1.51, 1.31, 1.11, 1.0, 1.0, ...: the
// relative improvements are 10.5%, 11.7%, 13.2%, 15.3%, 9.9%, then 0.
double curve(int64_t step) { return step < 50 ? 2.0 - 0.02 * static_cast<double>(step) : 1.0; }

struct Move {
  int64_t step;
  std::string layer;
  int from, to;
  std::string reason;
  bool operator==(const Move&) const = default;
};

std::vector<Move> run_steps(ReuseScheduler& s, int64_t begin, int64_t end, int64_t epoch = 0,
                            double (*loss)(int64_t) = curve) {
  std::vector<Move> moves;
  for (int64_t t = begin; t < end; ++t)
    for (const auto& e : s.on_step(epoch, t, loss(t))) moves.push_back({e.step, e.layer, e.rung_from, e.rung_to, e.reason});
  return moves;
}

Json plateau_config(int64_t min_steps) {
  return Json::parse(R"({"layers": {"conv1": [{"L": 20, "H": 4}, {"L": 10, "H": 8}, "dense"]},
                         "plateau": {"window": 10, "threshold": 0.05, "min_steps": )" +
                     std::to_string(min_steps) + "}, \"dense_last_epochs\": 1}");
}

}  // namespace

TEST_CASE("schedule: plateau moves one rung finer exactly when the window average stops improving") {
  // conv1 is listed; conv2 is enabled in the model so it gets [base, dense];
  // fc is dense in the model and not listed, so it is not scheduled.
  ReuseScheduler s(plateau_config(20), kNames, bases({false, true, false}), 10);
  REQUIRE(s.active());
  CHECK(s.rungs(0) == 3);
  CHECK(s.rungs(1) == 2);
  CHECK(s.rungs(2) == 0);
  CHECK(s.current(0).enabled);
  CHECK(s.current(0).L == 20);
  CHECK(s.current(0).H == 4);
  CHECK_FALSE(s.current(2).enabled);

  // First plateau: the window ending at step 69 (1.0 after 1.0). Then the
  // windows restart: steps 70-79 and 80-89, flat, 20 steps on the rung >= 20.
  auto moves = run_steps(s, 0, 200);
  std::vector<Move> expected = {{69, "conv1", 0, 1, "plateau"}, {69, "conv2", 0, 1, "plateau"},
                                {89, "conv1", 1, 2, "plateau"}};
  CHECK(moves == expected);
  CHECK_FALSE(s.current(0).enabled);
  CHECK_FALSE(s.current(1).enabled);
  CHECK(s.current(0).L == ReuseSettings().L);  // the dense rung keeps the base settings, disabled
}

TEST_CASE("schedule: min_steps holds a layer on its rung past a plateau") {
  // After the move at step 69 the windows close at 79, 89 (20 steps on the
  // rung), 99 (30), 109 (40 >= 35): the second move is at step 109.
  ReuseScheduler s(plateau_config(35), kNames, bases({false, false, false}), 10);
  auto moves = run_steps(s, 0, 300);
  std::vector<Move> expected = {{69, "conv1", 0, 1, "plateau"}, {109, "conv1", 1, 2, "plateau"}};
  CHECK(moves == expected);
}

TEST_CASE("schedule: a threshold of zero never sees a plateau on a falling curve") {
  Json cfg = plateau_config(0);
  cfg["plateau"]["threshold"] = 0.0;
  ReuseScheduler s(cfg, kNames, bases({false, false, false}), 10);
  for (int64_t t = 0; t < 200; ++t) CHECK(s.on_step(0, t, 5.0 - 0.01 * static_cast<double>(t)).empty());
  CHECK(s.rung(0) == 0);
  // Non-finite losses are ignored rather than counted as a plateau.
  for (int64_t t = 200; t < 260; ++t) CHECK(s.on_step(0, t, std::nan("")).empty());
}

TEST_CASE("schedule: epoch triggers move every layer once, then the last epochs are dense") {
  Json cfg = Json::parse(R"({"layers": {"conv1": [{"L": 32, "H": 4}, {"L": 16, "H": 6}, {"L": 8, "H": 8}]},
                             "epochs": [2, 4], "dense_last_epochs": 1})");
  ReuseScheduler s(cfg, kNames, bases({false, true, true}), 6);
  CHECK(s.dense_start_epoch() == 5);
  CHECK(s.rungs(0) == 4);  // "dense" appended
  std::vector<std::vector<std::string>> reasons(6);
  std::vector<std::vector<int>> rung0(6);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    for (const auto& e : s.on_epoch_start(epoch)) {
      reasons[epoch].push_back(e.layer + ":" + e.reason + ":" + std::to_string(e.rung_from) + "->" +
                               std::to_string(e.rung_to));
      CHECK(e.epoch == epoch);
      CHECK(e.step == step);  // the first step on the new rung
    }
    CHECK(s.on_epoch_start(epoch).empty());  // idempotent
    for (int k = 0; k < 7; ++k, ++step) CHECK(s.on_step(epoch, step, 1.0).empty());  // no plateau section
    rung0[epoch] = {s.rung(0), s.rung(1), s.rung(2)};
  }
  CHECK(reasons[0].empty());
  CHECK(reasons[1].empty());
  CHECK(reasons[2] == std::vector<std::string>{"conv1:epoch:0->1", "conv2:epoch:0->1", "fc:epoch:0->1"});
  CHECK(reasons[3].empty());
  CHECK(reasons[4] == std::vector<std::string>{"conv1:epoch:1->2"});  // conv2, fc already dense
  CHECK(reasons[5] == std::vector<std::string>{"conv1:final_dense:2->3"});
  CHECK(rung0[3] == std::vector<int>{1, 1, 1});
  for (size_t i = 0; i < 3; ++i) CHECK_FALSE(s.current(i).enabled);
}

TEST_CASE("schedule: never coarser, always finishes dense, on a noisy loss") {
  Json cfg = Json::parse(R"({"default_ladder": [{"L": 40, "H": 2}, {"L": 20, "H": 4}, {"L": 10, "H": 8}, {"L": 5, "H": 12}],
                             "plateau": {"window": 5, "threshold": 0.02, "min_steps": 0}, "epochs": [1, 3],
                             "dense_last_epochs": 2})");
  ReuseScheduler s(cfg, kNames, bases({true, true, false}), 8);
  CHECK(s.dense_start_epoch() == 6);
  core::Rng rng(7);
  std::vector<int> last = {0, 0, 0};
  int64_t step = 0, moves = 0;
  for (int64_t epoch = 0; epoch < 8; ++epoch) {
    auto check = [&](const std::vector<ScheduleEvent>& events) {
      for (const auto& e : events) {
        ++moves;
        CHECK(e.rung_to > e.rung_from);
        CHECK(e.layer != "fc");
      }
      for (size_t i = 0; i < 3; ++i) {
        CHECK(s.rung(i) >= last[i]);
        last[i] = s.rung(i);
      }
    };
    check(s.on_epoch_start(epoch));
    if (epoch < 6) CHECK(s.current(0).enabled == (s.rung(0) < 4));
    for (int k = 0; k < 30; ++k, ++step) check(s.on_step(epoch, step, 1.0 + 0.3 * rng.uniform()));
  }
  CHECK(moves > 0);
  CHECK(s.rung(0) == 4);
  CHECK(s.rung(1) == 4);
  CHECK_FALSE(s.current(0).enabled);
  CHECK_FALSE(s.current(1).enabled);
  CHECK_FALSE(s.current(2).enabled);  // fc: base settings, dense, untouched
  CHECK(s.rungs(2) == 0);
}

TEST_CASE("schedule: a state round trip continues identically") {
  Json cfg = plateau_config(20);
  cfg["epochs"] = {3};
  ReuseScheduler a(cfg, kNames, bases({false, true, false}), 6);
  a.on_epoch_start(0);
  run_steps(a, 0, 75);  // after the first move, mid-window on the new rung
  CHECK(a.rung(0) == 1);
  // Through text, as a checkpoint stores it.
  Json saved = Json::parse(a.state().dump());
  ReuseScheduler b(cfg, kNames, bases({false, true, false}), 6);
  CHECK(b.rung(0) == 0);
  b.load_state(saved);
  CHECK(b.rung(0) == 1);
  CHECK(b.rung(1) == 1);
  CHECK(b.state() == a.state());
  CHECK(b.describe() == a.describe());
  auto rest_a = run_steps(a, 75, 200);
  auto rest_b = run_steps(b, 75, 200);
  CHECK(rest_a == rest_b);
  REQUIRE(rest_a.size() == 1);
  CHECK(rest_a[0].step == 89);
  // A resumed epoch start that already ran does nothing; the next one does.
  CHECK(b.on_epoch_start(0).empty());
  CHECK(b.state() == a.state());

  SUBCASE("a state that does not fit the model is refused, naming the field") {
    Json bad = saved;
    bad["layers"][1]["name"] = "convX";
    CHECK_THROWS_WITH(b.load_state(bad),
                      "reuse_schedule state.layers[1]: saved layer 'convX' but the model's layer is 'conv2'");
    bad = saved;
    bad["layers"][0]["rung"] = 7;
    CHECK_THROWS_WITH(b.load_state(bad), "reuse_schedule state.layers[0]: rung 7 is outside the ladder of 3");
    bad = saved;
    bad["layers"].erase(2);
    CHECK_THROWS_WITH(b.load_state(bad), "reuse_schedule state: 2 layers saved but the model has 3");
    CHECK(b.state() == a.state());  // untouched by the failed loads
  }
}

TEST_CASE("schedule: inactive without a config or when disabled") {
  ReuseScheduler none(Json(), kNames, bases({true, false, false}), 3);
  CHECK_FALSE(none.active());
  CHECK(none.current(0).enabled);  // base settings stay as they are
  CHECK(none.on_epoch_start(2).empty());
  CHECK(none.on_step(0, 0, 1.0).empty());
  ReuseScheduler off(Json::parse(R"({"enabled": false, "epochs": [1]})"), kNames, bases({true, false, false}), 3);
  CHECK_FALSE(off.active());
  CHECK(off.on_epoch_start(1).empty());
  CHECK(off.current(0).enabled);
  // Listed layers only, none enabled in the model and none listed: nothing to do.
  ReuseScheduler empty(Json::parse(R"({"epochs": [1]})"), kNames, bases({false, false, false}), 3);
  CHECK_FALSE(empty.active());
}

TEST_CASE("schedule: describe lists each ladder and the current rung") {
  Json cfg = Json::parse(R"({"layers": {"conv2": [{"L": 20, "H": 6}, {"L": 10, "H": 10}, "dense"]}, "epochs": [1]})");
  ReuseScheduler s(cfg, kNames, bases({false, false, false}), 4);
  CHECK(s.describe() == "conv1: dense (not scheduled)\n"
                        "conv2: qproj L=20 H=6 -> L=10 H=10 -> dense (now rung 0)\n"
                        "fc: dense (not scheduled)");
  s.on_epoch_start(1);
  CHECK(s.describe().find("conv2: qproj L=20 H=6 -> L=10 H=10 -> dense (now rung 1)") != std::string::npos);
}

TEST_CASE("schedule: describe names the lowrank and keep_projection rungs") {
  Json cfg = Json::parse(R"({"layers": {"conv2": [{"hash": "pca", "lowrank": true, "L": 50, "H": 8, "width": 0.35},
                                                  {"hash": "pca", "keep_projection": true, "L": 50, "H": 8, "width": 1.0},
                                                  "dense"]}, "epochs": [1]})");
  ReuseScheduler s(cfg, kNames, bases({false, false, false}), 4);
  CHECK(s.describe().find("conv2: pca lowrank L=50 H=8 -> L=50 H=8 w=1 keep_projection -> dense (now rung 0)") !=
        std::string::npos);
}

TEST_CASE("schedule: the dense tail leaves at least one reuse epoch") {
  Json cfg = Json::parse(R"({"default_ladder": [{"L": 20, "H": 6}], "dense_last_epochs": 1})");
  ReuseScheduler one(cfg, kNames, bases({true, false, false}), 1);
  CHECK(one.dense_start_epoch() == 1);
  CHECK(one.on_epoch_start(0).empty());
  CHECK(one.current(0).enabled);
  ReuseScheduler two(cfg, kNames, bases({true, false, false}), 2);
  CHECK(two.on_epoch_start(0).empty());
  auto events = two.on_epoch_start(1);
  REQUIRE(events.size() == 1);
  CHECK(events[0].reason == "final_dense");
  CHECK(events[0].settings == "dense");
  CHECK(describe(events[0]) == "epoch 1 step 0: conv1 rung 0 -> 1 (final_dense): dense");
  CHECK(event_to_json(events[0]) == Json::parse(R"({"kind": "reuse_event", "epoch": 1, "step": 0, "layer": "conv1",
                                                    "from": 0, "to": 1, "reason": "final_dense", "settings": "dense"})"));
  cfg["dense_last_epochs"] = 0;
  ReuseScheduler never(cfg, kNames, bases({true, false, false}), 2);
  CHECK(never.on_epoch_start(1).empty());
  CHECK(never.current(0).enabled);
}

TEST_CASE("schedule: config errors name the field") {
  auto make = [](const std::string& text) {
    ReuseScheduler s(Json::parse(text), kNames, bases({true, false, false}), 5);
  };
  CHECK_THROWS_WITH(make(R"({"plataeu": {}})"), "reuse_schedule: unknown key 'plataeu' (did you mean 'plateau'?)");
  CHECK_THROWS_WITH(make(R"({"layers": {"conv9": ["dense"]}})"),
                    "reuse_schedule.layers: 'conv9' is not a reuse-capable layer (did you mean 'conv1'?); "
                    "reuse-capable layers: conv1, conv2, fc");
  CHECK_THROWS_WITH(make(R"({"layers": {"conv1": [{"L": 20}, "dence"]}})"),
                    "reuse_schedule.layers.conv1[1]: a rung is a settings object or \"dense\", got \"dence\"");
  CHECK_THROWS_WITH(make(R"({"layers": {"conv1": ["dense", {"L": 20}]}})"),
                    "reuse_schedule.layers.conv1[0]: \"dense\" must be the last rung");
  CHECK_THROWS_WITH(make(R"({"layers": {"conv1": []}})"),
                    "reuse_schedule.layers.conv1: expected a non-empty list of rungs (settings objects or \"dense\"), got []");
  CHECK_THROWS_WITH(make(R"({"layers": {"conv1": [{"L": 0}]}})"),
                    doctest::Contains("reuse_schedule.layers.conv1[0]"));
  CHECK_THROWS_WITH(make(R"({"default_ladder": [{"L": 10, "H": 40}]})"),
                    doctest::Contains("reuse_schedule.default_ladder[0]"));
  CHECK_THROWS_WITH(make(R"({"plateau": {"window": 0}})"), "reuse_schedule.plateau: key 'window' must be >= 1, got 0");
  CHECK_THROWS_WITH(make(R"({"plateau": {"threshold": -0.1}})"),
                    "reuse_schedule.plateau: key 'threshold' must be a finite number >= 0, got -0.1");
  CHECK_THROWS_WITH(make(R"({"plateau": {"windows": 3}})"),
                    "reuse_schedule.plateau: unknown key 'windows' (did you mean 'window'?)");
  CHECK_THROWS_WITH(make(R"({"epochs": [3, 2]})"), "reuse_schedule.epochs[1]: epoch triggers must increase, got 2 after 3");
  CHECK_THROWS_WITH(make(R"({"epochs": [0]})"), "reuse_schedule.epochs[0]: an epoch trigger must be >= 1, got 0");
  CHECK_THROWS_WITH(make(R"({"epochs": 2})"),
                    "reuse_schedule: key 'epochs' must be a non-empty list of epochs (integers), got 2");
  CHECK_THROWS_WITH(make(R"({"dense_last_epochs": -1})"), "reuse_schedule: key 'dense_last_epochs' must be >= 0, got -1");
  CHECK_THROWS_WITH(make(R"({"enabled": "yes"})"), "reuse_schedule: key 'enabled' must be true or false, got \"yes\"");
  CHECK_THROWS_WITH(make(R"({"default_ladder": [{"L": 10}], "auto": {"candidates": {"L": [10], "H": [8]}}})"),
                    "reuse_schedule: give either 'default_ladder' or 'auto', not both");
  CHECK_THROWS_WITH(make(R"({"auto": {"max_error": 0.2}})"), "reuse_schedule.auto: missing key 'candidates'");
  CHECK_THROWS_WITH(make(R"({"auto": {"candidates": {"L": [10]}}})"), "reuse_schedule.auto.candidates: missing key 'H'");
  CHECK_THROWS_WITH(make(R"({"auto": {"candidates": {"L": [10], "H": [8]}, "rungs": 0}})"),
                    "reuse_schedule.auto: key 'rungs' must be >= 1, got 0");
  CHECK_THROWS_WITH(make(R"({"auto": {"candidates": {"L": [10, "x"], "H": [8]}}})"),
                    "reuse_schedule.auto.candidates: key 'L' must be a non-empty list of integers, got [10,\"x\"]");
  CHECK_THROWS_WITH(ReuseScheduler(Json(), kNames, bases({true}), 5),
                    "reuse_schedule: 3 layer names but 1 base settings");
}

namespace {

// Rows are one of 16 Gaussian prototypes plus small noise: coarse hashes merge
// prototypes (low r_c, large error), fine ones separate them (more clusters,
// error down to the noise).
core::Tensor clustered_rows(int64_t n, int64_t k, uint64_t seed) {
  core::Rng rng(seed);
  std::vector<std::vector<float>> prototypes(16, std::vector<float>(static_cast<size_t>(k)));
  for (auto& p : prototypes)
    for (auto& v : p) v = rng.normal();
  core::Tensor x = core::Tensor::empty({n, k});
  for (int64_t i = 0; i < n; ++i) {
    const auto& p = prototypes[rng.below(16)];
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = p[static_cast<size_t>(j)] + 0.05f * rng.normal();
  }
  return x;
}

core::Tensor random_weight(int64_t m, int64_t k, uint64_t seed) {
  core::Rng rng(seed);
  core::Tensor w = core::Tensor::empty({m, k});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = rng.normal(0.0f, 0.2f);
  return w;
}

// r_c and relative error of Y measured here by hand, independently of calibrate().
std::pair<double, double> measure(const ReuseSettings& s, const core::Tensor& x, const core::Tensor& w) {
  const int64_t n = x.size(0), m = w.size(0), k = x.size(1);
  auto product = make_product(s);
  core::Tensor y = core::Tensor::empty({n, m});
  product->forward(x, w, y, false);
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < m; ++o) {
      double ref = 0;
      for (int64_t j = 0; j < k; ++j) ref += static_cast<double>(x[i * k + j]) * w[o * k + j];
      diff += (y[i * m + o] - ref) * (y[i * m + o] - ref);
      norm += ref * ref;
    }
  return {product->stats().mean_remaining_ratio(), std::sqrt(diff / norm)};
}

}  // namespace

TEST_CASE("schedule: calibrate orders an automatic ladder coarse to fine") {
  const int64_t n = 1024, k = 40, m = 64;
  core::Tensor x = clustered_rows(n, k, 3);
  core::Tensor w = random_weight(m, k, 4);
  Json cfg = Json::parse(R"({"auto": {"candidates": {"L": [5, 10, 20, 40], "H": [1, 2, 4, 8, 16]},
                                      "max_error": 0.5, "rungs": 3}, "epochs": [1]})");
  ReuseScheduler s(cfg, kNames, bases({true, false, false}), 4);
  CHECK(s.needs_calibration(0));
  CHECK_FALSE(s.needs_calibration(1));
  CHECK(s.rungs(0) == 2);  // base, dense until calibrated
  s.calibrate(0, x, w);
  s.calibrate(1, x, w);  // not automatic: a no-op
  CHECK(s.calibration(1).empty());
  CHECK_FALSE(s.needs_calibration(0));

  const auto& measured = s.calibration(0);
  REQUIRE(measured.size() == 20);
  const auto& ladder = s.ladder(0);
  REQUIRE(ladder.size() == 4);  // three rungs spread over the front, then dense
  CHECK_FALSE(ladder.back().enabled);
  CHECK(s.rung(0) == 0);
  double min_rc = 2, min_error = 2;
  for (const auto& c : measured) {
    CHECK(c.cost == doctest::Approx(c.remaining_ratio + static_cast<double>(c.settings.H) / m + 0.1));
    if (c.cost < 1 && c.error <= 0.5) {
      min_rc = std::min(min_rc, c.remaining_ratio);
      min_error = std::min(min_error, c.error);
    }
  }
  std::vector<const CalibrationCandidate*> kept;
  for (const auto& r : ladder) {
    if (!r.enabled) continue;
    for (const auto& c : measured)
      if (c.kept && c.settings.L == r.L && c.settings.H == r.H) kept.push_back(&c);
  }
  REQUIRE(kept.size() == 3);
  for (size_t i = 0; i < kept.size(); ++i) {
    CHECK(kept[i]->cost < 1.0);
    CHECK(kept[i]->error <= 0.5);
    if (i) {
      CHECK(kept[i]->remaining_ratio > kept[i - 1]->remaining_ratio);  // coarse to fine
      CHECK(kept[i]->error < kept[i - 1]->error);
    }
    auto [rc, error] = measure(kept[i]->settings, x, w);
    CHECK(kept[i]->remaining_ratio == doctest::Approx(rc));
    CHECK(kept[i]->error == doctest::Approx(error).epsilon(1e-3));
  }
  CHECK(kept.front()->remaining_ratio == min_rc);  // the coarsest passing candidate
  CHECK(kept.back()->error == min_error);          // the most exact passing candidate
  CHECK(min_rc < 0.5);                             // the data really clusters

  // The calibrated ladder survives a resume without re-calibrating.
  s.on_epoch_start(1);
  ReuseScheduler resumed(cfg, kNames, bases({true, false, false}), 4);
  resumed.load_state(Json::parse(s.state().dump()));
  CHECK_FALSE(resumed.needs_calibration(0));
  CHECK(resumed.rung(0) == 1);
  REQUIRE(resumed.ladder(0).size() == ladder.size());
  for (size_t r = 0; r < ladder.size(); ++r) {
    CHECK(resumed.ladder(0)[r].L == ladder[r].L);
    CHECK(resumed.ladder(0)[r].H == ladder[r].H);
    CHECK(resumed.ladder(0)[r].enabled == ladder[r].enabled);
    CHECK(resumed.ladder(0)[r].seed == ladder[r].seed);
  }
}

TEST_CASE("schedule: calibrate with no candidate good enough leaves the layer dense") {
  core::Tensor x = clustered_rows(256, 20, 5);
  core::Tensor w = random_weight(8, 20, 6);
  Json cfg = Json::parse(R"({"auto": {"candidates": {"L": [10, 20], "H": [2, 4]}, "max_error": 1e-9}})");
  ReuseScheduler s(cfg, kNames, bases({true, false, false}), 4);
  s.calibrate(0, x, w);
  CHECK(s.rungs(0) == 1);
  CHECK_FALSE(s.current(0).enabled);
  CHECK(s.calibration(0).size() == 4);
  for (const auto& c : s.calibration(0)) CHECK_FALSE(c.kept);
  CHECK_THROWS_WITH(ReuseScheduler(cfg, kNames, bases({true, false, false}), 4).calibrate(0, x, random_weight(8, 21, 1)),
                    "reuse_schedule: calibrate(conv1): expected X [N, K] and W [M, K], got X [256, 20] and W [8, 21]");
}

namespace {

double flat(int64_t) { return 1.0; }

// Steps first..last (inclusive, counted from 1 as the trainer does) on a flat loss.
std::vector<Move> run_flat(ReuseScheduler& s, int64_t first, int64_t last, int64_t epoch = 0) {
  return run_steps(s, first, last + 1, epoch, flat);
}

Json warmup_config(int64_t steps) {
  Json cfg = plateau_config(20);
  cfg["dense_first_steps"] = steps;
  return cfg;
}

}  // namespace

TEST_CASE("schedule: a dense warm-up holds every layer dense, then starts the ladder where it stands") {
  // Steps are counted from 1 as the trainer does (on_step gets the steps done).
  // A flat loss would close a plateau at step 20 (windows 1-10, 11-20); during
  // the warm-up nothing is windowed, so the first plateau is the second window
  // after step 30: steps 31-40, 41-50.
  ReuseScheduler s(warmup_config(30), kNames, bases({false, true, false}), 10);
  REQUIRE(s.active());
  CHECK(s.warming_up());
  CHECK_FALSE(s.current(0).enabled);
  CHECK_FALSE(s.current(1).enabled);
  CHECK(s.rung(0) == 0);
  CHECK(s.describe().find("conv1: qproj L=20 H=4 -> L=10 H=8 -> dense (now rung 0) [dense for the first 30 steps]") !=
        std::string::npos);
  CHECK(s.on_epoch_start(0).empty());
  CHECK(run_flat(s, 1, 29).empty());
  CHECK(s.warming_up());
  CHECK_FALSE(s.current(0).enabled);

  auto events = s.on_step(0, 30, 1.0);
  REQUIRE(events.size() == 2);
  CHECK(describe(events[0]) == "epoch 0 step 30: conv1 rung -1 -> 0 (warmup_end): " + describe(s.current(0)));
  CHECK(events[1].layer == "conv2");
  CHECK(events[1].rung_from == -1);
  CHECK(events[1].rung_to == 0);
  CHECK_FALSE(s.warming_up());
  CHECK(s.current(0).enabled);
  CHECK(s.current(0).L == 20);
  CHECK(s.current(0).H == 4);
  CHECK(s.current(1).enabled);
  CHECK_FALSE(s.current(2).enabled);  // not scheduled: its base, untouched

  std::vector<Move> expected = {{50, "conv1", 0, 1, "plateau"}, {50, "conv2", 0, 1, "plateau"}};
  CHECK(run_flat(s, 31, 59) == expected);
}

TEST_CASE("schedule: without a warm-up the same flat loss moves at step 20") {
  // The counterpart of the case above, so its step 50 is the warm-up's doing.
  ReuseScheduler s(warmup_config(0), kNames, bases({false, true, false}), 10);
  CHECK_FALSE(s.warming_up());
  CHECK(s.current(0).enabled);
  std::vector<Move> expected = {{20, "conv1", 0, 1, "plateau"}, {20, "conv2", 0, 1, "plateau"}};
  CHECK(run_flat(s, 1, 29) == expected);
}

TEST_CASE("schedule: a warm-up survives a state round trip mid-way") {
  Json cfg = warmup_config(30);
  ReuseScheduler a(cfg, kNames, bases({false, true, false}), 10);
  a.on_epoch_start(0);
  run_flat(a, 1, 15);
  ReuseScheduler b(cfg, kNames, bases({false, true, false}), 10);
  b.load_state(Json::parse(a.state().dump()));
  CHECK(b.warming_up());
  CHECK_FALSE(b.current(0).enabled);
  CHECK(b.state() == a.state());
  auto rest_a = run_flat(a, 16, 60);
  auto rest_b = run_flat(b, 16, 60);
  CHECK(rest_a == rest_b);
  REQUIRE(rest_a.size() == 4);
  CHECK(rest_a[0] == Move{30, "conv1", -1, 0, "warmup_end"});
  CHECK(rest_a[2] == Move{50, "conv1", 0, 1, "plateau"});
}

TEST_CASE("schedule: epoch triggers during a warm-up advance the ladder; the dense tail ends it silently") {
  Json cfg = warmup_config(100);
  cfg.erase("plateau");
  cfg["epochs"] = {1};
  ReuseScheduler s(cfg, kNames, bases({false, true, false}), 3);
  s.on_epoch_start(0);
  run_flat(s, 1, 40);
  auto moved = s.on_epoch_start(1);
  REQUIRE(moved.size() == 2);  // conv1 0 -> 1, conv2 0 -> 1 (dense: its ladder is [base, dense])
  CHECK(moved[0].reason == "epoch");
  CHECK_FALSE(s.current(0).enabled);  // still warming up
  run_flat(s, 41, 99, 1);
  auto ended = s.on_step(1, 100, 1.0);
  // conv2 reached its dense rung during the warm-up: only conv1 leaves it, for rung 1.
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].layer == "conv1");
  CHECK(ended[0].rung_from == -1);
  CHECK(ended[0].rung_to == 1);
  CHECK(s.current(0).enabled);
  CHECK(s.current(0).L == 10);
  CHECK_FALSE(s.current(1).enabled);

  ReuseScheduler t(cfg, kNames, bases({false, true, false}), 2);  // epoch 1 is the dense tail
  t.on_epoch_start(0);
  run_flat(t, 1, 40);
  CHECK(t.on_epoch_start(1).size() == 2);
  CHECK(run_flat(t, 41, 150, 1).empty());  // the warm-up ends with every layer dense already
  CHECK_FALSE(t.current(0).enabled);
}

TEST_CASE("schedule: a negative warm-up is refused") {
  CHECK_THROWS_WITH(ReuseScheduler(warmup_config(-1), kNames, bases({false, true, false}), 3),
                    "reuse_schedule: key 'dense_first_steps' must be >= 0, got -1");
}
