// Model: what the builder returns and the trainer drives. It owns the module
// tree, binds every parameter into one contiguous arena (values + grads) at
// construction, knows which layers own a weight product (the reuse-capable
// ones, with the settings their config gave them), and prints the summary a
// run starts with: per layer, output shape, parameters and forward FLOPs.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/parameters.h"
#include "core/rng.h"
#include "layers/module.h"
#include "reuse/settings.h"

namespace deja::layers {

struct LayerSummary {
  std::string name, type;
  Shape output;          // with the batch dimension used for the summary
  int64_t parameters = 0;
  int64_t flops = 0;     // forward, multiply-add = 2
  std::string product;   // "dense", "reuse(...)", or "" for layers without a GEMM
};

// A layer whose GEMMs go through a core::Product, with its configured settings.
struct ReuseLayer {
  std::string name;
  Module* module = nullptr;
  reuse::ReuseSettings base;
};

class Model {
 public:
  // `input_shape` is per example (no batch dimension).
  Model(std::unique_ptr<Module> root, Shape input_shape, std::vector<ReuseLayer> reuse_layers);

  Tensor forward(const Tensor& x) { return root_->forward(x); }
  Module& root() { return *root_; }
  const Shape& input_shape() const { return input_shape_; }
  core::ParameterArena& parameters() { return arena_; }
  std::vector<core::NamedParameter> buffers() { return root_->named_buffers(); }
  void train(bool on = true) { root_->train(on); }
  void eval() { root_->eval(); }
  bool is_training() const { return root_->is_training(); }

  std::vector<ReuseLayer>& reuse_layers() { return reuse_layers_; }
  // Switches layer i to `settings` (dense when !enabled), keeping the reuse
  // product object (and its hash matrices) when it only changes rungs.
  void apply_reuse(size_t i, const reuse::ReuseSettings& settings);
  // The random streams the model draws from while training (dropout), by name,
  // so checkpoints can save and restore them.
  std::vector<std::pair<std::string, core::Rng*>> random_streams();

  std::vector<LayerSummary> summary(int64_t batch) const;
  std::string summary_table(int64_t batch) const;

 private:
  std::unique_ptr<Module> root_;
  Shape input_shape_;
  std::vector<ReuseLayer> reuse_layers_;
  core::ParameterArena arena_;
};

}  // namespace deja::layers
