// Optimizers over the whole flat parameter arena: one elementwise loop per
// step (parallel_for, so the result does not depend on the thread count), with
// state tensors the size of the arena that checkpoints save by name. SGD and
// Adam/AdamW follow PyTorch's update rules exactly. Limits: one learning rate
// and one weight decay for every parameter (no per-group settings, so biases
// and batch-norm scales are decayed too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/json_util.h"
#include "core/parameters.h"
#include "core/tensor.h"

namespace deja::core {

class Optimizer {  // updates the whole flat parameter arena (values -= ...) from its grad arena, one loop
 public:
  virtual ~Optimizer() = default;
  // "sgd(lr=0.01, momentum=0.9, nesterov=false, weight_decay=0)"
  virtual std::string describe() const = 0;
  // One update with learning rate `lr` (given by the schedule each step).
  // Throws std::invalid_argument when the arena's size differs from the one the
  // optimizer was made for, or lr is not positive and finite.
  virtual void step(ParameterArena& params, double lr) = 0;
  virtual int64_t steps_taken() const = 0;
  // Named state tensors, each of the arena's size ("sgd.momentum"; "adam.m",
  // "adam.v"), allocated (zeroed) in the constructor so a checkpoint can be
  // loaded into them before the first step. Plain SGD has none.
  virtual std::vector<std::pair<std::string, Tensor*>> state_tensors() = 0;
  virtual Json state_json() const = 0;  // {"type": "sgd", "steps": n}
  // Throws std::invalid_argument when the state belongs to another optimizer type.
  virtual void load_state_json(const Json&) = 0;
};

// Options structs with PyTorch's defaults; validate() throws
// std::invalid_argument("sgd: lr must be a positive number, got -1").
struct SgdOptions {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  void validate() const;
};
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // AdamW: decay the weights directly instead of adding to the gradient
  void validate() const;
};

std::unique_ptr<Optimizer> make_sgd(const SgdOptions&, int64_t arena_size);
std::unique_ptr<Optimizer> make_adam(const AdamOptions&, int64_t arena_size);

// Parses {"type": "sgd"|"adam"|"adamw", "lr", "momentum", "nesterov",
// "dampening", "weight_decay", "betas": [b1, b2], "eps"}. Unknown keys, keys of
// another type ("optimizer: key 'momentum' does not apply to type 'adam'") and
// bad values ("optimizer: key 'lr' must be a positive number, got -1") throw
// std::invalid_argument. "type" defaults to "sgd".
std::unique_ptr<Optimizer> make_optimizer(const Json& cfg, int64_t arena_size,
                                          const std::string& where = "optimizer");
double optimizer_base_lr(const Json& cfg);  // the "lr" (with the type's default)

}  // namespace deja::core
