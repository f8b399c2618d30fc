// The adaptive reuse schedule (see schedule.h): ladder parsing and validation,
// plateau and epoch triggers, the final dense phase, checkpoint state, and the
// automatic ladder from a calibration batch.
#include "reuse/schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace deja::reuse {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

ReuseSettings dense_of(const ReuseSettings& base) {
  ReuseSettings d = base;
  d.enabled = false;
  return d;
}

std::string rung_text(const ReuseSettings& s) { return s.enabled ? describe(s) : "dense"; }

// "qproj L=20 H=6" for the first rung, "L=10 H=10" after it when the family is
// unchanged; width only when set and used (lowrank has no buckets); the
// keep_projection and lowrank modes by name.
std::string short_rung(const ReuseSettings& s, const ReuseSettings* previous) {
  if (!s.enabled) return "dense";
  std::ostringstream out;
  if (!previous || !previous->enabled || previous->hash != s.hash) out << s.hash << " ";
  if (s.lowrank) out << "lowrank ";
  out << "L=" << s.L << " H=" << s.H;
  if (s.width > 0 && !s.lowrank) out << " w=" << s.width;
  if (s.keep_projection) out << " keep_projection";
  return out.str();
}

template <typename T>
std::vector<T> read_list(const core::Json& object, const std::string& key, const std::string& where,
                         const char* expected) {
  std::vector<T> out;
  if (!object.contains(key)) return out;
  const core::Json& v = object.at(key);
  bool ok = v.is_array() && !v.empty();
  if (ok) {
    for (const auto& item : v) {
      if constexpr (std::is_integral_v<T>) {
        ok = ok && item.is_number_integer();
      } else {
        ok = ok && item.is_number();
      }
    }
  }
  if (!ok)
    throw std::invalid_argument(where + ": key '" + key + "' must be a non-empty list of " + expected +
                                ", got " + v.dump());
  for (const auto& item : v) out.push_back(item.get<T>());
  return out;
}

double relative_error(const core::Tensor& y, const core::Tensor& reference) {
  double diff = 0.0, norm = 0.0;
  const float* a = y.data();
  const float* b = reference.data();
  for (int64_t i = 0; i < reference.numel(); ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

}  // namespace

core::Json event_to_json(const ScheduleEvent& e) {
  return {{"kind", "reuse_event"}, {"epoch", e.epoch},   {"step", e.step},         {"layer", e.layer},
          {"from", e.rung_from},   {"to", e.rung_to},    {"reason", e.reason},     {"settings", e.settings}};
}

std::string describe(const ScheduleEvent& e) {
  return "epoch " + std::to_string(e.epoch) + " step " + std::to_string(e.step) + ": " + e.layer + " rung " +
         std::to_string(e.rung_from) + " -> " + std::to_string(e.rung_to) + " (" + e.reason + "): " + e.settings;
}

ReuseScheduler::ReuseScheduler(const core::Json& cfg, const std::vector<std::string>& layer_names,
                               const std::vector<ReuseSettings>& base, int64_t total_epochs,
                               const std::string& where)
    : where_(where), total_epochs_(total_epochs) {
  if (layer_names.size() != base.size())
    throw std::invalid_argument(where + ": " + std::to_string(layer_names.size()) + " layer names but " +
                                std::to_string(base.size()) + " base settings");
  for (size_t i = 0; i < layer_names.size(); ++i) {
    Layer layer;
    layer.name = layer_names[i];
    layer.base = base[i];
    layers_.push_back(std::move(layer));
  }
  dense_start_ = total_epochs_;
  if (cfg.is_null()) return;
  core::reject_unknown_keys(cfg, {"layers", "default_ladder", "auto", "plateau", "epochs",
                                  "dense_last_epochs", "dense_first_steps", "enabled"},
                            where);
  enabled_ = core::read_bool(cfg, "enabled", true, where);

  dense_last_epochs_ = core::read_int(cfg, "dense_last_epochs", 1, where);
  if (dense_last_epochs_ < 0)
    throw std::invalid_argument(where + ": key 'dense_last_epochs' must be >= 0, got " +
                                std::to_string(dense_last_epochs_));
  // At least one reuse epoch: a run shorter than the dense tail keeps reuse.
  if (dense_last_epochs_ > 0) dense_start_ = std::max<int64_t>(1, total_epochs_ - dense_last_epochs_);

  warmup_steps_ = core::read_int(cfg, "dense_first_steps", 0, where);
  if (warmup_steps_ < 0)
    throw std::invalid_argument(where + ": key 'dense_first_steps' must be >= 0, got " +
                                std::to_string(warmup_steps_));

  epochs_ = read_list<int64_t>(cfg, "epochs", where, "epochs (integers)");
  for (size_t i = 0; i < epochs_.size(); ++i) {
    if (epochs_[i] < 1)
      throw std::invalid_argument(where + ".epochs[" + std::to_string(i) + "]: an epoch trigger must be >= 1, got " +
                                  std::to_string(epochs_[i]));
    if (i > 0 && epochs_[i] <= epochs_[i - 1])
      throw std::invalid_argument(where + ".epochs[" + std::to_string(i) + "]: epoch triggers must increase, got " +
                                  std::to_string(epochs_[i]) + " after " + std::to_string(epochs_[i - 1]));
  }

  if (cfg.contains("plateau")) {
    const std::string pw = where + ".plateau";
    const core::Json& p = cfg.at("plateau");
    core::reject_unknown_keys(p, {"window", "threshold", "min_steps"}, pw);
    plateau_enabled_ = true;
    window_ = core::read_int(p, "window", 50, pw);
    threshold_ = core::read_number(p, "threshold", 0.01, pw);
    min_steps_ = core::read_int(p, "min_steps", 100, pw);
    if (window_ < 1) throw std::invalid_argument(pw + ": key 'window' must be >= 1, got " + std::to_string(window_));
    if (!(threshold_ >= 0 && std::isfinite(threshold_)))
      throw std::invalid_argument(pw + ": key 'threshold' must be a finite number >= 0, got " +
                                  p.at("threshold").dump());
    if (min_steps_ < 0)
      throw std::invalid_argument(pw + ": key 'min_steps' must be >= 0, got " + std::to_string(min_steps_));
  }

  const bool has_default = cfg.contains("default_ladder");
  const bool has_auto = cfg.contains("auto");
  if (has_default && has_auto)
    throw std::invalid_argument(where + ": give either 'default_ladder' or 'auto', not both");
  if (has_auto) {
    const std::string aw = where + ".auto";
    const core::Json& a = cfg.at("auto");
    core::reject_unknown_keys(a, {"candidates", "max_error", "rungs", "overhead"}, aw);
    max_error_ = core::read_number(a, "max_error", 0.3, aw);
    auto_rungs_ = core::read_int(a, "rungs", 3, aw);
    overhead_ = core::read_number(a, "overhead", 0.1, aw);
    if (!(max_error_ > 0)) throw std::invalid_argument(aw + ": key 'max_error' must be > 0, got " + a.at("max_error").dump());
    if (auto_rungs_ < 1) throw std::invalid_argument(aw + ": key 'rungs' must be >= 1, got " + std::to_string(auto_rungs_));
    if (!(overhead_ >= 0)) throw std::invalid_argument(aw + ": key 'overhead' must be >= 0, got " + a.at("overhead").dump());
    if (!a.contains("candidates")) throw std::invalid_argument(aw + ": missing key 'candidates'");
    const std::string cw = aw + ".candidates";
    const core::Json& c = a.at("candidates");
    core::reject_unknown_keys(c, {"L", "H", "width"}, cw);
    candidates_.L = read_list<int64_t>(c, "L", cw, "integers");
    candidates_.H = read_list<int64_t>(c, "H", cw, "integers");
    candidates_.width = read_list<double>(c, "width", cw, "numbers");
    if (candidates_.L.empty()) throw std::invalid_argument(cw + ": missing key 'L'");
    if (candidates_.H.empty()) throw std::invalid_argument(cw + ": missing key 'H'");
    // Validate each candidate once, against a neutral base, so a bad value
    // fails at startup rather than at calibration.
    for (int64_t l : candidates_.L)
      for (int64_t h : candidates_.H) {
        ReuseSettings s;
        s.enabled = true;
        s.L = l;
        s.H = h;
        s.validate(cw);
      }
  }

  std::vector<std::string> names = layer_names;
  std::vector<bool> listed(layers_.size(), false);
  if (cfg.contains("layers")) {
    const std::string lw = where + ".layers";
    const core::Json& lj = cfg.at("layers");
    if (!lj.is_object()) throw std::invalid_argument(lw + ": expected an object, got " + lj.dump());
    for (const auto& [name, ladder] : lj.items()) {
      auto it = std::find(names.begin(), names.end(), name);
      if (it == names.end()) {
        std::string message = lw + ": '" + name + "' is not a reuse-capable layer";
        std::string hint = core::closest_match(name, names);
        if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
        message += "; reuse-capable layers: " + (names.empty() ? std::string("none") : join_names(names));
        throw std::invalid_argument(message);
      }
      size_t i = static_cast<size_t>(it - names.begin());
      listed[i] = true;
      layers_[i].ladder = parse_ladder(ladder, layers_[i].base, lw + "." + name);
      layers_[i].scheduled = true;
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = layers_[i];
    if (listed[i] || !layer.base.enabled) continue;
    layer.scheduled = true;
    if (has_default) {
      layer.ladder = parse_ladder(cfg.at("default_ladder"), layer.base, where + ".default_ladder");
    } else {
      // Until calibrate() runs (auto), or with neither given: base, then dense.
      layer.ladder = {layer.base, dense_of(layer.base)};
      layer.automatic = has_auto;
    }
  }
}

std::vector<ReuseSettings> ReuseScheduler::parse_ladder(const core::Json& j, const ReuseSettings& base,
                                                        const std::string& where) const {
  if (!j.is_array() || j.empty())
    throw std::invalid_argument(where + ": expected a non-empty list of rungs (settings objects or \"dense\"), got " +
                                j.dump());
  std::vector<ReuseSettings> ladder;
  ReuseSettings on = base;
  on.enabled = true;
  for (size_t r = 0; r < j.size(); ++r) {
    const std::string rw = where + "[" + std::to_string(r) + "]";
    const core::Json& item = j[r];
    if (item.is_string()) {
      if (item.get<std::string>() != "dense")
        throw std::invalid_argument(rw + ": a rung is a settings object or \"dense\", got " + item.dump());
      if (r + 1 != j.size()) throw std::invalid_argument(rw + ": \"dense\" must be the last rung");
      ladder.push_back(dense_of(base));
      continue;
    }
    if (!item.is_object())
      throw std::invalid_argument(rw + ": a rung is a settings object or \"dense\", got " + item.dump());
    ReuseSettings s = settings_from_json(item, on, rw);
    if (!s.enabled) {
      if (r + 1 != j.size()) throw std::invalid_argument(rw + ": a disabled (dense) rung must be the last rung");
      s = dense_of(base);
    } else {
      s.validate(rw);
    }
    ladder.push_back(s);
  }
  if (ladder.back().enabled) ladder.push_back(dense_of(base));  // the ladder always ends dense
  return ladder;
}

bool ReuseScheduler::active() const {
  if (!enabled_) return false;
  return std::any_of(layers_.begin(), layers_.end(), [](const Layer& l) { return l.scheduled; });
}

const ReuseSettings& ReuseScheduler::current(size_t layer) const {
  const Layer& l = layers_.at(layer);
  if (!enabled_ || !l.scheduled) return l.base;
  if (warming_up()) return l.ladder.back();  // the dense rung
  return l.ladder[static_cast<size_t>(l.rung)];
}

int ReuseScheduler::rung(size_t layer) const { return layers_.at(layer).rung; }

int ReuseScheduler::rungs(size_t layer) const {
  const Layer& l = layers_.at(layer);
  return (enabled_ && l.scheduled) ? static_cast<int>(l.ladder.size()) : 0;
}

const std::string& ReuseScheduler::layer_name(size_t layer) const { return layers_.at(layer).name; }

bool ReuseScheduler::scheduled(size_t layer) const { return enabled_ && layers_.at(layer).scheduled; }

const std::vector<ReuseSettings>& ReuseScheduler::ladder(size_t layer) const { return layers_.at(layer).ladder; }

void ReuseScheduler::reset_windows() {
  steps_on_rung_ = 0;
  window_sum_ = 0.0;
  window_count_ = 0;
  has_previous_ = false;
  previous_average_ = 0.0;
}

// The event of a layer that has just arrived on its current rung.
ScheduleEvent ReuseScheduler::event_of(const Layer& l, int64_t epoch, int64_t step, int from,
                                       const std::string& reason) {
  ScheduleEvent e;
  e.epoch = epoch;
  e.step = step;
  e.layer = l.name;
  e.rung_from = from;
  e.rung_to = l.rung;
  e.reason = reason;
  e.settings = rung_text(l.ladder[static_cast<size_t>(l.rung)]);
  return e;
}

std::vector<ScheduleEvent> ReuseScheduler::move_all(int64_t epoch, int64_t step, const std::string& reason,
                                                    bool to_dense) {
  std::vector<ScheduleEvent> events;
  for (Layer& l : layers_) {
    if (!l.scheduled) continue;
    int last = static_cast<int>(l.ladder.size()) - 1;
    if (l.rung >= last) continue;
    const int from = l.rung;
    l.rung = to_dense ? last : l.rung + 1;
    events.push_back(event_of(l, epoch, step, from, reason));
  }
  // The loss jumps when the products change: compare windows only within a rung.
  if (!events.empty()) reset_windows();
  return events;
}

std::vector<ScheduleEvent> ReuseScheduler::on_epoch_start(int64_t epoch) {
  if (!active() || epoch <= last_epoch_started_) return {};
  last_epoch_started_ = epoch;
  const int64_t step = last_step_ + 1;
  if (dense_last_epochs_ > 0 && epoch >= dense_start_) {
    dense_phase_ = true;
    return move_all(epoch, step, "final_dense", /*to_dense=*/true);
  }
  if (std::find(epochs_.begin(), epochs_.end(), epoch) != epochs_.end())
    return move_all(epoch, step, "epoch", /*to_dense=*/false);
  return {};
}

std::vector<ScheduleEvent> ReuseScheduler::on_step(int64_t epoch, int64_t step, double loss) {
  if (!active()) return {};
  const bool was_warming_up = warming_up();
  last_step_ = step;
  if (was_warming_up) return warming_up() ? std::vector<ScheduleEvent>{} : end_warmup(epoch, step);
  if (dense_phase_ || !plateau_enabled_ || !std::isfinite(loss)) return {};
  ++steps_on_rung_;
  window_sum_ += loss;
  ++window_count_;
  if (window_count_ < window_) return {};
  const double average = window_sum_ / static_cast<double>(window_count_);
  window_sum_ = 0.0;
  window_count_ = 0;
  bool plateau = false;
  if (has_previous_ && steps_on_rung_ >= min_steps_) {
    double scale = std::max(std::abs(previous_average_), 1e-12);
    plateau = (previous_average_ - average) / scale < threshold_;
  }
  has_previous_ = true;
  previous_average_ = average;
  if (!plateau) return {};
  return move_all(epoch, step, "plateau", /*to_dense=*/false);
}

// Every scheduled layer not already dense leaves the warm-up for the rung its
// ladder is on; the plateau windows start now.
std::vector<ScheduleEvent> ReuseScheduler::end_warmup(int64_t epoch, int64_t step) {
  std::vector<ScheduleEvent> events;
  reset_windows();
  for (const Layer& l : layers_) {
    if (!l.scheduled || l.rung + 1 >= static_cast<int>(l.ladder.size())) continue;
    events.push_back(event_of(l, epoch, step, /*from=*/-1, "warmup_end"));
  }
  return events;
}

core::Json ReuseScheduler::state() const {
  core::Json layers = core::Json::array();
  for (const Layer& l : layers_) {
    core::Json ladder = core::Json::array();
    for (const auto& s : l.ladder) ladder.push_back(s.enabled ? settings_to_json(s) : core::Json("dense"));
    layers.push_back({{"name", l.name}, {"scheduled", l.scheduled}, {"automatic", l.automatic},
                      {"rung", l.rung}, {"ladder", ladder}});
  }
  return {{"version", 1},
          {"layers", layers},
          {"steps_on_rung", steps_on_rung_},
          {"window_sum", window_sum_},
          {"window_count", window_count_},
          {"has_previous", has_previous_},
          {"previous_average", previous_average_},
          {"last_epoch_started", last_epoch_started_},
          {"last_step", last_step_},
          {"dense_phase", dense_phase_}};
}

void ReuseScheduler::load_state(const core::Json& state) {
  const std::string sw = where_ + " state";
  core::reject_unknown_keys(state, {"version", "layers", "steps_on_rung", "window_sum", "window_count",
                                    "has_previous", "previous_average", "last_epoch_started", "last_step",
                                    "dense_phase"},
                            sw);
  if (core::read_int(state, "version", 0, sw) != 1)
    throw std::invalid_argument(sw + ": unsupported version " + state.value("version", core::Json()).dump());
  if (!state.contains("layers") || !state.at("layers").is_array())
    throw std::invalid_argument(sw + ": key 'layers' must be a list");
  const core::Json& lj = state.at("layers");
  if (lj.size() != layers_.size())
    throw std::invalid_argument(sw + ": " + std::to_string(lj.size()) + " layers saved but the model has " +
                                std::to_string(layers_.size()));
  // Parse everything before changing anything, so a bad state leaves us intact.
  std::vector<Layer> restored = layers_;
  for (size_t i = 0; i < lj.size(); ++i) {
    const std::string lw = sw + ".layers[" + std::to_string(i) + "]";
    const core::Json& item = lj[i];
    core::reject_unknown_keys(item, {"name", "scheduled", "automatic", "rung", "ladder"}, lw);
    std::string name = core::read_string(item, "name", "", lw);
    if (name != layers_[i].name)
      throw std::invalid_argument(lw + ": saved layer '" + name + "' but the model's layer is '" + layers_[i].name + "'");
    Layer& l = restored[i];
    l.scheduled = core::read_bool(item, "scheduled", false, lw);
    l.automatic = core::read_bool(item, "automatic", false, lw);
    l.ladder.clear();
    if (item.contains("ladder") && !item.at("ladder").empty())
      l.ladder = parse_ladder(item.at("ladder"), l.base, lw + ".ladder");
    if (l.scheduled && l.ladder.empty()) throw std::invalid_argument(lw + ": a scheduled layer needs a ladder");
    int64_t r = core::read_int(item, "rung", 0, lw);
    if (r < 0 || (l.scheduled && r >= static_cast<int64_t>(l.ladder.size())))
      throw std::invalid_argument(lw + ": rung " + std::to_string(r) + " is outside the ladder of " +
                                  std::to_string(l.ladder.size()));
    l.rung = static_cast<int>(r);
  }
  layers_ = std::move(restored);
  steps_on_rung_ = core::read_int(state, "steps_on_rung", 0, sw);
  window_sum_ = core::read_number(state, "window_sum", 0.0, sw);
  window_count_ = core::read_int(state, "window_count", 0, sw);
  has_previous_ = core::read_bool(state, "has_previous", false, sw);
  previous_average_ = core::read_number(state, "previous_average", 0.0, sw);
  last_epoch_started_ = core::read_int(state, "last_epoch_started", -1, sw);
  last_step_ = core::read_int(state, "last_step", -1, sw);
  dense_phase_ = core::read_bool(state, "dense_phase", false, sw);
}

std::string ReuseScheduler::describe() const {
  std::ostringstream out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    out << l.name << ": ";
    if (!enabled_ || !l.scheduled) {
      out << rung_text(l.base) << " (not scheduled)";
    } else {
      for (size_t r = 0; r < l.ladder.size(); ++r) {
        if (r) out << " -> ";
        out << short_rung(l.ladder[r], r ? &l.ladder[r - 1] : nullptr);
      }
      out << " (now rung " << l.rung << ")";
      if (warming_up()) out << " [dense for the first " << warmup_steps_ << " steps]";
      if (l.automatic) out << " [awaiting calibration]";
    }
    if (i + 1 < layers_.size()) out << "\n";
  }
  return out.str();
}

bool ReuseScheduler::needs_calibration(size_t layer) const {
  const Layer& l = layers_.at(layer);
  return enabled_ && l.scheduled && l.automatic;
}

const std::vector<CalibrationCandidate>& ReuseScheduler::calibration(size_t layer) const {
  return layers_.at(layer).candidates;
}

void ReuseScheduler::calibrate(size_t layer, const core::Tensor& x, const core::Tensor& w) {
  Layer& l = layers_.at(layer);
  if (!needs_calibration(layer)) return;
  if (x.dim() != 2 || w.dim() != 2 || x.size(1) != w.size(1))
    throw std::invalid_argument(where_ + ": calibrate(" + l.name + "): expected X [N, K] and W [M, K], got X " +
                                core::shape_to_string(x.shape()) + " and W " + core::shape_to_string(w.shape()));
  const int64_t n = x.size(0), m = w.size(0);
  core::Tensor reference = core::Tensor::empty({n, m});
  core::make_dense_product()->forward(x, w, reference, false);

  std::vector<double> widths = candidates_.width;
  if (widths.empty()) widths.push_back(l.base.width);
  std::vector<CalibrationCandidate> measured;
  core::Tensor y = core::Tensor::empty({n, m});
  for (int64_t cl : candidates_.L)
    for (int64_t ch : candidates_.H)
      for (double cw : widths) {
        CalibrationCandidate c;
        c.settings = l.base;
        c.settings.enabled = true;
        c.settings.L = cl;
        c.settings.H = ch;
        c.settings.width = cw;
        auto product = make_product(c.settings);
        product->forward(x, w, y, false);
        c.remaining_ratio = product->stats().mean_remaining_ratio();
        c.error = relative_error(y, reference);
        c.cost = c.remaining_ratio + static_cast<double>(ch) / static_cast<double>(m) + overhead_;
        measured.push_back(c);
      }

  // Passing candidates, coarse (lowest r_c) first; ties by error.
  std::vector<size_t> order;
  for (size_t i = 0; i < measured.size(); ++i)
    if (measured[i].cost < 1.0 && measured[i].error <= max_error_) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (measured[a].remaining_ratio != measured[b].remaining_ratio)
      return measured[a].remaining_ratio < measured[b].remaining_ratio;
    if (measured[a].error != measured[b].error) return measured[a].error < measured[b].error;
    return a < b;
  });
  // Pareto front: walking coarse to fine, keep a candidate only if it is more
  // exact than everything coarser (otherwise a coarser one dominates it).
  std::vector<size_t> front;
  for (size_t i : order)
    if (front.empty() || measured[i].error < measured[front.back()].error) front.push_back(i);
  // `rungs` picks spread evenly from coarsest to finest.
  std::vector<size_t> picked;
  const size_t want = static_cast<size_t>(auto_rungs_);
  if (front.size() <= want) {
    picked = front;
  } else if (want == 1) {
    picked = {front.front()};
  } else {
    for (size_t k = 0; k < want; ++k) {
      size_t idx = (k * (front.size() - 1) + (want - 1) / 2) / (want - 1);
      if (picked.empty() || picked.back() != front[idx]) picked.push_back(front[idx]);
    }
  }
  l.ladder.clear();
  for (size_t i : picked) {
    measured[i].kept = true;
    l.ladder.push_back(measured[i].settings);
  }
  l.ladder.push_back(dense_of(l.base));
  l.rung = 0;
  l.automatic = false;  // calibrated: a resumed run keeps this ladder (state())
  l.candidates = std::move(measured);
}

}  // namespace deja::reuse
