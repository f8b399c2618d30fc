#include "layers/dropout.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/autograd.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {
// out = in * mask (or out += ...); restrict pointers so it vectorises.
void mask_span(const float* __restrict in, const float* __restrict mask, float* __restrict out, int64_t n,
               bool accumulate) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) out[i] += in[i] * mask[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * mask[i];
  }
}

class DropoutNode final : public core::Node {
 public:
  explicit DropoutNode(Tensor mask) : mask_(std::move(mask)) {}
  const char* op_name() const override { return "dropout"; }
  void backward(const Tensor& grad_output) override {
    float beta = 0.0f;
    float* dx = input_grad(0, &beta);
    const float* g = grad_output.data();
    const float* m = mask_.data();
    const bool accumulate = beta != 0.0f;
    core::parallel_for(mask_.numel(), [=](int64_t b, int64_t e) {
      mask_span(g + b, m + b, dx + b, e - b, accumulate);
    }, 1 << 14);
  }
  void release() override { mask_ = Tensor(); }

 private:
  Tensor mask_;  // 0 for dropped elements, 1/(1-p) for kept ones
};
}  // namespace

void DropoutOptions::validate() const {
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument(fmt::format("dropout: p must be in [0, 1), got {}", p));
}

Tensor dropout(const Tensor& x, double p, core::Rng& rng) {
  DropoutOptions{p}.validate();
  Tensor y = Tensor::empty(x.shape());
  Tensor mask = Tensor::empty(x.shape());
  // An element is dropped when a 32-bit draw falls below p * 2^32: one integer
  // compare per element, no float conversion.
  const uint64_t threshold = static_cast<uint64_t>(std::ldexp(p, 32));
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  float* m = mask.data();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) m[i] = rng.next_u32() < threshold ? 0.0f : keep;
  const float* in = x.data();
  float* out = y.data();
  core::parallel_for(n, [=](int64_t b, int64_t e) { mask_span(in + b, m + b, out + b, e - b, false); }, 1 << 14);
  if (core::needs_grad({&x})) core::attach(y, std::make_shared<DropoutNode>(std::move(mask)), {&x});
  return y;
}

Dropout::Dropout(const DropoutOptions& options, core::Rng rng) : options_(options), rng_(rng) {
  options_.validate();
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || options_.p == 0.0) return x;
  return dropout(x, options_.p, rng_);
}

int64_t Dropout::forward_flops(const Shape& input) const { return core::shape_numel(input); }

}  // namespace deja::layers
