// Embedding lookup and its scatter-add backward (see embedding.h).
#include "layers/embedding.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {

class EmbeddingNode final : public core::Node {
 public:
  EmbeddingNode(std::vector<int32_t> ids, int64_t dim) : ids_(std::move(ids)), dim_(dim) {}
  const char* op_name() const override { return "embedding"; }
  void backward(const Tensor& grad_output) override {
    if (!input_needs_grad(0)) return;
    float beta = 0.0f;
    float* dw = input_grad(0, &beta);
    if (beta == 0.0f) {
      // A fresh (non-leaf) buffer: zero it, rows not looked up get no gradient.
      const int64_t total = core::shape_numel(inputs()[0]->output_shape());
      std::fill(dw, dw + total, 0.0f);
    }
    // Serial on purpose: the same id repeats within a batch, and a row-parallel
    // split would need a sort; this is a few hundred thousand adds per window.
    const float* g = grad_output.data();
    for (size_t n = 0; n < ids_.size(); ++n) {
      float* row = dw + static_cast<int64_t>(ids_[n]) * dim_;
      const float* src = g + static_cast<int64_t>(n) * dim_;
      for (int64_t d = 0; d < dim_; ++d) row[d] += src[d];
    }
  }
  void release() override { ids_.clear(); ids_.shrink_to_fit(); }

 private:
  std::vector<int32_t> ids_;
  int64_t dim_;
};

}  // namespace

void EmbeddingOptions::validate() const {
  if (num_embeddings < 1)
    throw std::invalid_argument("embedding: num_embeddings must be >= 1, got " +
                                std::to_string(num_embeddings));
  if (num_embeddings > (int64_t{1} << 31) - 1)
    throw std::invalid_argument("embedding: num_embeddings must fit in 32 bits, got " +
                                std::to_string(num_embeddings));
  if (dim < 1) throw std::invalid_argument("embedding: dim must be >= 1, got " + std::to_string(dim));
}

Embedding::Embedding(const EmbeddingOptions& options, core::Rng& init_rng) : options_(options) {
  options_.validate();
  weight_ = Tensor::empty({options_.num_embeddings, options_.dim});
  for (int64_t i = 0; i < weight_.numel(); ++i) weight_[i] = init_rng.normal(0.0f, 1.0f);
  register_parameter("weight", &weight_);
}

Shape Embedding::output_shape(const Shape& input) const {
  if (input.empty())
    throw std::invalid_argument("embedding: expected token ids [B, T], got " +
                                core::shape_to_string(input));
  Shape out = input;
  out.push_back(options_.dim);
  return out;
}

Tensor Embedding::forward(const Tensor& ids) {
  const Shape out_shape = output_shape(ids.shape());
  const int64_t n = ids.numel(), dim = options_.dim;
  std::vector<int32_t> index(static_cast<size_t>(n));
  const float* src = ids.data();
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i];
    if (!(v >= 0.0f) || v >= static_cast<float>(options_.num_embeddings) || v != std::floor(v))
      throw std::invalid_argument("embedding: token id " + std::to_string(v) + " at position " +
                                  std::to_string(i) + " is not an integer in [0, " +
                                  std::to_string(options_.num_embeddings) + ")");
    index[static_cast<size_t>(i)] = static_cast<int32_t>(v);
  }
  Tensor out = Tensor::empty(out_shape);
  const float* w = weight_.data();
  float* y = out.data();
  core::parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          std::copy(w + static_cast<int64_t>(index[static_cast<size_t>(i)]) * dim,
                    w + static_cast<int64_t>(index[static_cast<size_t>(i)] + 1) * dim,
                    y + i * dim);
      },
      64);
  if (core::needs_grad({&weight_}))
    core::attach(out, std::make_shared<EmbeddingNode>(std::move(index), dim), {&weight_});
  return out;
}

}  // namespace deja::layers
