// Synthetic dataset: class patterns from the seed, per-item noise from
// (seed, split, index), computed on every read (no stored images).
#include "data/synthetic_dataset.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/rng.h"

namespace deja::data {

namespace {
constexpr uint64_t kPatternStream = 77, kTrainStream = 78, kTestStream = 79;
}

SyntheticDataset::SyntheticDataset(const SyntheticOptions& options, uint64_t seed, bool train)
    : options_(options), seed_(seed), train_(train), count_(train ? options.train : options.test) {
  if (options_.classes < 2 || options_.train < 1 || options_.test < 1 || options_.channels < 1 || options_.size < 1 ||
      options_.noise < 0)
    throw std::invalid_argument("data.synthetic: need classes >= 2, train >= 1, test >= 1, channels >= 1, size >= 1, "
                                "noise >= 0");
  const int64_t numel = options_.channels * options_.size * options_.size;
  patterns_.resize(static_cast<size_t>(options_.classes * numel));
  core::Rng rng(seed, kPatternStream);
  for (float& v : patterns_) v = rng.uniform();
}

core::Shape SyntheticDataset::item_shape() const { return {options_.channels, options_.size, options_.size}; }

int32_t SyntheticDataset::label(int64_t index) const { return static_cast<int32_t>(index % options_.classes); }

void SyntheticDataset::read_image(int64_t index, float* out) const {
  const int64_t numel = options_.channels * options_.size * options_.size;
  const float* pattern = patterns_.data() + label(index) * numel;
  // One generator per item: reads are independent of order and thread.
  core::Rng rng(seed_ ^ (static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ULL), train_ ? kTrainStream : kTestStream);
  const float noise = static_cast<float>(options_.noise);
  for (int64_t i = 0; i < numel; ++i) out[i] = std::clamp(pattern[i] + noise * rng.normal(), 0.0f, 1.0f);
}

std::string SyntheticDataset::describe() const {
  std::ostringstream out;
  out << "synthetic " << (train_ ? "train" : "test") << " (" << count_ << " images, "
      << item_shape_text(item_shape()) << ", " << options_.classes << " classes, noise " << options_.noise
      << ")";
  return out.str();
}

}  // namespace deja::data
