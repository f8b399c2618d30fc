// A generated, learnable dataset for tests and smoke runs: each class has a
// fixed random pattern (uniform in [0,1) per pixel, drawn from the seed) and
// item i has label i % classes and pixels clamp(pattern + noise * N(0,1), 0, 1)
// with the noise drawn from (seed, split, i). Nothing is stored but the
// patterns, so any size is cheap; the same seed gives the same data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace deja::data {

struct SyntheticOptions {
  int64_t classes = 10, train = 1000, test = 200, channels = 1, size = 8;
  double noise = 0.2;
};

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(const SyntheticOptions& options, uint64_t seed, bool train);
  int64_t size() const override { return count_; }
  core::Shape item_shape() const override;
  int64_t num_classes() const override { return options_.classes; }
  void read_image(int64_t index, float* out) const override;
  int32_t label(int64_t index) const override;
  std::string describe() const override;

 private:
  SyntheticOptions options_;
  uint64_t seed_;
  bool train_;
  int64_t count_;
  std::vector<float> patterns_;  // classes x C*H*W
};

}  // namespace deja::data
