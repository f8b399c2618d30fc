// MemoryDataset: 8-bit pixels in memory, floats on read.
#include "data/memory_dataset.h"

#include <stdexcept>

namespace deja::data {

MemoryDataset::MemoryDataset(std::vector<uint8_t> pixels, std::vector<int32_t> labels,
                             core::Shape item_shape, int64_t num_classes,
                             std::vector<std::string> class_names, std::string description)
    : pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      shape_(std::move(item_shape)),
      item_numel_(core::shape_numel(shape_)),
      num_classes_(num_classes),
      class_names_(std::move(class_names)),
      description_(std::move(description)) {
  if (static_cast<int64_t>(pixels_.size()) != item_numel_ * size())
    throw std::invalid_argument("MemoryDataset: " + std::to_string(pixels_.size()) + " pixel bytes for " +
                                std::to_string(size()) + " images of " + item_shape_text(shape_));
}

void MemoryDataset::read_image(int64_t index, float* out) const {
  const uint8_t* src = pixels(index);
  constexpr float kScale = 1.0f / 255.0f;
  for (int64_t i = 0; i < item_numel_; ++i) out[i] = static_cast<float>(src[i]) * kScale;
}

int32_t MemoryDataset::label(int64_t index) const { return labels_[static_cast<size_t>(index)]; }

std::vector<std::string> MemoryDataset::class_names() const {
  if (static_cast<int64_t>(class_names_.size()) == num_classes_) return class_names_;
  return Dataset::class_names();
}

}  // namespace deja::data
