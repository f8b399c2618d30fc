#include "layers/cross_entropy.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/autograd.h"

namespace deja::layers {

using core::Tensor;

namespace {
class CrossEntropyNode final : public core::Node {
 public:
  CrossEntropyNode(Tensor probs, std::vector<int32_t> labels)
      : probs_(std::move(probs)), labels_(std::move(labels)) {}
  const char* op_name() const override { return "softmax_cross_entropy"; }
  void backward(const Tensor& grad_output) override {
    const int64_t n = probs_.size(0), c = probs_.size(1);
    const float scale = grad_output[0] / static_cast<float>(n);
    float beta = 0.0f;
    float* dx = input_grad(0, &beta);
    const float* p = probs_.data();
    for (int64_t i = 0; i < n; ++i) {
      float* row = dx + i * c;
      const float* pr = p + i * c;
      if (beta != 0.0f) {
        for (int64_t j = 0; j < c; ++j) row[j] += scale * pr[j];
      } else {
        for (int64_t j = 0; j < c; ++j) row[j] = scale * pr[j];
      }
      row[labels_[i]] -= scale;
    }
  }
  void release() override {
    probs_ = Tensor();
    labels_.clear();
  }

 private:
  Tensor probs_;  // softmax(logits), [N, C]
  std::vector<int32_t> labels_;
};
}  // namespace

Tensor softmax_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels,
                             int64_t* correct) {
  if (logits.dim() != 2 || logits.size(0) < 1 || logits.size(1) < 1)
    throw std::invalid_argument("cross_entropy: logits must be [N, C] with N, C >= 1, got " +
                                core::shape_to_string(logits.shape()));
  const int64_t n = logits.size(0), c = logits.size(1);
  if (static_cast<int64_t>(labels.size()) != n)
    throw std::invalid_argument("cross_entropy: " + std::to_string(labels.size()) +
                                " labels for logits " + core::shape_to_string(logits.shape()));
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= c)
      throw std::invalid_argument("cross_entropy: label " + std::to_string(labels[i]) +
                                  " of row " + std::to_string(i) + " is out of range [0, " +
                                  std::to_string(c) + ")");

  const bool grad = core::needs_grad({&logits});
  Tensor probs = grad ? Tensor::empty({n, c}) : Tensor();
  const float* x = logits.data();
  double total = 0.0;
  int64_t hits = 0;
  // Rows are few (a batch) and short (classes): a plain loop beats the pool.
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    const float mx = row[best];
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    // -log p[label] = log sum exp(x - max) - (x[label] - max)
    total += std::log(sum) - static_cast<double>(row[labels[i]] - mx);
    if (best == labels[i]) ++hits;
    if (grad) {
      float* p = probs.data() + i * c;
      const double inv = 1.0 / sum;
      for (int64_t j = 0; j < c; ++j)
        p[j] = static_cast<float>(std::exp(static_cast<double>(row[j] - mx)) * inv);
    }
  }
  if (correct) *correct = hits;
  Tensor loss = Tensor::full({1}, static_cast<float>(total / static_cast<double>(n)));
  if (grad) core::attach(loss, std::make_shared<CrossEntropyNode>(std::move(probs), labels), {&logits});
  return loss;
}

}  // namespace deja::layers
