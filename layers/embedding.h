// Embedding: a lookup table from token ids to vectors. Input [B, T] floats
// holding integer token ids (the data pipeline's tensors are float32), output
// [B, T, dim]. Weight [num_embeddings, dim] ~ N(0, 1) like PyTorch. Backward
// scatter-adds the output gradient into the weight rows that were looked up
// (serial: rows repeat, and the add is cheap next to the GEMMs around it).
// Limits: no padding index, no max-norm, no sparse gradients.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "layers/module.h"

namespace deja::layers {

struct EmbeddingOptions {
  int64_t num_embeddings = 0, dim = 0;
  void validate() const;  // throws std::invalid_argument naming the field and value
};

class Embedding final : public Module {
 public:
  Embedding(const EmbeddingOptions& options, core::Rng& init_rng);
  std::string type() const override { return "embedding"; }
  Tensor forward(const Tensor& ids) override;
  Shape output_shape(const Shape& input) const override;
  Tensor& weight() { return weight_; }
  const EmbeddingOptions& options() const { return options_; }

 private:
  EmbeddingOptions options_;
  Tensor weight_;
};

}  // namespace deja::layers
