// Language modelling: a text corpus (data/text_corpus.h) cut into truncated
// BPTT windows; the LSTM state is carried across the windows of an epoch and
// detached between them; loss is mean token cross-entropy, reported with its
// perplexity. Validation runs on the corpus's valid split each epoch.
// Reuse layers are the LSTM's layers, one each ("rnn.l0", ...): their product
// handles belong to this task, so the task must outlive the model's
// reuse_layers() use (TaskAndModel and the trainer destroy the model first).
#pragma once
#include <memory>

#include "apps/common/task.h"
#include "data/text_corpus.h"
#include "layers/language_model.h"

namespace deja::apps {

class LstmLayerSlot;

class LmTask final : public Task {
 public:
  // data keys: "dataset": "text", "path", "level" ("word"|"char"), "batch_size", "seq_len",
  // "eval_batch_size", "valid_fraction", "test_fraction", "min_count", "max_vocab"
  LmTask(const core::Json& data_cfg, uint64_t seed);
  ~LmTask() override;
  std::unique_ptr<layers::Model> build_model(const core::Json& model_cfg, uint64_t seed);
  std::string name() const override { return "language_model"; }
  std::string item_name() const override { return "tokens"; }
  int64_t steps_per_epoch() const override { return train_->windows(); }
  void start_epoch(int64_t epoch, int64_t first_step) override;
  bool next_batch() override;
  core::Tensor forward_loss(layers::Model& model, int64_t* correct, int64_t* items) override;
  EvalResult evaluate(layers::Model& model) override;
  core::Shape input_shape() const override { return {seq_len_}; }
  int64_t batch_size() const override { return batch_; }
  std::vector<std::string> notes() const override;
  void add_epoch_fields(core::Json& record, const EvalResult& train, const EvalResult& test) const override;
  // The current training window's token ids [B, T] (after next_batch()).
  const core::Tensor& inputs() const { return inputs_; }
  int64_t vocabulary_size() const { return static_cast<int64_t>(corpus_->vocabulary().size()); }

 private:
  EvalResult evaluate_split(layers::Model& model, const data::BpttBatcher& batcher);
  std::unique_ptr<data::TextCorpus> corpus_;
  std::vector<std::unique_ptr<LstmLayerSlot>> slots_;  // reuse-layer handles of the last built model
  std::unique_ptr<data::BpttBatcher> train_, valid_;
  int64_t batch_ = 20, seq_len_ = 35, eval_batch_ = 10;
  int64_t window_ = 0;
  bool fresh_state_ = true;
  core::Tensor inputs_;
  std::vector<int32_t> targets_;
};

}  // namespace deja::apps
