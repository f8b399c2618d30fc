#include "core/ops.h"

#include "core/autograd.h"

namespace deja::core {

namespace {
class ReshapeNode final : public Node {
 public:
  const char* op_name() const override { return "reshape"; }
  void backward(const Tensor& grad_output) override { add_input_grad(0, grad_output); }
};
}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  Tensor y = x.detached().reshaped(std::move(shape));
  if (needs_grad({&x})) attach(y, std::make_shared<ReshapeNode>(), {&x});
  return y;
}

}  // namespace deja::core
