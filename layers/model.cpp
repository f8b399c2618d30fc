#include "layers/model.h"

#include <fmt/format.h>

#include <algorithm>

#include "layers/dropout.h"
#include "layers/lstm.h"
#include "layers/sequential.h"
#include "reuse/reuse_product.h"

namespace deja::layers {

Model::Model(std::unique_ptr<Module> root, Shape input_shape, std::vector<ReuseLayer> reuse_layers)
    : root_(std::move(root)),
      input_shape_(std::move(input_shape)),
      reuse_layers_(std::move(reuse_layers)) {
  arena_.bind(root_->named_parameters());
}

namespace {

// An LSTM's layers have different input widths (embedding, then hidden), so
// one shared ReuseProduct would rebuild its hash matrices on every call and
// merge the layers' statistics: each layer gets its own product, seeded
// seed + k so their hash matrices differ. A product already owned by one
// layer alone only switches settings (keeping its hash matrices).
void apply_lstm_reuse(Lstm& lstm, const reuse::ReuseSettings& settings) {
  const std::vector<core::Product*> current = lstm.products();
  for (int64_t k = 0; k < static_cast<int64_t>(current.size()); ++k) {
    reuse::ReuseSettings s = settings;
    s.seed = settings.seed + static_cast<uint64_t>(k);
    core::Product* p = current[static_cast<size_t>(k)];
    const bool shared = std::count(current.begin(), current.end(), p) > 1;
    auto* reuse_product = dynamic_cast<reuse::ReuseProduct*>(p);
    if (s.enabled && !s.lowrank && reuse_product && !shared) reuse_product->set_settings(s);
    else lstm.set_layer_product(k, reuse::make_product(s));
  }
}

}  // namespace

void Model::apply_reuse(size_t i, const reuse::ReuseSettings& settings) {
  Module& m = *reuse_layers_.at(i).module;
  if (auto* lstm = dynamic_cast<Lstm*>(&m)) {
    apply_lstm_reuse(*lstm, settings);
    return;
  }
  if (settings.enabled && !settings.lowrank) {
    if (auto* current = dynamic_cast<reuse::ReuseProduct*>(m.product())) {
      current->set_settings(settings);
      return;
    }
  }
  m.set_product(reuse::make_product(settings));
}

std::vector<std::pair<std::string, core::Rng*>> Model::random_streams() {
  std::vector<std::pair<std::string, core::Rng*>> streams;
  for (auto& [name, module] : root_->named_modules())
    if (auto* dropout = dynamic_cast<Dropout*>(module)) streams.push_back({name, &dropout->rng()});
    else if (auto* lstm = dynamic_cast<Lstm*>(module)) streams.push_back({name, &lstm->dropout_rng()});
  return streams;
}

namespace {

int64_t count_parameters(Module& m) {
  int64_t n = 0;
  for (auto& p : m.named_parameters()) n += p.tensor->numel();
  return n;
}

std::string format_count(int64_t n) {
  if (n >= 10'000'000'000) return fmt::format("{:.1f}G", n / 1e9);
  if (n >= 10'000'000) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 10'000) return fmt::format("{:.1f}k", n / 1e3);
  return std::to_string(n);
}

// "dense (winograd)", "reuse(...)": the product and, when the layer picks
// its dense algorithm by shape, which one it takes for `input`.
std::string product_description(Module& m, const Shape& input) {
  std::string d = m.product()->describe();
  const std::string algorithm = m.dense_algorithm(input);
  return algorithm.empty() ? d : d + " (" + algorithm + ")";
}

}  // namespace

std::vector<LayerSummary> Model::summary(int64_t batch) const {
  std::vector<LayerSummary> rows;
  Shape shape = input_shape_;
  shape.insert(shape.begin(), batch);
  auto* seq = dynamic_cast<Sequential*>(root_.get());
  if (!seq) {
    LayerSummary s;
    s.name = root_->type();
    s.type = root_->type();
    s.output = root_->output_shape(shape);
    s.parameters = count_parameters(*root_);
    s.flops = root_->forward_flops(shape);
    if (root_->product()) s.product = product_description(*root_, shape);
    rows.push_back(s);
    return rows;
  }
  for (int64_t i = 0; i < seq->size(); ++i) {
    Module& m = seq->at(i);
    LayerSummary s;
    s.name = seq->name_at(i);
    s.type = m.type();
    s.flops = m.forward_flops(shape);
    if (m.product()) s.product = product_description(m, shape);
    shape = m.output_shape(shape);
    s.output = shape;
    s.parameters = count_parameters(m);
    rows.push_back(s);
  }
  return rows;
}

std::string Model::summary_table(int64_t batch) const {
  auto rows = summary(batch);
  std::string out = fmt::format("{:<10} {:<12} {:<22} {:>10} {:>10}  {}\n", "layer", "type",
                                "output", "params", "FLOPs", "product");
  int64_t params = 0, flops = 0;
  for (const auto& r : rows) {
    out += fmt::format("{:<10} {:<12} {:<22} {:>10} {:>10}  {}\n", r.name, r.type,
                       core::shape_to_string(r.output), format_count(r.parameters),
                       format_count(r.flops), r.product);
    params += r.parameters;
    flops += r.flops;
  }
  out += fmt::format("{:<10} {:<12} {:<22} {:>10} {:>10}  (batch {}, forward)", "total", "", "",
                     format_count(params), format_count(flops), batch);
  return out;
}

}  // namespace deja::layers
