// Learning-rate schedules; the formulas are in lr_schedule.h.
#include "core/lr_schedule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <stdexcept>

namespace deja::core {

namespace {

const std::vector<std::string> kAllKeys = {"type", "step_epochs", "gamma", "milestones", "min_lr",
                                           "warmup_epochs", "warmup_start_factor", "patience", "factor",
                                           "threshold"};

std::vector<std::string> keys_for(const std::string& type) {
  std::vector<std::string> keys = {"type", "warmup_epochs", "warmup_start_factor"};
  if (type == "step") keys.insert(keys.end(), {"step_epochs", "gamma"});
  if (type == "multistep") keys.insert(keys.end(), {"milestones", "gamma"});
  if (type == "cosine") keys.insert(keys.end(), {"min_lr"});
  if (type == "plateau") keys.insert(keys.end(), {"patience", "factor", "threshold", "min_lr"});
  return keys;
}

[[noreturn]] void bad_value(const std::string& where, const std::string& key, const std::string& expected,
                            const Json& v) {
  throw std::invalid_argument(where + ": key '" + key + "' must be " + expected + ", got " + v.dump());
}

double read_checked(const Json& cfg, const std::string& key, double fallback, const std::string& where,
                    const std::function<bool(double)>& ok, const std::string& expected) {
  if (!cfg.contains(key)) return fallback;
  const Json& v = cfg.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || !ok(v.get<double>())) bad_value(where, key, expected, v);
  return v.get<double>();
}

int64_t read_count(const Json& cfg, const std::string& key, int64_t fallback, const std::string& where,
                   int64_t minimum, const std::string& expected) {
  if (!cfg.contains(key)) return fallback;
  const Json& v = cfg.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < minimum) bad_value(where, key, expected, v);
  return v.get<int64_t>();
}

}  // namespace

LrSchedule::LrSchedule(const Json& cfg, double base_lr, int64_t total_epochs, const std::string& where)
    : where_(where), base_lr_(base_lr), total_epochs_(total_epochs),
      best_(std::numeric_limits<double>::infinity()) {
  reject_unknown_keys(cfg, kAllKeys, where);
  type_ = read_string(cfg, "type", "constant", where);
  if (type_ != "constant" && type_ != "step" && type_ != "multistep" && type_ != "cosine" && type_ != "plateau")
    throw std::invalid_argument(where + ": key 'type' must be one of constant, step, multistep, cosine, plateau, got \"" +
                                type_ + "\"");
  const auto allowed = keys_for(type_);
  for (const auto& item : cfg.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      throw std::invalid_argument(where + ": key '" + item.key() + "' does not apply to type '" + type_ + "'");
  if (!std::isfinite(base_lr) || base_lr <= 0)
    throw std::invalid_argument(fmt::format("{}: base learning rate must be positive, got {}", where, base_lr));
  if (total_epochs < 1)
    throw std::invalid_argument(fmt::format("{}: total epochs must be positive, got {}", where, total_epochs));

  if (type_ == "step") {
    if (!cfg.contains("step_epochs"))
      throw std::invalid_argument(where + ": key 'step_epochs' is required for type 'step'");
    step_epochs_ = read_count(cfg, "step_epochs", 0, where, 1, "a positive integer");
  }
  if (type_ == "multistep") {
    if (!cfg.contains("milestones"))
      throw std::invalid_argument(where + ": key 'milestones' is required for type 'multistep'");
    const Json& m = cfg.at("milestones");
    bool ok = m.is_array() && !m.empty();
    for (size_t i = 0; ok && i < m.size(); ++i) {
      ok = m[i].is_number_integer() && m[i].get<int64_t>() >= 1 &&
           (i == 0 || m[i].get<int64_t>() > m[i - 1].get<int64_t>());
      if (ok) milestones_.push_back(m[i].get<int64_t>());
    }
    if (!ok) bad_value(where, "milestones", "a non-empty list of increasing positive integers", m);
  }
  auto unit_half_open = [](double x) { return x > 0 && x <= 1; };
  gamma_ = read_checked(cfg, "gamma", gamma_, where, unit_half_open, "a number in (0, 1]");
  min_lr_ = read_checked(cfg, "min_lr", min_lr_, where, [&](double x) { return x >= 0 && x < base_lr; },
                         fmt::format("a non-negative number below the base lr {}", base_lr));
  warmup_epochs_ = read_checked(cfg, "warmup_epochs", warmup_epochs_, where,
                                [&](double x) { return x >= 0 && x < static_cast<double>(total_epochs); },
                                fmt::format("a non-negative number below the run's {} epochs", total_epochs));
  warmup_start_factor_ = read_checked(cfg, "warmup_start_factor", warmup_start_factor_, where, unit_half_open,
                                      "a number in (0, 1]");
  patience_ = read_count(cfg, "patience", patience_, where, 0, "a non-negative integer");
  factor_ = read_checked(cfg, "factor", factor_, where, [](double x) { return x > 0 && x < 1; },
                         "a number in (0, 1)");
  threshold_ = read_checked(cfg, "threshold", threshold_, where, [](double x) { return x >= 0 && x < 1; },
                            "a number in [0, 1)");
}

double LrSchedule::lr(int64_t epoch, int64_t step_in_epoch, int64_t steps_per_epoch) const {
  if (steps_per_epoch < 1 || epoch < 0 || step_in_epoch < 0 || step_in_epoch >= steps_per_epoch)
    throw std::invalid_argument(fmt::format("{}: bad position epoch {}, step {} of {}", where_, epoch,
                                            step_in_epoch, steps_per_epoch));
  const double t = static_cast<double>(epoch) +
                   static_cast<double>(step_in_epoch) / static_cast<double>(steps_per_epoch);
  double rate = base_lr_;
  if (type_ == "step") {
    rate = base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_epochs_));
  } else if (type_ == "multistep") {
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
    rate = base_lr_ * std::pow(gamma_, static_cast<double>(passed));
  } else if (type_ == "cosine") {
    const double span = static_cast<double>(total_epochs_) - warmup_epochs_;
    const double progress = std::clamp((t - warmup_epochs_) / span, 0.0, 1.0);
    rate = min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  } else if (type_ == "plateau") {
    rate = std::max(min_lr_, base_lr_ * std::pow(factor_, static_cast<double>(reductions_)));
  }
  if (t < warmup_epochs_) rate *= warmup_start_factor_ + (1.0 - warmup_start_factor_) * t / warmup_epochs_;
  return rate;
}

void LrSchedule::on_epoch_end(int64_t epoch, double validation_loss) {
  if (type_ != "plateau" || epoch <= last_epoch_seen_) return;
  last_epoch_seen_ = epoch;
  // NaN compares false, so a NaN loss counts as no improvement.
  if (validation_loss < best_ * (1.0 - threshold_)) {
    best_ = validation_loss;
    bad_epochs_ = 0;
  } else if (++bad_epochs_ > patience_) {
    ++reductions_;
    bad_epochs_ = 0;
  }
}

Json LrSchedule::state() const {
  Json s = {{"type", type_}, {"bad_epochs", bad_epochs_}, {"reductions", reductions_},
            {"last_epoch_seen", last_epoch_seen_}};
  s["best"] = std::isfinite(best_) ? Json(best_) : Json(nullptr);  // JSON has no infinity
  return s;
}

void LrSchedule::load_state(const Json& s) {
  if (!s.is_object() || s.value("type", "") != type_)
    throw std::invalid_argument(where_ + ": saved schedule state is not of type '" + type_ + "': " + s.dump());
  const std::string w = where_ + " state";
  reject_unknown_keys(s, {"type", "bad_epochs", "reductions", "last_epoch_seen", "best"}, w);
  bad_epochs_ = read_int(s, "bad_epochs", 0, w);
  reductions_ = read_int(s, "reductions", 0, w);
  last_epoch_seen_ = read_int(s, "last_epoch_seen", -1, w);
  best_ = s.contains("best") && !s.at("best").is_null() ? read_number(s, "best", 0, w)
                                                         : std::numeric_limits<double>::infinity();
}

std::string LrSchedule::describe() const {
  std::string s = fmt::format("{}(base_lr={}", type_, base_lr_);
  if (type_ == "step") s += fmt::format(", step_epochs={}, gamma={}", step_epochs_, gamma_);
  if (type_ == "multistep") s += fmt::format(", milestones=[{}], gamma={}", fmt::join(milestones_, ", "), gamma_);
  if (type_ == "cosine") s += fmt::format(", min_lr={}, epochs={}", min_lr_, total_epochs_);
  if (type_ == "plateau")
    s += fmt::format(", patience={}, factor={}, threshold={}, min_lr={}", patience_, factor_, threshold_, min_lr_);
  if (warmup_epochs_ > 0)
    s += fmt::format(", warmup_epochs={}, warmup_start_factor={}", warmup_epochs_, warmup_start_factor_);
  return s + ")";
}

}  // namespace deja::core
