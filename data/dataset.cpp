// Dataset defaults and the two wrappers (subset, fixed transform).
#include "data/dataset.h"

#include <stdexcept>

#include "core/rng.h"
#include "data/transforms.h"

namespace deja::data {

std::vector<std::string> Dataset::class_names() const {
  std::vector<std::string> names;
  for (int64_t i = 0; i < num_classes(); ++i) names.push_back(std::to_string(i));
  return names;
}

std::string item_shape_text(const core::Shape& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, int64_t count)
    : base_(std::move(base)), count_(count) {
  if (count_ < 0 || count_ > base_->size())
    throw std::invalid_argument("data: subset of " + std::to_string(count_) + " items out of range [0, " +
                                std::to_string(base_->size()) + "] for " + base_->describe());
}

void SubsetDataset::read_image(int64_t index, float* out) const { base_->read_image(index, out); }

int32_t SubsetDataset::label(int64_t index) const { return base_->label(index); }

std::string SubsetDataset::describe() const {
  return "first " + std::to_string(count_) + " of " + base_->describe();
}

TransformedDataset::TransformedDataset(std::shared_ptr<const Dataset> base,
                                       std::shared_ptr<const Transform> transform)
    : base_(std::move(base)), transform_(std::move(transform)) {
  if (transform_->is_random())
    throw std::invalid_argument("data: a dataset-level transform must not be random: " +
                                transform_->describe());
  shape_ = transform_->output_shape(base_->item_shape());
}

void TransformedDataset::read_image(int64_t index, float* out) const {
  // A scratch image per call keeps read_image thread-safe; 1-12 KB is cheap
  // next to the copy itself.
  std::vector<float> scratch(static_cast<size_t>(core::shape_numel(base_->item_shape())));
  base_->read_image(index, scratch.data());
  core::Rng unused(0);
  transform_->apply(scratch.data(), base_->item_shape(), out, unused);
}

std::string TransformedDataset::describe() const {
  return base_->describe() + ", " + transform_->describe() + " -> " + item_shape_text(shape_);
}

}  // namespace deja::data
