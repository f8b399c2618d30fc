// bench: times a config's model layer by layer, forward and backward, dense and
// (for reuse-capable layers) with reuse, on a real batch of the config's data;
// medians over repeats. For reuse layers it also times the product alone
// (forward, dW, dX) and measures r_c and the relative errors of Y, dW and dX
// against the dense product on the same rows. --step-only times whole
// training steps (forward + backward + optimizer), the figure compared with
// PyTorch. Language-model configs: the whole model and the LSTM per training
// window, and each LSTM layer's input projection as a product (see
// bench_language_model). Prints a table, or one JSON object with --json.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apps/common/cli.h"  // --set values may hold commas
#include <fstream>
#include <cstdlib>
#include <iostream>

#include "apps/common/image_task.h"
#include "apps/common/lm_task.h"
#include "apps/common/logging.h"
#include "apps/common/recording_product.h"
#include "apps/common/trainer.h"
#include "core/autograd.h"
#include "core/bf16_gemm.h"
#include "core/blas.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/parallel.h"
#include "core/stopwatch.h"
#include "layers/language_model.h"
#include "layers/sequential.h"
#include "reuse/compare.h"
#include "reuse/settings.h"

using namespace deja;

namespace {

template <typename F>
double median_ms(int repeats, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    core::Stopwatch w;
    f();
    t.push_back(w.seconds() * 1e3);
  }
  return core::median(t);
}

core::Tensor random_like(const core::Shape& shape, uint64_t seed) {
  core::Rng rng(seed, 77);
  core::Tensor t = core::Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal();
  return t;
}

// A copy of x that needs a gradient (a leaf with its own grad buffer), so the
// layer's backward computes dX as it does inside a network.
core::Tensor grad_input(const core::Tensor& x) {
  core::Tensor in = x.clone();
  in.set_node(std::make_shared<core::LeafNode>(core::Tensor::zeros(x.shape())));
  return in;
}

struct LayerTiming {
  double forward_ms = 0, backward_ms = 0;
};

// A layer's input (a leaf with its own gradient buffer when the layer
// computes dX) and a fixed random dY, made once for all of the layer's
// timings (dense, reuse, and the phase run alike).
struct LayerInputs {
  core::Tensor in, dy;
  LayerInputs(layers::Module& m, const core::Tensor& input, bool needs_dx, uint64_t seed)
      : in(needs_dx ? grad_input(input) : input.detached()) {
    core::Tensor y0;
    {
      core::NoGradGuard ng;
      y0 = m.forward(in.detached());
    }
    dy = random_like(y0.shape(), seed);
  }
};

// Forward and backward medians over `repeats` runs, after a warm-up forward
// (allocations, hash matrices).
LayerTiming time_layer(layers::Module& m, const LayerInputs& io, int repeats) {
  LayerTiming t;
  m.forward(io.in);
  t.forward_ms = median_ms(repeats, [&] { m.forward(io.in); });
  std::vector<double> back;
  for (int r = 0; r < repeats; ++r) {
    core::Tensor y = m.forward(io.in);
    core::Stopwatch w;
    core::backward(y, io.dy);
    back.push_back(w.seconds() * 1e3);
  }
  t.backward_ms = core::median(back);
  return t;
}

LayerTiming time_layer(layers::Module& m, const core::Tensor& input, bool needs_dx, int repeats, uint64_t seed) {
  return time_layer(m, LayerInputs(m, input, needs_dx, seed), repeats);
}

// Dense and reuse timings of one layer taken alternately, a repeat of each
// in turn, so the machine's drift (this VM's speed moves by up to 2x within
// minutes) weighs on both alike and their ratio holds. Each repeat then
// runs one more reuse training step (one forward, one backward, nothing
// else) whose phase times are summed into *step_phases: per-call figures
// are then per step (the timing runs add forward-only calls, which would
// dilute the backward's phases), and they come from the same minutes as
// the dense times they are compared with (a separate run afterwards read
// the engine's share anywhere from 21% to 29% on one build).
std::pair<LayerTiming, LayerTiming> time_layer_alternating(layers::Module& m, const LayerInputs& io, int repeats,
                                                           const std::shared_ptr<core::Product>& dense,
                                                           const std::shared_ptr<core::Product>& reuse,
                                                           core::ProductStats& step_phases) {
  std::vector<double> df, db, rf, rb;
  step_phases = core::ProductStats();
  for (int r = 0; r < repeats; ++r) {
    m.set_product(dense);
    LayerTiming d = time_layer(m, io, 1);
    m.set_product(reuse);
    LayerTiming e = time_layer(m, io, 1);
    df.push_back(d.forward_ms);
    db.push_back(d.backward_ms);
    rf.push_back(e.forward_ms);
    rb.push_back(e.backward_ms);
    reuse->reset_stats();
    core::Tensor y = m.forward(io.in);
    core::backward(y, io.dy);
    step_phases += reuse->stats();
  }
  return {{core::median(df), core::median(db)}, {core::median(rf), core::median(rb)}};
}

struct ProductTiming {
  double forward_ms = 0, dw_ms = 0, dx_ms = 0;
};

ProductTiming time_product(core::Product& p, const core::Tensor& x, const core::Tensor& w, const core::Tensor& dy,
                           int repeats) {
  ProductTiming t;
  core::Tensor y = core::Tensor::empty({x.size(0), w.size(0)});
  std::vector<float> dw(static_cast<size_t>(w.numel()));
  core::Tensor dx = core::Tensor::empty(x.shape());
  auto saved = p.forward(x, w, y, true);
  t.forward_ms = median_ms(repeats, [&] { saved = p.forward(x, w, y, true); });
  t.dw_ms = median_ms(repeats, [&] { p.backward(*saved, dy, w, dw.data(), nullptr, 0.0f); });
  t.dx_ms = median_ms(repeats, [&] { p.backward(*saved, dy, w, nullptr, dx.data(), 0.0f); });
  return t;
}

// The fields every reuse row shares: the product's own times (forward, dW,
// dX), its errors against dense, and its phase times per training step
// (stats of time_layer_alternating's extra steps).
void add_reuse_product_fields(core::Json& row, const ProductTiming& pr, const reuse::ProductErrors& e,
                              const core::ProductStats& st) {
  const double calls = static_cast<double>(std::max<int64_t>(1, st.forward_calls));
  row["reuse_product_ms"] = {{"forward", pr.forward_ms}, {"dw", pr.dw_ms}, {"dx", pr.dx_ms}};
  row["err_y"] = e.err_y;
  row["err_dw"] = e.err_dw;
  row["err_dx"] = e.err_dx;
  row["overhead_ms"] = {{"hash", st.hash_s * 1e3 / calls}, {"cluster", st.cluster_s * 1e3 / calls},
                        {"scatter", st.scatter_s * 1e3 / calls}, {"gemm", st.gemm_s * 1e3 / calls},
                        {"lowering", st.lowering_s * 1e3 / calls}};
}

// Language models: per training window, the whole model (forward = embedding
// to loss, backward) and the LSTM module alone (all its layers, state carried
// between windows as in training), dense and, when any LSTM layer has reuse
// configured, with reuse; then each LSTM layer's input projection as a product
// on the rows it really saw (recorded X, W, dY): dense vs reuse times, r_c and
// the errors against dense. Rows: "model", "rnn", "rnn.l0", "rnn.l1", ...
core::Json bench_language_model(layers::Model& model, apps::LmTask& task, int repeats) {
  auto& lm = dynamic_cast<layers::LanguageModel&>(model.root());
  layers::Lstm& lstm = lm.lstm();
  auto& reuse_layers = model.reuse_layers();
  bool any_reuse = false;
  for (const auto& rl : reuse_layers) any_reuse = any_reuse || rl.base.enabled;

  auto time_window = [&](LayerTiming& t) {
    std::vector<double> fwd, bwd;
    for (int r = 0; r < repeats + 1; ++r) {
      model.parameters().zero_grad();
      int64_t correct = 0, items = 0;
      core::Stopwatch w;
      core::Tensor loss = task.forward_loss(model, &correct, &items);
      const double f = w.seconds() * 1e3;
      core::Stopwatch wb;
      core::backward(loss);
      if (r == 0) continue;  // warm-up
      fwd.push_back(f);
      bwd.push_back(wb.seconds() * 1e3);
    }
    t.forward_ms = core::median(fwd);
    t.backward_ms = core::median(bwd);
    model.parameters().zero_grad();
  };
  core::Tensor embedded;
  {
    core::NoGradGuard ng;
    embedded = lm.embedding().forward(task.inputs()).detached();
  }
  const core::Shape lstm_in = embedded.shape();
  auto mean_rc = [&] {
    double sum = 0;
    int n = 0;
    for (core::Product* p : lstm.products())
      if (p->is_reuse()) sum += p->stats().mean_remaining_ratio(), ++n;
    return n ? sum / n : 1.0;
  };
  auto set_reuse = [&](core::Json& row, const LayerTiming& d, const LayerTiming* r, double rc) {
    row["dense_forward_ms"] = d.forward_ms;
    row["dense_backward_ms"] = d.backward_ms;
    row["dense_ms"] = d.forward_ms + d.backward_ms;
    row["reuse"] = r != nullptr;
    if (r) {
      row["reuse_forward_ms"] = r->forward_ms;
      row["reuse_backward_ms"] = r->backward_ms;
      row["reuse_ms"] = r->forward_ms + r->backward_ms;
      row["speedup"] = row["dense_ms"].get<double>() / row["reuse_ms"].get<double>();
      row["r_c"] = rc;
    } else {
      row["reuse_ms"] = row["dense_ms"];
      row["r_c"] = 1.0;
    }
  };

  // Dense, recording each layer's product rows.
  std::vector<std::shared_ptr<apps::RecordingProduct>> recorders;
  for (auto& rl : reuse_layers) {
    recorders.push_back(std::make_shared<apps::RecordingProduct>(core::make_dense_product()));
    rl.module->set_product(recorders.back());
  }
  LayerTiming model_dense, lstm_dense, model_reuse, lstm_reuse;
  time_window(model_dense);
  lstm_dense = time_layer(lstm, embedded, true, repeats, 2000);
  double model_rc = 1.0, lstm_rc = 1.0;
  if (any_reuse) {
    for (size_t k = 0; k < reuse_layers.size(); ++k) {
      reuse_layers[k].module->set_product(core::make_dense_product());
      model.apply_reuse(k, reuse_layers[k].base);
    }
    for (core::Product* p : lstm.products()) p->reset_stats();
    time_window(model_reuse);
    model_rc = mean_rc();
    for (core::Product* p : lstm.products()) p->reset_stats();
    lstm_reuse = time_layer(lstm, embedded, true, repeats, 2000);
    lstm_rc = mean_rc();
  }
  core::Json rows = core::Json::array();
  core::Json model_row = {{"name", "model"}, {"type", lm.type()}, {"input", task.inputs().shape()},
                          {"output", lm.output_shape(task.inputs().shape())}};
  set_reuse(model_row, model_dense, any_reuse ? &model_reuse : nullptr, model_rc);
  rows.push_back(model_row);
  core::Json lstm_row = {{"name", "rnn"}, {"type", lstm.type()}, {"input", lstm_in},
                         {"output", lstm.output_shape(lstm_in)}};
  set_reuse(lstm_row, lstm_dense, any_reuse ? &lstm_reuse : nullptr, lstm_rc);
  rows.push_back(lstm_row);

  // Each layer's input projection alone, on its recorded rows.
  for (size_t k = 0; k < reuse_layers.size(); ++k) {
    const core::Tensor px = recorders[k]->last_x(), pw = recorders[k]->last_w(), pdy = recorders[k]->last_dy();
    const reuse::ReuseSettings& s = reuse_layers[k].base;
    core::Json row = {{"name", reuse_layers[k].name}, {"type", "in_proj"}, {"input", px.shape()},
                      {"output", core::Shape{px.size(0), pw.size(0)}}, {"L", s.L}, {"H", s.H}, {"hash", s.hash}};
    auto dense_product = core::make_dense_product();
    ProductTiming pd = time_product(*dense_product, px, pw, pdy, repeats);
    row["dense_product_ms"] = {{"forward", pd.forward_ms}, {"dw", pd.dw_ms}, {"dx", pd.dx_ms}};
    LayerTiming d{pd.forward_ms, pd.dw_ms + pd.dx_ms};
    if (s.enabled) {
      auto product = reuse::make_product(s);
      reuse::ProductErrors e = reuse::compare_to_dense(*product, px, pw, pdy);
      product->reset_stats();
      ProductTiming pr = time_product(*product, px, pw, pdy, repeats);
      LayerTiming r{pr.forward_ms, pr.dw_ms + pr.dx_ms};
      set_reuse(row, d, &r, e.remaining_ratio);
      add_reuse_product_fields(row, pr, e, product->stats());
    } else {
      set_reuse(row, d, nullptr, 1.0);
      row["err_y"] = row["err_dw"] = row["err_dx"] = 0.0;
    }
    rows.push_back(row);
  }
  // Back to the configured products.
  for (size_t k = 0; k < reuse_layers.size(); ++k) {
    reuse_layers[k].module->set_product(core::make_dense_product());
    model.apply_reuse(k, reuse_layers[k].base);
  }
  return rows;
}

int run(int argc, char** argv) {
  cxxopts::Options options("bench", "Time each layer of a config's model, dense vs reuse, on real data.");
  options.add_options()
    ("c,config", "config file (JSON)", cxxopts::value<std::string>())
    ("set", "override a config field (repeatable)", cxxopts::value<std::vector<std::string>>())
    ("batch", "batch size (default: the config's)", cxxopts::value<int64_t>())
    ("threads", "threads (default: the config's)", cxxopts::value<int>())
    ("repeats", "timed repeats per measurement (median reported)", cxxopts::value<int>()->default_value("5"))
    ("data", "dataset to draw the batch from (default: the config's)", cxxopts::value<std::string>())
    ("reuse", "reuse settings (JSON) for every reuse-capable layer, e.g. '{\"L\": 10, \"H\": 8}'",
     cxxopts::value<std::string>())
    ("step-only", "time whole training steps only (forward + loss + backward + SGD)")
    ("json", "print one JSON object")
    ("out", "also write the JSON to this file", cxxopts::value<std::string>())
    ("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("config")) {
    std::cout << options.help();
    return args.count("help") ? 0 : 2;
  }
  bool json = args.count("json") > 0;
  apps::setup_logging("", json);
  std::string source = args["config"].as<std::string>();
  core::Json raw = core::load_json_file(source);
  if (args.count("set"))
    for (const auto& o : args["set"].as<std::vector<std::string>>()) core::apply_override(raw, o);
  if (args.count("batch")) raw["data"]["batch_size"] = args["batch"].as<int64_t>();
  if (args.count("threads")) raw["threads"] = args["threads"].as<int>();
  if (args.count("data")) raw["data"]["dataset"] = args["data"].as<std::string>();
  if (args.count("reuse")) {
    core::Json r = core::parse_json_text(args["reuse"].as<std::string>(), "--reuse");
    if (!r.contains("enabled")) r["enabled"] = true;
    raw["model"]["reuse"] = r;
  }
  apps::RunConfig config = apps::parse_run_config(raw, source);
  core::set_num_threads(config.threads);
  const int repeats = std::max(1, args["repeats"].as<int>());
  auto tm = apps::build_task_and_model(config);
  layers::Model& model = *tm.model;
  model.train();
  tm.task->start_epoch(0, 0);
  if (!tm.task->next_batch()) throw std::runtime_error("bench: the training split gives no batch");

  core::Json out = {{"config", source}, {"batch", tm.task->batch_size()}, {"threads", config.threads},
                    {"repeats", repeats}, {"openblas_core", core::blas_core_name()},
                    {"bf16_kernels", core::bf16_available()}};
  // What OpenBLAS's idle workers were told (core/blas_idle.h): part of the setup a figure was taken with.
  const char* spin = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  out["openblas_thread_timeout"] = spin ? core::Json(spin) : core::Json(nullptr);
  std::string warning = core::blas_core_warning();
  if (!warning.empty()) spdlog::warn("{}", warning);

  // Whole training steps: what a user waits for, and what PyTorch is compared on.
  {
    auto optimizer = core::make_optimizer(raw["optimizer"], model.parameters().size());
    auto step = [&] {
      model.parameters().zero_grad();
      int64_t correct = 0, items = 0;
      core::Tensor loss = tm.task->forward_loss(model, &correct, &items);
      core::backward(loss);
      optimizer->step(model.parameters(), 1e-6);
    };
    step();
    double ms = median_ms(repeats, step);
    out["step_ms"] = ms;
    out["items_per_s"] = static_cast<double>(tm.task->batch_size()) / (ms / 1e3);
  }
  if (args.count("step-only")) {
    if (json) std::cout << out.dump() << "\n";
    else std::cout << fmt::format("{}: training step {:.1f} ms (batch {}, {} threads, OpenBLAS {})\n", source,
                                  out["step_ms"].get<double>(), tm.task->batch_size(), config.threads,
                                  core::blas_core_name());
    return 0;
  }

  auto* seq = dynamic_cast<layers::Sequential*>(&model.root());
  auto* image = dynamic_cast<apps::ImageTask*>(tm.task.get());
  core::Json rows = core::Json::array();
  if (seq && image) {
    core::Tensor x = image->batch().images;
    auto& reuse_layers = model.reuse_layers();
    for (int64_t i = 0; i < seq->size(); ++i) {
      layers::Module& m = seq->at(i);
      const std::string name = seq->name_at(i);
      core::Json row = {{"name", name}, {"type", m.type()}, {"input", x.shape()}};
      const layers::ReuseLayer* rl = nullptr;
      size_t rl_index = 0;
      for (size_t k = 0; k < reuse_layers.size(); ++k)
        if (reuse_layers[k].name == name) rl = &reuse_layers[k], rl_index = k;
      const bool needs_dx = i > 0;
      if (rl) {
        // One pass recording the product's real X, W and dY (a recorder makes
        // conv2d take its general path), then dense timed on the plain dense
        // product, i.e. the path training uses.
        auto recorder = std::make_shared<apps::RecordingProduct>(core::make_dense_product());
        m.set_product(recorder);
        time_layer(m, x, needs_dx, 1, 1000 + i);
        std::shared_ptr<core::Product> dense_layer_product = core::make_dense_product();
        core::Tensor px = recorder->last_x(), pw = recorder->last_w(), pdy = recorder->last_dy();
        auto dense_product = core::make_dense_product();
        ProductTiming pd = time_product(*dense_product, px, pw, pdy, repeats);
        row["dense_product_ms"] = {{"forward", pd.forward_ms}, {"dw", pd.dw_ms}, {"dx", pd.dx_ms}};
        const reuse::ReuseSettings& s = rl->base;
        row["reuse"] = s.enabled;
        row["L"] = s.L;
        row["H"] = s.H;
        row["hash"] = s.hash;
        auto set_dense = [&](const LayerTiming& dense) {
          row["dense_forward_ms"] = dense.forward_ms;
          row["dense_backward_ms"] = dense.backward_ms;
          row["dense_ms"] = dense.forward_ms + dense.backward_ms;
        };
        if (s.enabled) {
          auto product = reuse::make_product(s);
          reuse::ProductErrors e = reuse::compare_to_dense(*product, px, pw, pdy);
          ProductTiming pr = time_product(*product, px, pw, pdy, repeats);
          m.set_product(product);
          const LayerInputs io(m, x, needs_dx, 1000 + i);
          time_layer(m, io, 1);  // warm-up of the layer's reuse path
          m.set_product(dense_layer_product);
          time_layer(m, io, 1);  // and of its dense path
          core::ProductStats phases;
          auto [dense, reuse_t] = time_layer_alternating(m, io, repeats, dense_layer_product, product, phases);
          set_dense(dense);
          row["reuse_forward_ms"] = reuse_t.forward_ms;
          row["reuse_backward_ms"] = reuse_t.backward_ms;
          row["reuse_ms"] = reuse_t.forward_ms + reuse_t.backward_ms;
          row["speedup"] = row["dense_ms"].get<double>() / row["reuse_ms"].get<double>();
          row["r_c"] = e.remaining_ratio;
          add_reuse_product_fields(row, pr, e, phases);
        } else {
          m.set_product(dense_layer_product);
          set_dense(time_layer(m, x, needs_dx, repeats, 1000 + i));
          row["reuse_ms"] = row["dense_ms"];
          row["r_c"] = 1.0;
          row["err_y"] = row["err_dw"] = row["err_dx"] = 0.0;
        }
        model.apply_reuse(rl_index, s);  // restore the configured product
        if (!s.enabled) m.set_product(core::make_dense_product());
      } else {
        LayerTiming t = time_layer(m, x, needs_dx, repeats, 1000 + i);
        row["dense_forward_ms"] = t.forward_ms;
        row["dense_backward_ms"] = t.backward_ms;
        row["dense_ms"] = t.forward_ms + t.backward_ms;
      }
      {
        core::NoGradGuard ng;
        x = m.forward(x.detached());
      }
      row["output"] = x.shape();
      rows.push_back(row);
      model.parameters().zero_grad();
    }
  }
  auto* lm_task = dynamic_cast<apps::LmTask*>(tm.task.get());
  if (lm_task) rows = bench_language_model(model, *lm_task, repeats);
  out["layers"] = rows;
  double dense_total = 0, reuse_total = 0, dense_reuse_layers = 0, reuse_reuse_layers = 0;
  if (lm_task) {
    // Rows nest (model > rnn > its layers): the model row is the total, the rnn row the reuse layers.
    dense_total = rows[0]["dense_ms"].get<double>();
    reuse_total = rows[0]["reuse_ms"].get<double>();
    if (rows[1]["reuse"].get<bool>()) {
      dense_reuse_layers = rows[1]["dense_ms"].get<double>();
      reuse_reuse_layers = rows[1]["reuse_ms"].get<double>();
    }
  }
  // The engine's own passes (hash + cluster + scatter) and the layers'
  // lowering (conv2d's im2col tiles and col2im, which dense does too), per
  // forward + backward, summed over the reuse-enabled image layers.
  double engine_ms = 0, lowering_ms = 0;
  for (const auto& r : lm_task ? core::Json::array() : rows) {
    dense_total += r["dense_ms"].get<double>();
    reuse_total += r.value("reuse_ms", r["dense_ms"].get<double>());
    if (r.value("reuse", false)) {
      dense_reuse_layers += r["dense_ms"].get<double>();
      reuse_reuse_layers += r["reuse_ms"].get<double>();
      if (r.contains("overhead_ms")) {
        const core::Json& o = r["overhead_ms"];
        engine_ms += o["hash"].get<double>() + o["cluster"].get<double>() + o["scatter"].get<double>();
        lowering_ms += o["lowering"].get<double>();
      }
    }
  }
  out["total_dense_ms"] = dense_total;
  out["total_ms"] = reuse_total;
  if (reuse_reuse_layers > 0) out["reuse_layers_speedup"] = dense_reuse_layers / reuse_reuse_layers;
  // Amdahl's bound: the layers without reuse run dense in every step, so
  // even free reuse layers save no more than their share of the dense time.
  if (dense_total > 0) {
    out["reuse_layers_share"] = dense_reuse_layers / dense_total;
    out["step_saving"] = 1.0 - reuse_total / dense_total;
  }
  if (engine_ms > 0) {
    out["engine_share"] = engine_ms / dense_reuse_layers;
    out["lowering_share"] = lowering_ms / dense_reuse_layers;
  }
  if (args.count("out")) {
    std::ofstream f(args["out"].as<std::string>());
    if (!f) throw std::runtime_error("bench: cannot write '" + args["out"].as<std::string>() + "'");
    f << out.dump(2) << "\n";
  }
  if (json) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::cout << fmt::format("{} | batch {} | {} threads | OpenBLAS {} | median of {}\n", source,
                           tm.task->batch_size(), config.threads, core::blas_core_name(), repeats);
  std::cout << fmt::format("{:<10} {:<10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>7} {:>7} {:>7}  {}\n", "layer",
                           "type", "dense fw", "dense bw", "reuse fw", "reuse bw", "speedup", "r_c", "err_y",
                           "err_dw", "err_dx", "reuse settings");
  auto number = [](const core::Json& r, const char* key, const char* format) {
    return r.contains(key) ? fmt::format(fmt::runtime(format), r[key].get<double>()) : std::string("-");
  };
  for (const auto& r : rows) {
    bool reused = r.value("reuse", false);
    std::cout << fmt::format(
        "{:<10} {:<10} {:>9.2f} {:>9.2f} {:>9} {:>9} {:>8} {:>6} {:>7} {:>7} {:>7}  {}\n",
        r["name"].get<std::string>(), r["type"].get<std::string>(), r["dense_forward_ms"].get<double>(),
        r["dense_backward_ms"].get<double>(),
        reused ? fmt::format("{:.2f}", r["reuse_forward_ms"].get<double>()) : "-",
        reused ? fmt::format("{:.2f}", r["reuse_backward_ms"].get<double>()) : "-",
        reused ? fmt::format("{:.2f}x", r["speedup"].get<double>()) : "-",
        reused ? fmt::format("{:.3f}", r["r_c"].get<double>()) : "-",
        reused ? number(r, "err_y", "{:.3f}") : "-", reused ? number(r, "err_dw", "{:.3f}") : "-",
        reused ? number(r, "err_dx", "{:.3f}") : "-",
        reused && r.contains("hash")
            ? fmt::format("{} L={} H={}", r["hash"].get<std::string>(), r["L"].get<int64_t>(), r["H"].get<int64_t>())
            : "");
  }
  std::cout << fmt::format("layers total: dense {:.1f} ms, as configured {:.1f} ms; training step {:.1f} ms\n",
                           dense_total, reuse_total, out["step_ms"].get<double>());
  if (out.contains("reuse_layers_speedup")) {
    // A ratio below 1 reads as "slower", never as "0.58x faster".
    const double speedup = out["reuse_layers_speedup"].get<double>();
    std::cout << "reuse-enabled layers: "
              << (speedup >= 1.0 ? fmt::format("{:.2f}x faster than dense", speedup)
                                 : fmt::format("{:.2f}x slower than dense", 1.0 / speedup))
              << "\n";
    const double saving = out["step_saving"].get<double>();
    std::cout << fmt::format(
        "saving: {}; at most {:.1f}% (the reuse-enabled layers' share, were they free)\n",
        saving >= 0.0 ? fmt::format("{:.1f}% of the dense layers' time as configured", 100 * saving)
                      : fmt::format("none: as configured, all layers together take {:.1f}% more time than dense",
                                    -100 * saving),
        100 * out["reuse_layers_share"].get<double>());
  }
  if (out.contains("engine_share"))
    std::cout << fmt::format(
        "hash + cluster + scatter: {:.1f}% of those layers' dense time (lowering: patch tiles and col2im, "
        "which dense does too: {:.1f}%)\n",
        100 * out["engine_share"].get<double>(), 100 * out["lowering_share"].get<double>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  try {
    return run(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "bench: " << e.what() << " (see bench --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench: error: " << e.what() << "\n";
    return 2;
  }
}
