// Sequential: named children run in the order they were added. Parameter names
// follow the child names ("conv1.weight"); train/eval reaches every child via
// Module. Shape inference chains through the children and errors from a child
// propagate unchanged (they already name the layer type and both shapes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "layers/module.h"

namespace deja::layers {

class Sequential : public Module {
 public:
  // Registers `m` as child `name` (unique: a duplicate throws) and returns it.
  Module& add(std::string name, std::unique_ptr<Module> m);
  int64_t size() const { return static_cast<int64_t>(children().size()); }
  Module& at(int64_t i);  // throws std::out_of_range outside [0, size())
  const std::string& name_at(int64_t i) const;

  std::string type() const override { return "sequential"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;  // sum over children

 private:
  void check_index(int64_t i) const;
};

}  // namespace deja::layers
