#include "apps/common/lm_task.h"

#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "core/stopwatch.h"
#include "layers/cross_entropy.h"
#include "reuse/settings.h"

namespace deja::apps {
namespace {
layers::LanguageModel& as_language_model(layers::Model& model) {
  auto* lm = dynamic_cast<layers::LanguageModel*>(&model.root());
  if (!lm) throw std::logic_error("language-model task needs a language_model model");
  return *lm;
}
}  // namespace

// The trainer, calibration and bench see reuse layers as modules with one
// product each; an LSTM has one product per layer, so each layer is exposed
// through this handle (never part of the module tree, never run forward).
class LstmLayerSlot final : public layers::Module {
 public:
  LstmLayerSlot(layers::Lstm& lstm, int64_t layer) : lstm_(lstm), layer_(layer) {}
  std::string type() const override { return "lstm_layer"; }
  core::Tensor forward(const core::Tensor&) override {
    throw std::logic_error("lstm_layer: a product handle, run the language model instead");
  }
  core::Shape output_shape(const core::Shape& input) const override { return input; }
  core::Product* product() override { return lstm_.products().at(static_cast<size_t>(layer_)); }
  void set_product(std::shared_ptr<core::Product> product) override {
    lstm_.set_layer_product(layer_, std::move(product));
  }

 private:
  layers::Lstm& lstm_;
  int64_t layer_;
};

LmTask::~LmTask() = default;

LmTask::LmTask(const core::Json& cfg, uint64_t) {
  const std::string where = "data";
  core::reject_unknown_keys(cfg, {"dataset", "path", "level", "batch_size", "seq_len", "eval_batch_size",
                                  "valid_fraction", "test_fraction", "min_count", "max_vocab"},
                            where);
  std::string dataset = core::read_string(cfg, "dataset", "text", where);
  if (dataset != "text")
    throw std::invalid_argument(where + ": key 'dataset' must be \"text\" for a language model, got \"" +
                                dataset + "\"");
  std::string path = core::read_string(cfg, "path", "", where);
  if (path.empty()) throw std::invalid_argument(where + ": missing key 'path' (a plain-text corpus file)");
  data::TextCorpusOptions o;
  o.level = core::read_string(cfg, "level", o.level, where);
  o.valid_fraction = core::read_number(cfg, "valid_fraction", o.valid_fraction, where);
  o.test_fraction = core::read_number(cfg, "test_fraction", o.test_fraction, where);
  o.min_count = core::read_int(cfg, "min_count", o.min_count, where);
  o.max_vocab = core::read_int(cfg, "max_vocab", o.max_vocab, where);
  batch_ = core::read_int(cfg, "batch_size", batch_, where);
  seq_len_ = core::read_int(cfg, "seq_len", seq_len_, where);
  eval_batch_ = core::read_int(cfg, "eval_batch_size", eval_batch_, where);
  if (batch_ < 1 || seq_len_ < 1 || eval_batch_ < 1)
    throw std::invalid_argument(where + ": batch_size, seq_len and eval_batch_size must be >= 1");
  corpus_ = std::make_unique<data::TextCorpus>(path, o);
  train_ = std::make_unique<data::BpttBatcher>(corpus_->train(), batch_, seq_len_);
  valid_ = std::make_unique<data::BpttBatcher>(corpus_->valid(), eval_batch_, seq_len_);
}

std::unique_ptr<layers::Model> LmTask::build_model(const core::Json& model_cfg, uint64_t seed) {
  auto options = layers::language_model_options_from_json(model_cfg, vocabulary_size());
  auto lm = std::make_unique<layers::LanguageModel>(options, seed);
  reuse::ReuseSettings settings;
  if (model_cfg.contains("reuse")) settings = reuse::settings_from_json(model_cfg["reuse"], settings, "model.reuse");
  // One reuse layer per LSTM layer ("rnn.l0", "rnn.l1", ...), each with its own
  // product, hash seed and statistics (so r_c is reported per layer).
  layers::Lstm& lstm = lm->lstm();
  slots_.clear();
  std::vector<layers::ReuseLayer> reuse_layers;
  for (int64_t k = 0; k < lstm.options().num_layers; ++k) {
    reuse::ReuseSettings s = settings;
    s.seed = seed * 0x9E3779B97F4A7C15ULL + 1 + static_cast<uint64_t>(k);
    lstm.set_layer_product(k, reuse::make_product(s));
    slots_.push_back(std::make_unique<LstmLayerSlot>(lstm, k));
    reuse_layers.push_back({"rnn.l" + std::to_string(k), slots_.back().get(), s});
  }
  return std::make_unique<layers::Model>(std::move(lm), core::Shape{seq_len_}, std::move(reuse_layers));
}

std::vector<std::string> LmTask::notes() const {
  return {corpus_->describe(),
          "train: " + std::to_string(train_->windows()) + " windows of " + std::to_string(batch_) + " x " +
              std::to_string(seq_len_) + " tokens; valid: " + std::to_string(valid_->windows()) + " windows"};
}

void LmTask::start_epoch(int64_t, int64_t first_step) {
  window_ = first_step;
  fresh_state_ = true;
}

bool LmTask::next_batch() {
  if (window_ >= train_->windows()) return false;
  train_->get(window_++, inputs_, targets_);
  return true;
}

core::Tensor LmTask::forward_loss(layers::Model& model, int64_t* correct, int64_t* items) {
  auto& lm = as_language_model(model);
  if (fresh_state_) lm.reset_state();
  else lm.detach_state();
  fresh_state_ = false;
  core::Tensor logits = lm.forward(inputs_);
  *items = static_cast<int64_t>(targets_.size());
  return layers::softmax_cross_entropy(logits, targets_, correct);
}

EvalResult LmTask::evaluate_split(layers::Model& model, const data::BpttBatcher& batcher) {
  core::Stopwatch watch;
  core::NoGradGuard no_grad;
  auto& lm = as_language_model(model);
  bool was_training = model.is_training();
  model.eval();
  lm.reset_state();
  EvalResult r;
  double loss_sum = 0;
  int64_t correct_sum = 0;
  core::Tensor inputs;
  std::vector<int32_t> targets;
  for (int64_t w = 0; w < batcher.windows(); ++w) {
    batcher.get(w, inputs, targets);
    lm.detach_state();
    int64_t correct = 0;
    core::Tensor loss = layers::softmax_cross_entropy(lm.forward(inputs), targets, &correct);
    auto n = static_cast<int64_t>(targets.size());
    loss_sum += static_cast<double>(loss[0]) * static_cast<double>(n);
    correct_sum += correct;
    r.items += n;
  }
  lm.reset_state();
  model.train(was_training);
  if (r.items) {
    r.loss = loss_sum / static_cast<double>(r.items);
    r.accuracy = static_cast<double>(correct_sum) / static_cast<double>(r.items);
  }
  r.seconds = watch.seconds();
  return r;
}

EvalResult LmTask::evaluate(layers::Model& model) {
  // Evaluation resets the carried state; the next training window starts fresh too,
  // which is also what a resumed run sees.
  fresh_state_ = true;
  return evaluate_split(model, *valid_);
}

void LmTask::add_epoch_fields(core::Json& record, const EvalResult& train, const EvalResult& test) const {
  record["train_perplexity"] = std::exp(train.loss);
  record["test_perplexity"] = std::exp(test.loss);
  record["test_split"] = "valid";
}

}  // namespace deja::apps
