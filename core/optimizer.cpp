// Optimizer options checks and the JSON factory. The update loops live in
// sgd.cpp and adam.cpp.
#include "core/optimizer.h"

#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <functional>
#include <stdexcept>

namespace deja::core {

namespace {

// Options checks (PyTorch style: "sgd: lr must be a positive number, got -1").
void require(bool ok, const char* who, const char* field, const char* expected, double value) {
  if (!ok) throw std::invalid_argument(fmt::format("{}: {} must be {}, got {}", who, field, expected, value));
}

bool in_unit_open(double x) { return std::isfinite(x) && x >= 0.0 && x < 1.0; }

// Reads a number that must satisfy `ok`; the one message covers both a wrong
// type and a bad value: "optimizer: key 'lr' must be a positive number, got -1".
double read_checked(const Json& cfg, const std::string& key, double fallback, const std::string& where,
                    const std::function<bool(double)>& ok, const char* expected) {
  if (!cfg.contains(key)) return fallback;
  const Json& v = cfg.at(key);
  if (!v.is_number() || !ok(v.get<double>()))
    throw std::invalid_argument(where + ": key '" + key + "' must be " + expected + ", got " + v.dump());
  return v.get<double>();
}

const std::vector<std::string> kAllKeys = {"type", "lr", "momentum", "nesterov", "dampening",
                                           "weight_decay", "betas", "eps"};
const std::vector<std::string> kSgdKeys = {"type", "lr", "momentum", "nesterov", "dampening", "weight_decay"};
const std::vector<std::string> kAdamKeys = {"type", "lr", "betas", "eps", "weight_decay"};

std::string read_type(const Json& cfg, const std::string& where) {
  std::string type = read_string(cfg, "type", "sgd", where);
  if (type != "sgd" && type != "adam" && type != "adamw")
    throw std::invalid_argument(where + ": key 'type' must be one of sgd, adam, adamw, got \"" + type + "\"");
  return type;
}

}  // namespace

void SgdOptions::validate() const {
  require(std::isfinite(lr) && lr > 0, "sgd", "lr", "a positive number", lr);
  require(in_unit_open(momentum), "sgd", "momentum", "a number in [0, 1)", momentum);
  require(std::isfinite(dampening) && dampening >= 0 && dampening <= 1, "sgd", "dampening",
          "a number in [0, 1]", dampening);
  require(std::isfinite(weight_decay) && weight_decay >= 0, "sgd", "weight_decay", "a non-negative number",
          weight_decay);
  if (nesterov && (momentum <= 0 || dampening != 0))
    throw std::invalid_argument(fmt::format(
        "sgd: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}", momentum,
        dampening));
}

void AdamOptions::validate() const {
  const char* who = decoupled ? "adamw" : "adam";
  require(std::isfinite(lr) && lr > 0, who, "lr", "a positive number", lr);
  require(in_unit_open(beta1), who, "beta1", "a number in [0, 1)", beta1);
  require(in_unit_open(beta2), who, "beta2", "a number in [0, 1)", beta2);
  require(std::isfinite(eps) && eps > 0, who, "eps", "a positive number", eps);
  require(std::isfinite(weight_decay) && weight_decay >= 0, who, "weight_decay", "a non-negative number",
          weight_decay);
}

std::unique_ptr<Optimizer> make_optimizer(const Json& cfg, int64_t arena_size, const std::string& where) {
  reject_unknown_keys(cfg, kAllKeys, where);
  const std::string type = read_type(cfg, where);
  const auto& allowed = type == "sgd" ? kSgdKeys : kAdamKeys;
  for (const auto& item : cfg.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      throw std::invalid_argument(where + ": key '" + item.key() + "' does not apply to type '" + type + "'");

  auto positive = [](double x) { return std::isfinite(x) && x > 0; };
  auto non_negative = [](double x) { return std::isfinite(x) && x >= 0; };
  if (type == "sgd") {
    SgdOptions o;
    o.lr = read_checked(cfg, "lr", o.lr, where, positive, "a positive number");
    o.momentum = read_checked(cfg, "momentum", o.momentum, where, in_unit_open, "a number in [0, 1)");
    o.dampening = read_checked(cfg, "dampening", o.dampening, where,
                               [](double x) { return x >= 0 && x <= 1; }, "a number in [0, 1]");
    o.weight_decay = read_checked(cfg, "weight_decay", o.weight_decay, where, non_negative,
                                  "a non-negative number");
    o.nesterov = read_bool(cfg, "nesterov", o.nesterov, where);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      throw std::invalid_argument(where + ": 'nesterov' needs 'momentum' > 0 and 'dampening' 0");
    return make_sgd(o, arena_size);
  }
  AdamOptions o;
  o.decoupled = type == "adamw";
  if (o.decoupled) o.weight_decay = 0.01;  // PyTorch's AdamW default
  o.lr = read_checked(cfg, "lr", o.lr, where, positive, "a positive number");
  if (cfg.contains("betas")) {
    const Json& b = cfg.at("betas");
    if (!b.is_array() || b.size() != 2 || !b[0].is_number() || !b[1].is_number() ||
        !in_unit_open(b[0].get<double>()) || !in_unit_open(b[1].get<double>()))
      throw std::invalid_argument(where + ": key 'betas' must be a list of two numbers in [0, 1), got " + b.dump());
    o.beta1 = b[0].get<double>();
    o.beta2 = b[1].get<double>();
  }
  o.eps = read_checked(cfg, "eps", o.eps, where, positive, "a positive number");
  o.weight_decay = read_checked(cfg, "weight_decay", o.weight_decay, where, non_negative,
                                "a non-negative number");
  return make_adam(o, arena_size);
}

double optimizer_base_lr(const Json& cfg) {
  const std::string type = read_type(cfg, "optimizer");
  const double fallback = type == "sgd" ? SgdOptions{}.lr : AdamOptions{}.lr;
  return read_number(cfg, "lr", fallback, "optimizer");
}

}  // namespace deja::core
