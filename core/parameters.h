// Parameters live in one contiguous arena and their gradients in another, so
// the optimizer, checkpoints and a future all-reduce are one loop or one call.
// bind() moves each registered tensor's values into the arena and rebinds the
// tensor to a view of it, with a leaf node whose gradient is a view of the
// gradient arena.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace deja::core {

struct NamedParameter {
  std::string name;  // hierarchical: "conv1.weight"
  Tensor* tensor;    // non-owning: the module's own member
};

struct ParameterEntry {
  std::string name;
  Shape shape;
  int64_t offset;  // in floats, into values() and grads()
};

class ParameterArena {
 public:
  void bind(const std::vector<NamedParameter>& params);
  Tensor& values() { return values_; }
  Tensor& grads() { return grads_; }
  const Tensor& values() const { return values_; }
  const Tensor& grads() const { return grads_; }
  const std::vector<ParameterEntry>& entries() const { return entries_; }
  const ParameterEntry* find(const std::string& name) const;
  int64_t size() const { return values_.defined() ? values_.numel() : 0; }
  void zero_grad();

 private:
  Tensor values_, grads_;
  std::vector<ParameterEntry> entries_;
};

}  // namespace deja::core
