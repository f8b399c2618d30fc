// The LSTM language model and its config reader (see language_model.h). The
// tied decoder is a small module of its own here: it borrows the embedding's
// weight (read through a pointer at forward time, since binding the parameter
// arena rebinds the member) and owns only its bias.
#include "layers/language_model.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "layers/dropout.h"
#include "layers/linear.h"

namespace deja::layers {

namespace {

class TiedDecoderNode final : public core::Node {
 public:
  int64_t rows = 0, vocab = 0;
  Tensor w;
  std::shared_ptr<core::Product> product;
  std::unique_ptr<core::ProductSaved> saved;

  const char* op_name() const override { return "tied_decoder"; }
  void backward(const Tensor& grad_output) override {
    const float* g = grad_output.data();
    if (input_needs_grad(2)) {
      Tensor db = Tensor::zeros({vocab});
      float* d = db.data();
      core::parallel_for(
          vocab,
          [&](int64_t c0, int64_t c1) {
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = c0; c < c1; ++c) d[c] += g[r * vocab + c];
          },
          512);
      add_input_grad(2, db);
    }
    const bool want_dw = input_needs_grad(1), want_dx = input_needs_grad(0);
    if (!want_dw && !want_dx) return;
    float wbeta = 0.0f, xbeta = 0.0f;
    float* dw = want_dw ? input_grad(1, &wbeta) : nullptr;
    if (dw && wbeta == 0.0f) std::fill(dw, dw + w.numel(), 0.0f);  // the product accumulates
    float* dx = want_dx ? input_grad(0, &xbeta) : nullptr;
    product->backward(*saved, grad_output.reshaped({rows, vocab}), w, dw, dx, xbeta);
  }
  void release() override {
    w = Tensor();
    saved.reset();
    product.reset();
  }
};

// logits = x . W^T + b with W borrowed from the embedding ([vocab, dim]).
class TiedDecoder final : public Module {
 public:
  TiedDecoder(Tensor* weight, int64_t vocab) : weight_(weight), product_(core::make_dense_product()) {
    bias_ = Tensor::zeros({vocab});
    register_parameter("bias", &bias_);
  }
  std::string type() const override { return "tied_decoder"; }
  Shape output_shape(const Shape& input) const override {
    const int64_t dim = weight_->size(1);
    if (input.empty() || input.back() != dim)
      throw std::invalid_argument("tied_decoder: expected input [..., " + std::to_string(dim) +
                                  "], got " + core::shape_to_string(input));
    Shape out = input;
    out.back() = weight_->size(0);
    return out;
  }
  int64_t forward_flops(const Shape& input) const override {
    const Shape out = output_shape(input);
    return 2 * core::shape_numel(out) * weight_->size(1);
  }
  Tensor forward(const Tensor& x) override {
    const Shape out_shape = output_shape(x.shape());
    const int64_t dim = weight_->size(1), vocab = weight_->size(0), rows = x.numel() / dim;
    const Tensor& w = *weight_;
    const bool grad = core::needs_grad({&x, &w, &bias_});
    Tensor y = Tensor::empty({rows, vocab});
    auto saved = product_->forward(x.detached().reshaped({rows, dim}), w.detached(), y, grad);
    float* yp = y.data();
    const float* b = bias_.data();
    core::parallel_for(
        rows,
        [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = 0; c < vocab; ++c) yp[r * vocab + c] += b[c];
        },
        8);
    Tensor out = y.reshaped(out_shape);
    if (grad) {
      auto node = std::make_shared<TiedDecoderNode>();
      node->rows = rows;
      node->vocab = vocab;
      node->w = w.detached();
      node->product = product_;
      node->saved = std::move(saved);
      core::attach(out, std::move(node), {&x, &w, &bias_});
    }
    return out;
  }
  core::Product* product() override { return product_.get(); }
  void set_product(std::shared_ptr<core::Product> product) override {
    if (!product) throw std::invalid_argument("tied_decoder: set_product given a null product");
    product_ = std::move(product);
  }

 private:
  Tensor* weight_;  // the embedding's member (not owned, not registered here)
  Tensor bias_;
  std::shared_ptr<core::Product> product_;
};

void init_uniform(Tensor& t, float bound, core::Rng& rng) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-bound, bound);
}

}  // namespace

void LanguageModelOptions::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v < 1)
      throw std::invalid_argument(std::string("language_model: ") + name + " must be >= 1, got " +
                                  std::to_string(v));
  };
  positive("vocab", vocab);
  positive("embedding", embedding);
  positive("hidden", hidden);
  positive("layers", layers);
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("language_model: dropout must be in [0, 1), got " +
                                std::to_string(dropout));
  if (tie_weights && embedding != hidden)
    throw std::invalid_argument("language_model: tie_weights needs embedding == hidden, got " +
                                std::to_string(embedding) + " and " + std::to_string(hidden));
}

LanguageModel::LanguageModel(const LanguageModelOptions& options, uint64_t seed) : options_(options) {
  options_.validate();
  core::Rng init = core::make_rng(seed, core::RngPurpose::Init);
  auto emb = std::make_unique<Embedding>(EmbeddingOptions{options_.vocab, options_.embedding}, init);
  // PyTorch's word_language_model init: encoder and decoder U(-0.1, 0.1), decoder bias 0.
  init_uniform(emb->weight(), 0.1f, init);
  embedding_ = &static_cast<Embedding&>(register_module("encoder", std::move(emb)));
  drop_in_ = &register_module(
      "drop_in", std::make_unique<Dropout>(DropoutOptions{options_.dropout},
                                           core::make_rng(seed, core::RngPurpose::Dropout, 0)));
  LstmOptions lo{options_.embedding, options_.hidden, options_.layers, options_.dropout};
  lstm_ = &static_cast<Lstm&>(register_module(
      "rnn", std::make_unique<Lstm>(lo, init, core::make_rng(seed, core::RngPurpose::Dropout, 1))));
  drop_out_ = &register_module(
      "drop_out", std::make_unique<Dropout>(DropoutOptions{options_.dropout},
                                            core::make_rng(seed, core::RngPurpose::Dropout, 2)));
  if (options_.tie_weights) {
    decoder_ = &register_module("decoder",
                                std::make_unique<TiedDecoder>(&embedding_->weight(), options_.vocab));
  } else {
    auto dec = std::make_unique<Linear>(LinearOptions{options_.hidden, options_.vocab, true}, init);
    init_uniform(dec->weight(), 0.1f, init);
    dec->bias().fill(0.0f);
    decoder_ = &register_module("decoder", std::move(dec));
  }
}

Shape LanguageModel::output_shape(const Shape& input) const {
  if (input.size() != 2 || input[0] < 1 || input[1] < 1)
    throw std::invalid_argument("language_model: expected token ids [B, T], got " +
                                core::shape_to_string(input));
  return {input[0] * input[1], options_.vocab};
}

int64_t LanguageModel::forward_flops(const Shape& input) const {
  const Shape out = output_shape(input);
  return lstm_->forward_flops({input[0], input[1], options_.embedding}) +
         2 * out[0] * out[1] * options_.hidden;
}

Tensor LanguageModel::forward(const Tensor& ids) {
  const Shape out_shape = output_shape(ids.shape());
  Tensor h = embedding_->forward(ids);
  h = drop_in_->forward(h);
  h = lstm_->forward(h);
  h = drop_out_->forward(h);
  h = decoder_->forward(h);
  return core::reshape(h, out_shape);
}

LanguageModelOptions language_model_options_from_json(const core::Json& model_cfg, int64_t vocab,
                                                      const std::string& where) {
  core::reject_unknown_keys(model_cfg,
                            {"type", "embedding", "hidden", "layers", "dropout", "tie_weights", "reuse"},
                            where);
  const std::string type = core::read_string(model_cfg, "type", "language_model", where);
  if (type != "language_model")
    throw std::invalid_argument(where + ": key 'type' must be \"language_model\", got \"" + type + "\"");
  LanguageModelOptions o;
  o.vocab = vocab;
  o.embedding = core::read_int(model_cfg, "embedding", o.embedding, where);
  o.hidden = core::read_int(model_cfg, "hidden", o.hidden, where);
  o.layers = core::read_int(model_cfg, "layers", o.layers, where);
  o.dropout = core::read_number(model_cfg, "dropout", o.dropout, where);
  o.tie_weights = core::read_bool(model_cfg, "tie_weights", o.tie_weights, where);
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  return o;
}

}  // namespace deja::layers
