// What differs between training an image classifier and a language model:
// where batches come from, how the loss and accuracy are computed, and how the
// test split is evaluated. The trainer (apps/common/trainer.h) drives either
// through this interface, so timing, checkpoints, logging and the reuse
// schedule are written once.
#pragma once
#include <cstdint>
#include <string>

#include "core/json_util.h"
#include "core/tensor.h"
#include "layers/model.h"

namespace deja::apps {

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // 0..1 (token accuracy for language models)
  int64_t items = 0;      // images or tokens
  double seconds = 0.0;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;              // "image_classification" | "language_model"
  virtual std::string item_name() const = 0;         // "images" | "tokens"
  virtual int64_t steps_per_epoch() const = 0;
  // Positions the training data at (epoch, step) so a resumed run sees the
  // same batches an uninterrupted one would.
  virtual void start_epoch(int64_t epoch, int64_t first_step) = 0;
  virtual bool next_batch() = 0;                      // false at the end of the epoch
  // Forward of the current batch to a scalar loss (with graph); counts items
  // and correct predictions.
  virtual core::Tensor forward_loss(layers::Model& model, int64_t* correct, int64_t* items) = 0;
  virtual EvalResult evaluate(layers::Model& model) = 0;
  // Per-example input shape the model sees (for summaries and benches).
  virtual core::Shape input_shape() const = 0;
  virtual int64_t batch_size() const = 0;
  virtual std::vector<std::string> notes() const { return {}; }
  // Extra per-epoch fields for metrics.jsonl (e.g. perplexity).
  virtual void add_epoch_fields(core::Json& record, const EvalResult& train, const EvalResult& test) const {
    (void)record, (void)train, (void)test;
  }
};

}  // namespace deja::apps
