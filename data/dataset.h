// Dataset: the read-only, random-access view of an image classification split
// (size, item i -> CHW float image in [0,1] + label). Implementations decode
// into memory at open where they can, so read_image is a cheap copy and is
// safe to call from several threads at once. Also two wrappers used by the
// pipeline: the first N items of a dataset, and a dataset whose images go
// through a fixed (non-random) transform such as pad or resize.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace deja::data {

class Transform;  // data/transforms.h

class Dataset {  // images are float CHW in [0,1] before normalisation
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual core::Shape item_shape() const = 0;  // {C, H, W} after the dataset's own resize/pad
  virtual int64_t num_classes() const = 0;
  virtual void read_image(int64_t index, float* out) const = 0;  // writes C*H*W floats; thread-safe
  virtual int32_t label(int64_t index) const = 0;
  // "Fashion-MNIST train (60000 images, 1x28x28, 10 classes) from /usr/share/..."
  virtual std::string describe() const = 0;
  virtual std::vector<std::string> class_names() const;  // default "0".."n-1"
};

// "1x28x28"
std::string item_shape_text(const core::Shape& shape);

// The first `count` items of `base` (count <= base->size()).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, int64_t count);
  int64_t size() const override { return count_; }
  core::Shape item_shape() const override { return base_->item_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  void read_image(int64_t index, float* out) const override;
  int32_t label(int64_t index) const override;
  std::string describe() const override;
  std::vector<std::string> class_names() const override { return base_->class_names(); }

 private:
  std::shared_ptr<const Dataset> base_;
  int64_t count_;
};

// `base` with every image passed through a deterministic transform (pad_to,
// resize): the transform must not draw random numbers.
class TransformedDataset : public Dataset {
 public:
  TransformedDataset(std::shared_ptr<const Dataset> base, std::shared_ptr<const Transform> transform);
  int64_t size() const override { return base_->size(); }
  core::Shape item_shape() const override { return shape_; }
  int64_t num_classes() const override { return base_->num_classes(); }
  void read_image(int64_t index, float* out) const override;
  int32_t label(int64_t index) const override { return base_->label(index); }
  std::string describe() const override;
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  const Dataset& base() const { return *base_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::shared_ptr<const Transform> transform_;
  core::Shape shape_;
};

}  // namespace deja::data
