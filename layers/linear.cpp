// Linear forward/backward over the weight product. Rows R = product of the
// leading input dimensions; Y[R, out] = X[R, in] . W^T + b. Backward: dW and dX
// in one product backward call (dX written straight into the input's gradient
// buffer, accumulating when it already holds one), bias gradient = column sums
// of dY.
#include "layers/linear.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/autograd.h"

namespace deja::layers {

namespace {

std::string dim_error(const char* key, int64_t got) {
  return std::string("linear: ") + key + " must be >= 1, got " + std::to_string(got);
}

class LinearNode final : public core::Node {
 public:
  LinearNode(std::shared_ptr<core::Product> product, std::unique_ptr<core::ProductSaved> saved,
             Tensor weight)
      : product_(std::move(product)), saved_(std::move(saved)), w_(std::move(weight)) {}

  const char* op_name() const override { return "linear"; }

  void backward(const Tensor& grad_output) override {
    const int64_t m_count = w_.size(0), k = w_.size(1);
    const int64_t rows = grad_output.numel() / m_count;
    Tensor dy = grad_output.reshaped({rows, m_count});

    if (input_needs_grad(2)) {
      float beta;
      float* db = input_grad(2, &beta);
      std::vector<double> sums(static_cast<size_t>(m_count), 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* line = dy.data() + r * m_count;
        for (int64_t m = 0; m < m_count; ++m) sums[static_cast<size_t>(m)] += line[m];
      }
      for (int64_t m = 0; m < m_count; ++m)
        db[m] = static_cast<float>(sums[static_cast<size_t>(m)]) + (beta != 0.0f ? db[m] : 0.0f);
    }

    float* dw = nullptr;
    if (input_needs_grad(1)) {
      float beta;
      dw = input_grad(1, &beta);
      if (beta == 0.0f) std::fill(dw, dw + m_count * k, 0.0f);  // the product accumulates
    }
    float* dx = nullptr;
    float dx_beta = 0.0f;
    if (input_needs_grad(0)) dx = input_grad(0, &dx_beta);
    product_->backward(*saved_, dy, w_, dw, dx, dx_beta);
  }

  void release() override {
    saved_.reset();
    product_.reset();
    w_ = Tensor();
  }

 private:
  std::shared_ptr<core::Product> product_;
  std::unique_ptr<core::ProductSaved> saved_;
  Tensor w_;
};

}  // namespace

void LinearOptions::validate() const {
  if (in_features < 1) throw std::invalid_argument(dim_error("in_features", in_features));
  if (out_features < 1) throw std::invalid_argument(dim_error("out_features", out_features));
}

Linear::Linear(const LinearOptions& options, core::Rng& init_rng)
    : options_(options), product_(core::make_dense_product()) {
  options_.validate();
  const float bound = 1.0f / std::sqrt(static_cast<float>(options_.in_features));
  weight_ = Tensor::empty({options_.out_features, options_.in_features});
  for (int64_t i = 0; i < weight_.numel(); ++i) weight_[i] = init_rng.uniform(-bound, bound);
  register_parameter("weight", &weight_);
  if (options_.bias) {
    bias_ = Tensor::empty({options_.out_features});
    for (int64_t i = 0; i < bias_.numel(); ++i) bias_[i] = init_rng.uniform(-bound, bound);
    register_parameter("bias", &bias_);
  }
}

void Linear::set_product(std::shared_ptr<core::Product> product) {
  if (!product) throw std::invalid_argument("linear: set_product needs a product, got null");
  product_ = std::move(product);
}

Shape Linear::output_shape(const Shape& input) const {
  if (input.empty() || input.back() != options_.in_features)
    throw std::invalid_argument("linear: input " + core::shape_to_string(input) +
                                " does not fit: expected [..., " +
                                std::to_string(options_.in_features) + "]");
  Shape out = input;
  out.back() = options_.out_features;
  return out;
}

int64_t Linear::forward_flops(const Shape& input) const {
  Shape out = output_shape(input);
  return 2 * core::shape_numel(out) * options_.in_features;
}

Tensor Linear::forward(const Tensor& x) {
  Shape out_shape = output_shape(x.shape());
  const int64_t k = options_.in_features, m_count = options_.out_features;
  const int64_t rows = x.numel() / k;
  const bool grad = core::needs_grad({&x, &weight_, &bias_});

  Tensor x_rows = x.detached().reshaped({rows, k});
  Tensor w = weight_.detached();  // read at forward time: the arena rebinds members
  Tensor y = Tensor::empty({rows, m_count});
  std::unique_ptr<core::ProductSaved> saved = product_->forward(x_rows, w, y, grad);
  if (options_.bias) {
    const float* b = bias_.data();
    for (int64_t r = 0; r < rows; ++r) {
      float* line = y.data() + r * m_count;
      for (int64_t m = 0; m < m_count; ++m) line[m] += b[m];
    }
  }
  Tensor out = y.reshaped(out_shape);
  if (grad)
    core::attach(out, std::make_shared<LinearNode>(product_, std::move(saved), w),
                 {&x, &weight_, &bias_});
  return out;
}

}  // namespace deja::layers
