// MemoryDataset: images decoded once into memory as 8-bit CHW pixels plus
// int32 labels; read_image converts one image to floats in [0,1] (x / 255).
// The IDX, CIFAR and image-folder readers all produce one. 60000 28x28 images
// take 47 MB.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace deja::data {

class MemoryDataset : public Dataset {
 public:
  // pixels: size() * C*H*W bytes in CHW order per image.
  MemoryDataset(std::vector<uint8_t> pixels, std::vector<int32_t> labels, core::Shape item_shape,
                int64_t num_classes, std::vector<std::string> class_names, std::string description);
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  core::Shape item_shape() const override { return shape_; }
  int64_t num_classes() const override { return num_classes_; }
  void read_image(int64_t index, float* out) const override;
  int32_t label(int64_t index) const override;
  std::string describe() const override { return description_; }
  std::vector<std::string> class_names() const override;
  const uint8_t* pixels(int64_t index) const { return pixels_.data() + index * item_numel_; }

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int32_t> labels_;
  core::Shape shape_;
  int64_t item_numel_;
  int64_t num_classes_;
  std::vector<std::string> class_names_;
  std::string description_;
};

}  // namespace deja::data
