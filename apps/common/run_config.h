// The training config: one JSON file per experiment holding everything a run
// needs (model, data, optimizer, schedule, reuse, seed). This reads the
// top-level keys with their defaults; each section is validated by its owner
// (layers/builder for "model", data/ for "data", core/ for the optimizer and
// LR schedule, reuse/ for "reuse_schedule").
#pragma once

#include <string>
#include <vector>

#include "core/json_util.h"

namespace deja::apps {

struct RunConfig {
  core::Json raw;  // the fully resolved config (file + --set overrides + CLI flags)
  std::string source;  // where it came from (file path), the prefix of its errors
  std::string description;
  uint64_t seed = 1;
  int64_t epochs = 1;
  int threads = 2;
  int64_t checkpoint_every_epochs = 1;
  int64_t keep_last = 2;
  int64_t log_every_steps = 0;  // 0: metrics.jsonl gets one record per epoch only
  double grad_clip = 0.0;       // global-norm clipping; 0 = off
};

// Parses and checks the top-level keys; throws std::invalid_argument naming
// the file and key.
RunConfig parse_run_config(const core::Json& raw, const std::string& source);

// Loads `path`, applies --set overrides in order, and parses.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace deja::apps
