// Tensor: float32, contiguous, row-major (NCHW for images), over shared
// 64-byte-aligned storage. Views (reshape, slices of the first dimension,
// parameter views into an arena) share the storage. A tensor that takes part in
// autograd carries the node that produced it (or its leaf node).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace deja::core {

class Node;  // core/autograd.h

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "[128, 64, 16, 16]"

// An aligned, fixed-size float buffer. Never copied; shared by tensors.
class Storage {
 public:
  explicit Storage(int64_t count);  // contents uninitialised
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  size_t byte_size() const { return static_cast<size_t>(size_ > 0 ? size_ : 1) * sizeof(float); }
  float* data_ = nullptr;  // owned; returned to core/buffer_cache
  int64_t size_ = 0;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor: no storage, no shape

  static Tensor empty(Shape shape);  // uninitialised contents
  static Tensor zeros(Shape shape);
  static Tensor full(Shape shape, float value);
  static Tensor from(Shape shape, const std::vector<float>& values);
  // A view of `count` floats of `storage` starting at `offset`.
  static Tensor view_of(std::shared_ptr<Storage> storage, int64_t offset, Shape shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape_); }

  float* data() { return storage_ ? storage_->data() + offset_ : nullptr; }
  const float* data() const { return storage_ ? storage_->data() + offset_ : nullptr; }
  float& operator[](int64_t i) { return data()[i]; }
  float operator[](int64_t i) const { return data()[i]; }
  std::vector<float> to_vector() const;

  // Same storage, new shape (same numel). Keeps no autograd link: use the
  // differentiable core::reshape op (core/ops.h) inside a model.
  Tensor reshaped(Shape shape) const;
  // Rows [begin, end) of the first dimension, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  Tensor clone() const;  // deep copy, no autograd link
  void fill(float value);
  void copy_from(const Tensor& other);  // same numel required

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t storage_offset() const { return offset_; }

  // Autograd link: the node whose output this tensor is (null when constant).
  const std::shared_ptr<Node>& node() const { return node_; }
  void set_node(std::shared_ptr<Node> node) { node_ = std::move(node); }
  bool requires_grad() const { return node_ != nullptr; }
  Tensor detached() const;  // same data, no autograd link
  // Gradient accumulated by the last backward() for a leaf (parameter)
  // tensor; undefined otherwise.
  Tensor grad() const;

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  std::shared_ptr<Node> node_;
};

}  // namespace deja::core
