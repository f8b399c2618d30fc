#include "apps/common/run_config.h"

#include <stdexcept>

namespace deja::apps {

RunConfig parse_run_config(const core::Json& raw, const std::string& source) {
  const std::string where = source;
  core::reject_unknown_keys(raw,
                            {"description", "seed", "epochs", "threads", "data", "model",
                             "optimizer", "lr_schedule", "checkpoint", "log", "grad_clip",
                             "reuse_schedule", "task"},
                            where);
  for (const char* required : {"data", "model", "optimizer"})
    if (!raw.contains(required))
      throw std::invalid_argument(where + ": missing required section '" + required + "'");
  RunConfig c;
  c.raw = raw;
  c.source = source;
  c.description = core::read_string(raw, "description", "", where);
  int64_t seed = core::read_int(raw, "seed", 1, where);
  if (seed < 0) throw std::invalid_argument(where + ": seed must be >= 0, got " + std::to_string(seed));
  c.seed = static_cast<uint64_t>(seed);
  c.epochs = core::read_int(raw, "epochs", 1, where);
  if (c.epochs < 1) throw std::invalid_argument(where + ": epochs must be >= 1, got " + std::to_string(c.epochs));
  c.threads = static_cast<int>(core::read_int(raw, "threads", 2, where));
  if (c.threads < 1) throw std::invalid_argument(where + ": threads must be >= 1, got " + std::to_string(c.threads));
  c.grad_clip = core::read_number(raw, "grad_clip", 0.0, where);
  if (raw.contains("checkpoint")) {
    const auto& ck = raw["checkpoint"];
    core::reject_unknown_keys(ck, {"every_epochs", "keep_last"}, where + ": checkpoint");
    c.checkpoint_every_epochs = core::read_int(ck, "every_epochs", 1, where + ": checkpoint");
    c.keep_last = core::read_int(ck, "keep_last", 2, where + ": checkpoint");
    if (c.keep_last < 1)
      throw std::invalid_argument(where + ": checkpoint: keep_last must be >= 1, got " + std::to_string(c.keep_last));
  }
  if (raw.contains("log")) {
    const auto& log = raw["log"];
    core::reject_unknown_keys(log, {"every_steps"}, where + ": log");
    c.log_every_steps = core::read_int(log, "every_steps", 0, where + ": log");
  }
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  core::Json raw = core::load_json_file(path);
  for (const auto& o : overrides) core::apply_override(raw, o);
  return parse_run_config(raw, path);
}

}  // namespace deja::apps
