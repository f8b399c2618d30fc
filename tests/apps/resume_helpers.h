// The two halves of every resume-equality test: the same config trained in
// one go and trained part way then resumed, and the final checkpoints of both
// compared tensor by tensor.
#pragma once
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "apps/common/checkpoint.h"
#include "core/tensor.h"
#include "run_helpers.h"

namespace deja::testing {

struct ResumeRuns {
  std::vector<nlohmann::json> whole, split;  // per-epoch metrics of both runs
};

// `config` for `epochs` epochs into `whole`; for `first` epochs into `split`,
// then resumed from there up to `epochs`.
inline ResumeRuns train_whole_and_resumed(const std::string& config, int epochs, int first,
                                          const ScratchDir& whole, const ScratchDir& split) {
  auto train = [](const std::string& args) { return run_command(bin("train") + " --quiet " + args); };
  RunResult r = train("--config " + config + " --epochs " + std::to_string(epochs) + " --out " + whole.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = train("--config " + config + " --epochs " + std::to_string(first) + " --out " + split.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = train("--resume " + split.str() + " --epochs " + std::to_string(epochs));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  return {read_metrics(whole / "metrics.jsonl"), read_metrics(split / "metrics.jsonl")};
}

// The newest checkpoints in the two folders hold the same tensors, to the bit.
inline void check_same_weights(const std::string& dir_a, const std::string& dir_b) {
  auto ca = apps::open_checkpoint(dir_a), cb = apps::open_checkpoint(dir_b);
  REQUIRE(ca.file.names() == cb.file.names());
  for (const auto& name : ca.file.names()) {
    auto shape = ca.file.shape(name);
    std::vector<float> x(static_cast<size_t>(core::shape_numel(shape))), y(x.size());
    ca.file.copy_to(name, shape, x.data());
    cb.file.copy_to(name, shape, y.data());
    CHECK_MESSAGE(x == y, name);
  }
}

}  // namespace deja::testing
