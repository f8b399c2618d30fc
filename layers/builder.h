// The JSON model builder: {"input": [C, H, W], "reuse": {...model-wide reuse
// defaults...}, "layers": [{"type": "conv2d", ...}, ...]} -> a Model. Every
// layer is looked up in the registry; unknown types, unknown keys, bad values
// and shapes that do not fit are rejected with one message naming the layer
// index (and name), the key and the value.
#pragma once
#include <memory>
#include <string>

#include "core/json_util.h"
#include "layers/model.h"

namespace deja::layers {

std::unique_ptr<Model> build_model(const core::Json& model_cfg, uint64_t seed,
                                   const std::string& where = "model");

// The per-example input shape a model config declares ("input").
Shape model_input_shape(const core::Json& model_cfg, const std::string& where = "model");

}  // namespace deja::layers
