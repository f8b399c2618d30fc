// Learning-rate schedules: constant, step, multistep, cosine and reduce-on-
// plateau, each with an optional linear warmup. The rate is a pure function of
// the position (epoch + step/steps_per_epoch) except for plateau, whose
// reductions come from validation losses and are kept in state() for resume.
//
// Semantics (epochs are 0-based, t = epoch + step_in_epoch / steps_per_epoch):
//   constant  base
//   step      base * gamma^floor(epoch / step_epochs)
//   multistep base * gamma^(number of milestones <= epoch)
//   cosine    per step, from base at the end of warmup to min_lr at total_epochs:
//             min_lr + (base - min_lr) * (1 + cos(pi * (t - w) / (total - w))) / 2
//   plateau   base * factor^k (floored at min_lr), k = reductions so far; as in
//             PyTorch's ReduceLROnPlateau (mode min, relative threshold): an
//             epoch improves when loss < best * (1 - threshold); the rate is
//             reduced once more than `patience` epochs in a row did not improve.
//   warmup    while t < warmup_epochs the rate above is multiplied by
//             warmup_start_factor + (1 - warmup_start_factor) * t / warmup_epochs.
// Defaults: gamma 0.1, min_lr 0, warmup_epochs 0, warmup_start_factor 0.1,
// patience 10, factor 0.1, threshold 1e-4; step needs step_epochs, multistep
// needs milestones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_util.h"

namespace deja::core {

class LrSchedule {
 public:
  // cfg: {"type": "constant"|"step"|"multistep"|"cosine"|"plateau", "step_epochs", "gamma",
  //       "milestones": [..], "min_lr", "warmup_epochs", "warmup_start_factor",
  //       "patience", "factor", "threshold"}. Bad or misplaced keys throw
  // std::invalid_argument naming `where`, the key and the value.
  LrSchedule(const Json& cfg, double base_lr, int64_t total_epochs,
             const std::string& where = "lr_schedule");
  double lr(int64_t epoch, int64_t step_in_epoch, int64_t steps_per_epoch) const;  // epoch 0-based
  // Only plateau uses it. Calls for an epoch not after the last one seen are
  // ignored, so replaying an epoch after a resume cannot reduce twice.
  void on_epoch_end(int64_t epoch, double validation_loss);
  Json state() const;
  void load_state(const Json&);  // throws std::invalid_argument on another type's state
  std::string describe() const;

 private:
  std::string where_, type_;
  double base_lr_;
  int64_t total_epochs_;
  int64_t step_epochs_ = 0;
  double gamma_ = 0.1, min_lr_ = 0.0;
  std::vector<int64_t> milestones_;
  double warmup_epochs_ = 0.0, warmup_start_factor_ = 0.1;
  int64_t patience_ = 10;
  double factor_ = 0.1, threshold_ = 1e-4;
  // plateau state
  double best_;  // +inf until the first epoch ends
  int64_t bad_epochs_ = 0, reductions_ = 0, last_epoch_seen_ = -1;
};

}  // namespace deja::core
