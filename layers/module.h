// Module: the base of every layer and of models. Named parameters and buffers
// ("conv1.weight", "bn1.running_mean"), named children, and a train/eval flag
// that reaches every child. Modules are neither copied nor moved: parameters
// are registered by address and rebound into the model's parameter arena.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/parameters.h"
#include "core/product.h"
#include "core/tensor.h"

namespace deja::layers {

using core::Shape;
using core::Tensor;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual std::string type() const = 0;  // the config's "type": "conv2d", "relu", ...
  virtual Tensor forward(const Tensor& x) = 0;
  // Shape inference without computing; throws std::invalid_argument naming
  // both shapes when the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;
  // Multiply-adds counted as 2 FLOPs, for one forward pass of `input`.
  virtual int64_t forward_flops(const Shape& input) const {
    (void)input;
    return 0;
  }

  // How the dense path computes for `input` when the layer chooses among
  // algorithms by shape (conv2d: "winograd" or "im2col"), else "": for the
  // model summary.
  virtual std::string dense_algorithm(const Shape& input) const {
    (void)input;
    return "";
  }

  // The weight product this layer's GEMMs go through (null for layers without one).
  virtual core::Product* product() { return nullptr; }
  virtual void set_product(std::shared_ptr<core::Product> product);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  std::vector<core::NamedParameter> named_parameters(const std::string& prefix = "");
  std::vector<core::NamedParameter> named_buffers(const std::string& prefix = "");
  // Every module below this one, with its hierarchical name ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  void register_parameter(std::string name, Tensor* tensor);
  void register_buffer(std::string name, Tensor* tensor);  // saved, not trained
  Module& register_module(std::string name, std::unique_ptr<Module> module);
  virtual void on_train_changed() {}

 private:
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor*>> parameters_, buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

}  // namespace deja::layers
