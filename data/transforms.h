// Image transforms on one CHW float image: pad, random crop, horizontal flip,
// per-channel normalisation, bilinear resize, and a composition of these.
// Random transforms draw only from the Rng they are given, so a batch's
// augmentation is a function of the loader's (seed, epoch, batch) and never of
// thread timing. A transform may change the image shape (output_shape).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace deja::data {

class Transform {
 public:
  virtual ~Transform() = default;
  // {C, H, W} of the output for an input of shape `input`; throws when the
  // input does not fit (e.g. a normalisation with another channel count).
  virtual core::Shape output_shape(const core::Shape& input) const { return input; }
  // in: shape `input`; out: output_shape(input) floats; in and out never alias.
  virtual void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const = 0;
  virtual std::string describe() const = 0;
  virtual bool is_random() const { return false; }
};

// Zero padding: top/left/bottom/right pixels.
class Pad : public Transform {
 public:
  Pad(int64_t top, int64_t left, int64_t bottom, int64_t right);
  // Centres the image in a size x size square (28 -> 32 pads 2 on each side;
  // an odd difference puts the extra pixel bottom/right).
  static std::shared_ptr<Pad> to_square(const core::Shape& input, int64_t size);
  core::Shape output_shape(const core::Shape& input) const override;
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;

 private:
  int64_t top_, left_, bottom_, right_;
};

// Zero-pads by `padding` on every side and crops an H x W window at a uniformly
// random offset (the usual CIFAR augmentation; same output shape).
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(int64_t padding);
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;
  bool is_random() const override { return true; }

 private:
  int64_t padding_;
};

// Mirrors the image left-right with probability p.
class HorizontalFlip : public Transform {
 public:
  explicit HorizontalFlip(double p = 0.5);
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;
  bool is_random() const override { return true; }

 private:
  double p_;
};

// out[c] = (in[c] - mean[c]) / std[c].
class Normalize : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std);
  core::Shape output_shape(const core::Shape& input) const override;
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& std() const { return std_; }

 private:
  std::vector<float> mean_, std_, inv_std_;
};

// Bilinear resize to height x width (pixel centres aligned, edges clamped).
class Resize : public Transform {
 public:
  Resize(int64_t height, int64_t width);
  core::Shape output_shape(const core::Shape& input) const override;
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;

 private:
  int64_t height_, width_;
};

// Applies its parts in order; an empty composition copies.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> parts);
  core::Shape output_shape(const core::Shape& input) const override;
  void apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const override;
  std::string describe() const override;
  bool is_random() const override;
  const std::vector<std::shared_ptr<const Transform>>& parts() const { return parts_; }

 private:
  std::vector<std::shared_ptr<const Transform>> parts_;
};

// Bilinear resize of one channel plane (shared by Resize and the image-folder
// reader): src h x w -> dst out_h x out_w.
void resize_bilinear_plane(const float* src, int64_t h, int64_t w, float* dst, int64_t out_h,
                           int64_t out_w);

}  // namespace deja::data
