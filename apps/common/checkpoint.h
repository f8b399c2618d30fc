// Training checkpoints in the safetensors layout (design.md section 6): the
// weights and buffers under their hierarchical names, so PyTorch tools read
// them as they are; the optimizer moments as extra tensors ("deja.optimizer.*");
// and the rest of the training state (epoch, step, wall time, optimizer and LR
// schedule scalars, every RNG stream, loader position, reuse schedule, config)
// as JSON in the header's __metadata__. Files are written atomically and a
// checksum over header and data is verified on load (core/safetensors.h).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/optimizer.h"
#include "core/safetensors.h"
#include "layers/model.h"

namespace deja::apps {

struct TrainingState {
  int64_t epochs_done = 0;  // completed epochs: a resumed run starts at this (0-based) epoch
  int64_t step = 0;         // optimizer steps taken so far
  double wall_s = 0.0;      // training wall time summed over runs
  core::Json optimizer = core::Json::object();
  core::Json lr_schedule = core::Json::object();
  core::Json reuse_schedule = core::Json();  // null when the run has no schedule
  core::Json rngs = core::Json::object();    // name -> [state, inc]
  core::Json extra = core::Json::object();   // task-specific (e.g. best validation loss)
};

std::string checkpoint_file_name(int64_t epoch);  // "checkpoint-epoch-0003.safetensors"

// Writes `dir/checkpoint-epoch-NNNN.safetensors` atomically and deletes older
// checkpoints beyond `keep_last`. Returns the path written.
std::string save_checkpoint(const std::string& dir, layers::Model& model, core::Optimizer* optimizer,
                            const TrainingState& state, const core::Json& config, int64_t keep_last);

struct Checkpoint {
  core::SafetensorsFile file;
  core::Json config;
  TrainingState state;
};

// `path` is a checkpoint file or a folder holding checkpoint-epoch-*.safetensors
// (the latest is taken). Throws std::runtime_error naming the file and problem.
Checkpoint open_checkpoint(const std::string& path);

// Copies weights and buffers into `model`; every model tensor must be present
// with its exact shape.
void load_model_weights(const Checkpoint& ckpt, layers::Model& model);
void load_optimizer_state(const Checkpoint& ckpt, core::Optimizer& optimizer);
void load_random_streams(const Checkpoint& ckpt, layers::Model& model);
core::Json save_random_streams(layers::Model& model);

}  // namespace deja::apps
