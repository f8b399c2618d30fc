// Word/character language model: embedding ("encoder") -> dropout -> LSTM
// ("rnn") -> dropout -> linear decoder ("decoder"), the layout and parameter
// names of PyTorch's word_language_model example, so checkpoints map by name.
// Input [B, T] token ids (floats), output logits [B*T, vocab] in row order
// b*T + t (the order of the labels a text loader yields for batch-first
// windows). With tie_weights the decoder uses the embedding's weight (which is
// then registered once, as encoder.weight) and needs hidden == embedding; the
// tied decoder's GEMM goes through a core::Product like a linear layer's.
// Limits: LSTM only (no GRU), one dropout rate for all places.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/json_util.h"
#include "layers/embedding.h"
#include "layers/lstm.h"
#include "layers/module.h"

namespace deja::layers {

struct LanguageModelOptions {
  int64_t vocab = 0, embedding = 200, hidden = 200, layers = 2;
  double dropout = 0.2;
  bool tie_weights = false;
  void validate() const;  // throws std::invalid_argument naming the field and value
};

class LanguageModel final : public Module {
 public:
  LanguageModel(const LanguageModelOptions& options, uint64_t seed);
  std::string type() const override { return "language_model"; }
  Tensor forward(const Tensor& ids) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;

  Lstm& lstm() { return *lstm_; }
  Embedding& embedding() { return *embedding_; }
  void reset_state() { lstm_->reset_state(); }
  void detach_state() { lstm_->detach_state(); }
  const LanguageModelOptions& options() const { return options_; }

 private:
  LanguageModelOptions options_;
  Embedding* embedding_ = nullptr;  // owned by children()
  Module* drop_in_ = nullptr;
  Lstm* lstm_ = nullptr;
  Module* drop_out_ = nullptr;
  Module* decoder_ = nullptr;
};

// Reads {"type": "language_model", "embedding", "hidden", "layers", "dropout",
// "tie_weights", "reuse"?}; unknown keys are rejected ("reuse" is allowed and
// left to the caller). vocab comes from the corpus.
LanguageModelOptions language_model_options_from_json(const core::Json& model_cfg, int64_t vocab,
                                                      const std::string& where = "model");

}  // namespace deja::layers
