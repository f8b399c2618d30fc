// The layer registry: maps a config's "type" string to a factory that reads the
// layer's keys (with defaults), validates them and builds the module. The JSON
// model builder (layers/builder.h) walks a config's layer list through it, so
// every layer type is described in one place: its keys, its name prefix in
// summaries and checkpoints, and whether it owns a weight product (reuse path).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/rng.h"
#include "layers/module.h"

namespace deja::layers {

struct LayerContext {
  core::Rng* init_rng = nullptr;  // weight initialisation stream of the model
  uint64_t seed = 0;              // run seed (dropout streams derive from it)
  int64_t index = 0;              // position in the config's layer list
  std::string where;              // "model.layers[3]": prefix of every error
  std::string init = "default";   // model-wide weight init: "default" (PyTorch's) | "kaiming_normal"
};

struct LayerType {
  std::string type;                // "conv2d"
  std::vector<std::string> keys;   // layer-specific keys ("type", "name", "reuse" are common)
  std::string name_prefix;         // default child name: prefix + running count ("conv1")
  bool has_product = false;        // owns a weight GEMM, so "reuse" settings apply
  // input: per-example shape (no batch dimension), already checked to exist.
  std::function<std::unique_ptr<Module>(const core::Json& spec, const Shape& input, LayerContext& ctx)>
      make;
};

const std::vector<LayerType>& layer_registry();
const LayerType* find_layer_type(const std::string& type);
std::vector<std::string> layer_type_names();

}  // namespace deja::layers
