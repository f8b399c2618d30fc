// Reverse-mode autograd over coarse ops (micrograd's shape, flashlight's
// payloads). Each differentiable op, when it runs with grad enabled and an input
// that needs a gradient, creates one Node subclass holding what its backward
// needs and attaches it to its output. backward(loss) walks the graph in reverse
// topological order; every node's output gradient is freed, with its saved
// state, as soon as its backward has run. Only leaves (parameters) keep
// gradients, in the gradient arena (core/parameters.h).
//
// Rule for op writers: a node must never hold a tensor that points back at the
// node itself (save `y.detached()`, not `y`), or the graph leaks.
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"

namespace deja::core {

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* op_name() const = 0;
  // Adds the gradients of this node's inputs, given the gradient of its output.
  // Use input_grad()/add_input_grad(); skip inputs with !input_needs_grad(i).
  virtual void backward(const Tensor& grad_output) = 0;
  // Drops saved state once backward has run (buffers are freed early).
  virtual void release() {}
  virtual bool is_leaf() const { return false; }
  virtual Tensor leaf_grad() const { return Tensor(); }

  const Shape& output_shape() const { return output_shape_; }
  const std::vector<std::shared_ptr<Node>>& inputs() const { return inputs_; }
  bool input_needs_grad(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }

  // The buffer that receives input i's gradient. *beta is 0 when the buffer is
  // fresh (write it) and 1 when it already holds a gradient (add to it), ready
  // to pass as a GEMM's beta.
  float* input_grad(size_t i, float* beta);
  void add_input_grad(size_t i, const Tensor& grad);

  // Gradient of this node's output, accumulated from its consumers. Used by
  // the engine; ops read it as backward()'s argument.
  float* output_grad_buffer(float* beta);
  Tensor& accumulated_grad() { return grad_; }

 protected:
  void set_output_shape(Shape shape) { output_shape_ = std::move(shape); }

 private:
  friend void attach(Tensor& output, std::shared_ptr<Node> node,
                     std::initializer_list<const Tensor*> inputs);
  friend void backward(const Tensor& root, const Tensor& grad_root);
  std::vector<std::shared_ptr<Node>> inputs_;
  Shape output_shape_;
  Tensor grad_;
};

// A parameter: its gradient is a view into the gradient arena.
class LeafNode final : public Node {
 public:
  explicit LeafNode(Tensor grad_view) : grad_view_(std::move(grad_view)) {
    set_output_shape(grad_view_.shape());
  }
  const char* op_name() const override { return "leaf"; }
  void backward(const Tensor&) override {}
  bool is_leaf() const override { return true; }
  Tensor leaf_grad() const override { return grad_view_; }
  float* grad_data() { return grad_view_.data(); }

 private:
  Tensor grad_view_;
};

// Whether ops record the graph (thread-local; off inside NoGradGuard).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad is enabled and any of the inputs needs a gradient.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Links `node` as the producer of `output`, with the producers of `inputs`
// (in order) as its inputs. Inputs that need no gradient are recorded as null.
void attach(Tensor& output, std::shared_ptr<Node> node,
            std::initializer_list<const Tensor*> inputs);

// Back-propagates from `root`. With no `grad_root`, root must hold one element
// and its gradient is 1. Leaf gradients accumulate into the gradient arena.
void backward(const Tensor& root, const Tensor& grad_root = Tensor());

}  // namespace deja::core
