#include "layers/builder.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <stdexcept>

#include "layers/registry.h"
#include "layers/sequential.h"

namespace deja::layers {
namespace {

// Seeds of per-layer hash matrices: distinct per layer, fixed by the run seed.
uint64_t layer_seed(uint64_t seed, int64_t index) {
  return seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index) + 1;
}

}  // namespace

Shape model_input_shape(const core::Json& model_cfg, const std::string& where) {
  if (!model_cfg.contains("input"))
    throw std::invalid_argument(where + ": missing key 'input' (the per-example shape, e.g. [1, 32, 32])");
  const auto& in = model_cfg["input"];
  Shape shape;
  bool ok = in.is_array() && !in.empty();
  if (ok)
    for (const auto& d : in) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) {
        ok = false;
        break;
      }
      shape.push_back(d.get<int64_t>());
    }
  if (!ok)
    throw std::invalid_argument(where + ": key 'input' must be a list of positive integers, got " +
                                in.dump());
  return shape;
}

std::unique_ptr<Model> build_model(const core::Json& model_cfg, uint64_t seed,
                                   const std::string& where) {
  core::reject_unknown_keys(model_cfg, {"input", "layers", "reuse", "type", "init"}, where);
  const std::string init = core::read_string(model_cfg, "init", "default", where);
  if (init != "default" && init != "kaiming_normal")
    throw std::invalid_argument(where + ": key 'init' must be \"default\" or \"kaiming_normal\", got \"" + init +
                                "\"");
  std::string model_type = core::read_string(model_cfg, "type", "sequential", where);
  if (model_type != "sequential")
    throw std::invalid_argument(where + ": key 'type' must be \"sequential\" for an image model, got \"" +
                                model_type + "\"");
  Shape shape = model_input_shape(model_cfg, where);
  const Shape input_shape = shape;
  if (!model_cfg.contains("layers") || !model_cfg["layers"].is_array() || model_cfg["layers"].empty())
    throw std::invalid_argument(where + ": key 'layers' must be a non-empty list of layer objects");

  reuse::ReuseSettings model_reuse;
  if (model_cfg.contains("reuse"))
    model_reuse = reuse::settings_from_json(model_cfg["reuse"], model_reuse, where + ".reuse");

  auto net = std::make_unique<Sequential>();
  std::vector<ReuseLayer> reuse_layers;
  core::Rng init_rng = core::make_rng(seed, core::RngPurpose::Init);
  std::map<std::string, int> prefix_counts;
  std::set<std::string> names;
  const auto& layers = model_cfg["layers"];
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& spec = layers[i];
    const std::string at = fmt::format("{}.layers[{}]", where, i);
    if (!spec.is_object()) throw std::invalid_argument(at + ": expected a layer object, got " + spec.dump());
    if (!spec.contains("type") || !spec["type"].is_string())
      throw std::invalid_argument(at + ": missing key 'type' (one of: " +
                                  fmt::format("{}", fmt::join(layer_type_names(), ", ")) + ")");
    const std::string type = spec["type"].get<std::string>();
    const LayerType* lt = find_layer_type(type);
    if (!lt) {
      std::string hint = core::closest_match(type, layer_type_names());
      throw std::invalid_argument(at + ": unknown layer type '" + type + "'" +
                                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    if (spec.contains("reuse") && !lt->has_product)
      throw std::invalid_argument(at + ": layer type '" + type +
                                  "' has no weight product, so key 'reuse' does not apply");
    std::vector<std::string> allowed = lt->keys;
    allowed.insert(allowed.end(), {"type", "name"});
    if (lt->has_product) allowed.push_back("reuse");
    core::reject_unknown_keys(spec, allowed, at);

    int count = ++prefix_counts[lt->name_prefix];
    std::string name = core::read_string(spec, "name", lt->name_prefix + std::to_string(count), at);
    if (name.empty() || name.find('.') != std::string::npos)
      throw std::invalid_argument(at + ": key 'name' must be non-empty and contain no '.', got \"" +
                                  name + "\"");
    if (!names.insert(name).second)
      throw std::invalid_argument(at + ": duplicate layer name '" + name + "'");
    const std::string at_named = at + " (" + name + ")";

    LayerContext ctx{&init_rng, seed, static_cast<int64_t>(i), at_named, init};
    std::unique_ptr<Module> module = lt->make(spec, shape, ctx);
    Shape batched = shape;
    batched.insert(batched.begin(), 1);
    Shape out;
    try {
      out = module->output_shape(batched);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(at_named + ": " + e.what());
    }
    shape.assign(out.begin() + 1, out.end());

    if (lt->has_product) {
      reuse::ReuseSettings settings = model_reuse;
      if (spec.contains("reuse"))
        settings = reuse::settings_from_json(spec["reuse"], model_reuse, at_named + ".reuse");
      settings.seed = layer_seed(seed, static_cast<int64_t>(i));
      if (settings.enabled) module->set_product(reuse::make_product(settings));
      reuse_layers.push_back({name, module.get(), settings});
    }
    net->add(name, std::move(module));
  }
  return std::make_unique<Model>(std::move(net), input_shape, std::move(reuse_layers));
}

}  // namespace deja::layers
