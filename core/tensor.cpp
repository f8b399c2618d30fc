#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "core/autograd.h"
#include "core/buffer_cache.h"

namespace deja::core {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Storage::Storage(int64_t count) : size_(count) {
  if (count < 0) throw std::invalid_argument("Storage: negative size");
  // 64-byte alignment for AVX-512 loads; large buffers are recycled by size
  // (core/buffer_cache.h) so each training step does not fault in fresh pages.
  data_ = static_cast<float*>(acquire_buffer(byte_size()));
}

Storage::~Storage() { release_buffer(data_, byte_size()); }

Tensor Tensor::empty(Shape shape) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("Tensor: negative dimension in " + shape_to_string(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(shape_numel(shape));
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::zeros(Shape shape) { return full(std::move(shape), 0.0f); }

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values) {
  Tensor t = empty(std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw std::invalid_argument("Tensor::from: " + std::to_string(values.size()) +
                                " values for shape " + shape_to_string(t.shape_));
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, int64_t offset, Shape shape) {
  if (!storage || offset < 0 || offset + shape_numel(shape) > storage->size())
    throw std::out_of_range("Tensor::view_of: view " + shape_to_string(shape) + " at " +
                            std::to_string(offset) + " exceeds its storage");
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = offset;
  t.shape_ = std::move(shape);
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  int64_t n = dim();
  if (axis < 0) axis += n;
  if (axis < 0 || axis >= n)
    throw std::out_of_range("Tensor::size: axis " + std::to_string(axis) + " of " +
                            shape_to_string(shape_));
  return shape_[axis];
}

std::vector<float> Tensor::to_vector() const {
  return std::vector<float>(data(), data() + numel());
}

Tensor Tensor::reshaped(Shape shape) const {
  // One dimension may be -1: inferred from the others.
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("reshape: more than one -1");
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0) shape[infer] = numel() / known;
  if (shape_numel(shape) != numel())
    throw std::invalid_argument("reshape: cannot view " + shape_to_string(shape_) + " as " +
                                shape_to_string(shape));
  Tensor t;
  t.storage_ = storage_;
  t.offset_ = offset_;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  if (dim() < 1 || begin < 0 || end < begin || end > shape_[0])
    throw std::out_of_range("slice_rows: [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of " + shape_to_string(shape_));
  int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  Shape s = shape_;
  s[0] = end - begin;
  Tensor t;
  t.storage_ = storage_;
  t.offset_ = offset_ + begin * row;
  t.shape_ = std::move(s);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  if (numel()) std::memcpy(t.data(), data(), sizeof(float) * numel());
  return t;
}

void Tensor::fill(float value) { std::fill(data(), data() + numel(), value); }

void Tensor::copy_from(const Tensor& other) {
  if (other.numel() != numel())
    throw std::invalid_argument("copy_from: " + shape_to_string(other.shape_) + " into " +
                                shape_to_string(shape_));
  if (numel()) std::memmove(data(), other.data(), sizeof(float) * numel());
}

Tensor Tensor::detached() const {
  Tensor t = *this;
  t.node_.reset();
  return t;
}

Tensor Tensor::grad() const {
  if (!node_) return Tensor();
  return node_->leaf_grad();
}

}  // namespace deja::core
