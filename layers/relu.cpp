#include "layers/relu.h"

#include "core/autograd.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per parallel task: a few L1-sized strips

// The kernels take restrict pointers (and load before selecting) so the
// compiler emits branch-free vector code: signs are random, a branch per
// element mispredicts half the time.
void relu_forward_span(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_span(const float* __restrict g, const float* __restrict y, float* __restrict dx, int64_t n,
                        bool accumulate) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      dx[i] += y[i] > 0.0f ? gi : 0.0f;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      dx[i] = y[i] > 0.0f ? gi : 0.0f;
    }
  }
}

class ReluNode final : public core::Node {
 public:
  explicit ReluNode(Tensor y) : y_(std::move(y)) {}
  const char* op_name() const override { return "relu"; }
  void backward(const Tensor& grad_output) override {
    float beta = 0.0f;
    float* dx = input_grad(0, &beta);
    const float* g = grad_output.data();
    const float* y = y_.data();
    const bool accumulate = beta != 0.0f;  // a fresh buffer is uninitialised: never read it
    core::parallel_for(y_.numel(), [=](int64_t b, int64_t e) {
      relu_backward_span(g + b, y + b, dx + b, e - b, accumulate);
    }, kChunk);
  }
  void release() override { y_ = Tensor(); }

 private:
  Tensor y_;  // the output, detached; y > 0 is the mask
};
}  // namespace

Tensor relu(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  const float* in = x.data();
  float* out = y.data();
  core::parallel_for(x.numel(), [=](int64_t b, int64_t e) { relu_forward_span(in + b, out + b, e - b); }, kChunk);
  if (core::needs_grad({&x})) core::attach(y, std::make_shared<ReluNode>(y.detached()), {&x});
  return y;
}

}  // namespace deja::layers
