// The adaptive reuse schedule: per reuse layer, a ladder of settings from
// coarse (large L, small H: few clusters, big error) to fine, ending dense.
// Early training tolerates more approximation than late training, so a layer
// starts on its coarsest rung and moves one rung finer when the training loss
// plateaus or at configured epochs; the last `dense_last_epochs` epochs run
// dense so the final model is trained on exact products. Ladders come from the
// config ("layers", "default_ladder") or from a calibration batch ("auto").
// An optional dense warm-up ("dense_first_steps") holds every scheduled layer
// dense for the first steps of the run: a net that sits on its initial loss
// plateau (plain VGG-19) escapes it on exact products, then takes rung 0.
//
// Config section "reuse_schedule" (top level of a run config), see
// docs/reuse-schedule.md for the full reference:
//   {"layers": {"conv1": [{"L": 20, "H": 6}, {"L": 10, "H": 10}, "dense"]},
//    "default_ladder": [...], "auto": {"candidates": {"L": [..], "H": [..]},
//    "max_error": 0.3, "rungs": 3}, "plateau": {"window": 50, "threshold": 0.01,
//    "min_steps": 100}, "epochs": [2, 4], "dense_last_epochs": 1, "dense_first_steps": 0,
//    "enabled": true}
//
// Limits: one loss drives every layer, so a plateau or an epoch trigger moves
// every scheduled layer that is not yet dense one rung finer at once. Moves are
// never coarser; the one exception is the end of the warm-up, where a layer
// leaves dense for the rung its ladder is on (event rung -1 -> r, "warmup_end").
// Plateau windows start after the warm-up; epoch triggers during it advance
// the ladder (the layer still runs dense until the warm-up ends). Plateaus are
// judged on whole windows (tumbling, not sliding), counted from the last move;
// non-finite losses are ignored. The final dense phase starts at epoch
// max(1, total_epochs - dense_last_epochs), so a one-epoch run keeps its reuse
// (documented, the quick reproduction uses two epochs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/tensor.h"
#include "reuse/settings.h"

namespace deja::reuse {

struct ScheduleEvent {
  int64_t epoch = 0;
  // on_step events: the step whose loss closed the plateau window; epoch events:
  // the step after the last one seen (the first step on the new rung).
  int64_t step = 0;
  std::string layer;
  int rung_from = 0, rung_to = 0;
  std::string reason;    // "plateau" | "epoch" | "final_dense" | "warmup_end" (from -1: the warm-up)
  std::string settings;  // describe() of the new rung ("dense" for the dense rung)
};

// The metrics.jsonl record of an event: {"kind": "reuse_event", "epoch", "step",
// "layer", "from", "to", "reason", "settings"}.
core::Json event_to_json(const ScheduleEvent& event);
// One log line: "epoch 2 step 938: conv2 rung 0 -> 1 (epoch): reuse(hash=qproj, L=10, H=8, dx=cluster)".
std::string describe(const ScheduleEvent& event);

// One (L, H[, width]) candidate measured by calibrate().
struct CalibrationCandidate {
  ReuseSettings settings;
  double remaining_ratio = 1.0;  // r_c on the calibration batch
  double error = 0.0;            // ||Y - Y_dense|| / ||Y_dense||
  double cost = 1.0;             // modelled cost relative to dense: r_c + H/M + overhead
  bool kept = false;             // beats dense, error <= max_error and on the chosen ladder
};

class ReuseScheduler {
 public:
  // layer_names: the reuse-capable layers (in model order); base: each layer's
  // settings from the model config ("reuse" key); only layers whose base
  // settings are enabled (or that are listed in "layers") get a ladder; others
  // stay as they are. A null or absent config, or "enabled": false, gives an
  // inactive scheduler whose current() is the base settings.
  ReuseScheduler(const core::Json& cfg, const std::vector<std::string>& layer_names,
                 const std::vector<ReuseSettings>& base, int64_t total_epochs,
                 const std::string& where = "reuse_schedule");

  bool active() const;
  // Settings of the layer's current rung (enabled=false for dense); the base
  // settings for a layer without a ladder.
  const ReuseSettings& current(size_t layer) const;
  int rung(size_t layer) const;   // 0 = coarsest
  int rungs(size_t layer) const;  // ladder length including "dense"; 0 without a ladder
  size_t layer_count() const { return layers_.size(); }
  const std::string& layer_name(size_t layer) const;
  bool scheduled(size_t layer) const;  // has a ladder
  // The ladder's settings; the last one is dense (enabled=false).
  const std::vector<ReuseSettings>& ladder(size_t layer) const;

  // Call at the start of each epoch (0-based) and after each training step
  // with the step's loss; each returns the events it caused (empty when
  // nothing moved). The trainer then applies current(i) to layer i.
  // on_epoch_start is idempotent for an epoch already started.
  std::vector<ScheduleEvent> on_epoch_start(int64_t epoch);
  std::vector<ScheduleEvent> on_step(int64_t epoch, int64_t step, double loss);

  // Rung per layer, the ladders themselves (so an automatic ladder survives a
  // resume), plateau window contents and counters. load_state throws
  // std::invalid_argument naming the field when the state does not fit.
  core::Json state() const;
  void load_state(const core::Json& state);

  // One line per layer: "conv2: qproj L=20 H=6 -> L=10 H=10 -> dense (now rung 0)".
  std::string describe() const;

  // Automatic ladder (cfg "auto"): measures r_c and the relative error of Y
  // for each candidate on a calibration batch X [N, K] and weight W [M, K]
  // (make_product + forward against a dense forward), keeps the candidates
  // whose modelled cost beats dense and whose error <= max_error, keeps the
  // Pareto front (no candidate both coarser and more exact), orders it coarse
  // (lowest r_c) to fine, picks `rungs` spread over it, appends "dense" and
  // puts the layer on rung 0. No-op for a layer whose ladder is explicit (see
  // needs_calibration: true only until the layer is calibrated, and false after
  // load_state of a calibrated run). With no candidate passing, the ladder is
  // just dense.
  void calibrate(size_t layer, const core::Tensor& x, const core::Tensor& w);
  bool needs_calibration(size_t layer) const;
  // The candidates measured by the last calibrate() of this layer (empty before).
  const std::vector<CalibrationCandidate>& calibration(size_t layer) const;

  // The epoch at which every layer goes dense (total_epochs when never).
  int64_t dense_start_epoch() const { return dense_start_; }
  // True while the dense warm-up lasts (fewer than dense_first_steps steps done).
  bool warming_up() const { return warmup_steps_ > 0 && last_step_ < warmup_steps_; }

 private:
  struct Layer {
    std::string name;
    ReuseSettings base;
    bool scheduled = false;
    bool automatic = false;  // ladder still awaits calibrate() (false once calibrated)
    std::vector<ReuseSettings> ladder;
    int rung = 0;
    std::vector<CalibrationCandidate> candidates;
  };
  struct Candidates {
    std::vector<int64_t> L, H;
    std::vector<double> width;  // empty: keep the base width
  };

  // Moves every scheduled, not-yet-dense layer one rung finer (or to dense
  // when `to_dense`); returns one event per layer moved and restarts the
  // plateau windows.
  std::vector<ScheduleEvent> move_all(int64_t epoch, int64_t step, const std::string& reason,
                                      bool to_dense);
  std::vector<ReuseSettings> parse_ladder(const core::Json& j, const ReuseSettings& base,
                                          const std::string& where) const;
  void reset_windows();
  std::vector<ScheduleEvent> end_warmup(int64_t epoch, int64_t step);
  static ScheduleEvent event_of(const Layer& l, int64_t epoch, int64_t step, int from, const std::string& reason);

  std::string where_;
  bool enabled_ = false;
  std::vector<Layer> layers_;
  int64_t total_epochs_ = 0;
  int64_t dense_last_epochs_ = 1;
  int64_t dense_start_ = 0;
  int64_t warmup_steps_ = 0;  // dense_first_steps
  std::vector<int64_t> epochs_;  // epoch-start triggers
  // Plateau trigger.
  bool plateau_enabled_ = false;
  int64_t window_ = 50;
  double threshold_ = 0.01;
  int64_t min_steps_ = 100;
  // Automatic ladders.
  Candidates candidates_;
  double max_error_ = 0.3;
  int64_t auto_rungs_ = 3;
  double overhead_ = 0.1;
  // Running state (all in state()).
  int64_t steps_on_rung_ = 0;  // steps since the last move (or the start)
  double window_sum_ = 0.0;
  int64_t window_count_ = 0;
  bool has_previous_ = false;
  double previous_average_ = 0.0;
  int64_t last_epoch_started_ = -1;
  int64_t last_step_ = -1;
  bool dense_phase_ = false;
};

}  // namespace deja::reuse
