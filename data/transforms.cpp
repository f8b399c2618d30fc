// Transform implementations. Each works plane by plane on CHW floats.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace deja::data {

namespace {

void check_chw(const core::Shape& s, const char* who) {
  if (s.size() != 3 || s[0] <= 0 || s[1] <= 0 || s[2] <= 0)
    throw std::invalid_argument(std::string(who) + ": expected a {C, H, W} image shape, got " +
                                core::shape_to_string(s));
}

std::string list_text(const std::vector<float>& v) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
  out << "]";
  return out.str();
}

}  // namespace

// ---- Pad ----
Pad::Pad(int64_t top, int64_t left, int64_t bottom, int64_t right)
    : top_(top), left_(left), bottom_(bottom), right_(right) {
  if (top < 0 || left < 0 || bottom < 0 || right < 0)
    throw std::invalid_argument("Pad: padding must be >= 0");
}

std::shared_ptr<Pad> Pad::to_square(const core::Shape& input, int64_t size) {
  check_chw(input, "Pad");
  if (size < input[1] || size < input[2])
    throw std::invalid_argument("data: pad_to " + std::to_string(size) + " is smaller than the images (" +
                                std::to_string(input[1]) + "x" + std::to_string(input[2]) + ")");
  int64_t dh = size - input[1], dw = size - input[2];
  return std::make_shared<Pad>(dh / 2, dw / 2, dh - dh / 2, dw - dw / 2);
}

core::Shape Pad::output_shape(const core::Shape& input) const {
  check_chw(input, "Pad");
  return {input[0], input[1] + top_ + bottom_, input[2] + left_ + right_};
}

void Pad::apply(const float* in, const core::Shape& input, float* out, core::Rng&) const {
  const int64_t c = input[0], h = input[1], w = input[2];
  const int64_t oh = h + top_ + bottom_, ow = w + left_ + right_;
  std::fill(out, out + c * oh * ow, 0.0f);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      std::memcpy(out + (ch * oh + y + top_) * ow + left_, in + (ch * h + y) * w, sizeof(float) * w);
}

std::string Pad::describe() const {
  return "pad(top " + std::to_string(top_) + ", left " + std::to_string(left_) + ", bottom " +
         std::to_string(bottom_) + ", right " + std::to_string(right_) + ")";
}

// ---- RandomCrop ----
RandomCrop::RandomCrop(int64_t padding) : padding_(padding) {
  if (padding < 0) throw std::invalid_argument("RandomCrop: padding must be >= 0, got " + std::to_string(padding));
}

void RandomCrop::apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const {
  const int64_t c = input[0], h = input[1], w = input[2];
  // Offsets into the padded image, in [0, 2*padding]; shifting by (dy, dx)
  // relative to the original means out(y, x) = in(y + dy, x + dx) or 0.
  const int64_t dy = static_cast<int64_t>(rng.below(static_cast<uint32_t>(2 * padding_ + 1))) - padding_;
  const int64_t dx = static_cast<int64_t>(rng.below(static_cast<uint32_t>(2 * padding_ + 1))) - padding_;
  const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(w, w - dx);  // valid out columns
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t y = 0; y < h; ++y) {
      float* row = out + (ch * h + y) * w;
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= h || x1 <= x0) {
        std::fill(row, row + w, 0.0f);
        continue;
      }
      std::fill(row, row + x0, 0.0f);
      std::memcpy(row + x0, in + (ch * h + sy) * w + x0 + dx, sizeof(float) * (x1 - x0));
      std::fill(row + x1, row + w, 0.0f);
    }
  }
}

std::string RandomCrop::describe() const { return "random_crop(pad " + std::to_string(padding_) + ")"; }

// ---- HorizontalFlip ----
HorizontalFlip::HorizontalFlip(double p) : p_(p) {
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("HorizontalFlip: p must be in [0, 1]");
}

void HorizontalFlip::apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const {
  const int64_t n = core::shape_numel(input), w = input[2];
  // Always draw, so the stream position does not depend on p.
  const bool flip = rng.uniform() < p_;
  if (!flip) {
    std::memcpy(out, in, sizeof(float) * n);
    return;
  }
  for (int64_t row = 0; row < n / w; ++row) {
    const float* src = in + row * w;
    float* dst = out + row * w;
    for (int64_t x = 0; x < w; ++x) dst[x] = src[w - 1 - x];
  }
}

std::string HorizontalFlip::describe() const {
  std::ostringstream out;
  out << "hflip(p " << p_ << ")";
  return out.str();
}

// ---- Normalize ----
Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.empty() || mean_.size() != std_.size())
    throw std::invalid_argument("Normalize: mean " + list_text(mean_) + " and std " + list_text(std_) +
                                " must be non-empty lists of the same length");
  for (float s : std_) {
    if (!(s > 0.0f) || !std::isfinite(s))
      throw std::invalid_argument("Normalize: std " + list_text(std_) + " must be positive");
    inv_std_.push_back(1.0f / s);
  }
}

core::Shape Normalize::output_shape(const core::Shape& input) const {
  check_chw(input, "Normalize");
  if (input[0] != static_cast<int64_t>(mean_.size()))
    throw std::invalid_argument("Normalize: " + std::to_string(mean_.size()) + " channel statistics for images with " +
                                std::to_string(input[0]) + " channels");
  return input;
}

void Normalize::apply(const float* in, const core::Shape& input, float* out, core::Rng&) const {
  const int64_t plane = input[1] * input[2];
  for (int64_t ch = 0; ch < input[0]; ++ch) {
    const float m = mean_[ch], s = inv_std_[ch];
    const float* src = in + ch * plane;
    float* dst = out + ch * plane;
    for (int64_t i = 0; i < plane; ++i) dst[i] = (src[i] - m) * s;
  }
}

std::string Normalize::describe() const { return "normalize(mean " + list_text(mean_) + ", std " + list_text(std_) + ")"; }

// ---- Resize ----
Resize::Resize(int64_t height, int64_t width) : height_(height), width_(width) {
  if (height <= 0 || width <= 0)
    throw std::invalid_argument("Resize: size must be positive, got " + std::to_string(height) + "x" +
                                std::to_string(width));
}

core::Shape Resize::output_shape(const core::Shape& input) const {
  check_chw(input, "Resize");
  return {input[0], height_, width_};
}

void resize_bilinear_plane(const float* src, int64_t h, int64_t w, float* dst, int64_t out_h, int64_t out_w) {
  // Output pixel centre (y + 0.5) maps to source coordinate
  // (y + 0.5) * h / out_h - 0.5, clamped to the image; the value blends the
  // four neighbouring source pixels linearly in each axis.
  const double sy = static_cast<double>(h) / out_h, sx = static_cast<double>(w) / out_w;
  std::vector<int64_t> xa(out_w), xb(out_w);
  std::vector<float> fx(out_w);
  for (int64_t x = 0; x < out_w; ++x) {
    double p = std::clamp((x + 0.5) * sx - 0.5, 0.0, static_cast<double>(w - 1));
    xa[x] = static_cast<int64_t>(p);
    xb[x] = std::min(xa[x] + 1, w - 1);
    fx[x] = static_cast<float>(p - xa[x]);
  }
  for (int64_t y = 0; y < out_h; ++y) {
    double p = std::clamp((y + 0.5) * sy - 0.5, 0.0, static_cast<double>(h - 1));
    const int64_t ya = static_cast<int64_t>(p), yb = std::min(ya + 1, h - 1);
    const float fy = static_cast<float>(p - ya);
    const float* ra = src + ya * w;
    const float* rb = src + yb * w;
    float* row = dst + y * out_w;
    for (int64_t x = 0; x < out_w; ++x) {
      const float top = ra[xa[x]] + (ra[xb[x]] - ra[xa[x]]) * fx[x];
      const float bottom = rb[xa[x]] + (rb[xb[x]] - rb[xa[x]]) * fx[x];
      row[x] = top + (bottom - top) * fy;
    }
  }
}

void Resize::apply(const float* in, const core::Shape& input, float* out, core::Rng&) const {
  const int64_t plane_in = input[1] * input[2], plane_out = height_ * width_;
  for (int64_t ch = 0; ch < input[0]; ++ch)
    resize_bilinear_plane(in + ch * plane_in, input[1], input[2], out + ch * plane_out, height_, width_);
}

std::string Resize::describe() const { return "resize(" + std::to_string(height_) + "x" + std::to_string(width_) + ")"; }

// ---- Compose ----
Compose::Compose(std::vector<std::shared_ptr<const Transform>> parts) : parts_(std::move(parts)) {
  for (const auto& p : parts_)
    if (!p) throw std::invalid_argument("Compose: null transform");
}

core::Shape Compose::output_shape(const core::Shape& input) const {
  core::Shape s = input;
  for (const auto& p : parts_) s = p->output_shape(s);
  return s;
}

void Compose::apply(const float* in, const core::Shape& input, float* out, core::Rng& rng) const {
  if (parts_.empty()) {
    std::memcpy(out, in, sizeof(float) * core::shape_numel(input));
    return;
  }
  if (parts_.size() == 1) {
    parts_[0]->apply(in, input, out, rng);
    return;
  }
  // Ping-pong between two local buffers sized for the largest intermediate;
  // the last part writes straight into `out`.
  int64_t biggest = 0;
  core::Shape s = input;
  for (size_t i = 0; i + 1 < parts_.size(); ++i) {
    s = parts_[i]->output_shape(s);
    biggest = std::max(biggest, core::shape_numel(s));
  }
  std::vector<float> a(static_cast<size_t>(biggest)), b(static_cast<size_t>(biggest));
  const float* src = in;
  core::Shape shape = input;
  for (size_t i = 0; i < parts_.size(); ++i) {
    float* dst = i + 1 == parts_.size() ? out : (i % 2 == 0 ? a.data() : b.data());
    parts_[i]->apply(src, shape, dst, rng);
    shape = parts_[i]->output_shape(shape);
    src = dst;
  }
}

std::string Compose::describe() const {
  if (parts_.empty()) return "identity";
  std::string s;
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (i) s += ", ";
    s += parts_[i]->describe();
  }
  return s;
}

bool Compose::is_random() const {
  for (const auto& p : parts_)
    if (p->is_random()) return true;
  return false;
}

}  // namespace deja::data
