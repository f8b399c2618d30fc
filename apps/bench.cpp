// bench: times a config's model layer by layer, forward and backward, dense and
// (for reuse-capable layers) with reuse, on a real batch of the config's data;
// medians over repeats. For reuse layers it also times the product alone
// (forward, dW, dX) and measures r_c and the relative errors of Y, dW and dX
// against the dense product on the same rows. --step-only times whole
// training steps (forward + backward + optimizer), the figure compared with
// PyTorch. Prints a table, or one JSON object with --json. Run with --help.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cxxopts.hpp>
#include <fstream>
#include <iostream>

#include "apps/common/image_task.h"
#include "apps/common/logging.h"
#include "apps/common/recording_product.h"
#include "apps/common/trainer.h"
#include "core/autograd.h"
#include "core/blas.h"
#include "core/parallel.h"
#include "core/stopwatch.h"
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

LayerTiming time_layer(layers::Module& m, const core::Tensor& input, bool needs_dx, int repeats, uint64_t seed) {
  LayerTiming t;
  core::Tensor in = needs_dx ? grad_input(input) : input.detached();
  core::Tensor y0;
  {
    core::NoGradGuard ng;
    y0 = m.forward(in.detached());
  }
  core::Tensor dy = random_like(y0.shape(), seed);
  m.forward(in);  // warm-up (allocations, hash matrices)
  t.forward_ms = median_ms(repeats, [&] { m.forward(in); });
  std::vector<double> back;
  for (int r = 0; r < repeats; ++r) {
    core::Tensor y = m.forward(in);
    core::Stopwatch w;
    core::backward(y, dy);
    back.push_back(w.seconds() * 1e3);
  }
  t.backward_ms = core::median(back);
  return t;
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
                    {"repeats", repeats}, {"openblas_core", core::blas_core_name()}};
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
        // Dense first, recording the product's real X, W and dY.
        auto recorder = std::make_shared<apps::RecordingProduct>(core::make_dense_product());
        m.set_product(recorder);
        LayerTiming dense = time_layer(m, x, needs_dx, repeats, 1000 + i);
        row["dense_forward_ms"] = dense.forward_ms;
        row["dense_backward_ms"] = dense.backward_ms;
        row["dense_ms"] = dense.forward_ms + dense.backward_ms;
        core::Tensor px = recorder->last_x(), pw = recorder->last_w(), pdy = recorder->last_dy();
        auto dense_product = core::make_dense_product();
        ProductTiming pd = time_product(*dense_product, px, pw, pdy, repeats);
        row["dense_product_ms"] = {{"forward", pd.forward_ms}, {"dw", pd.dw_ms}, {"dx", pd.dx_ms}};
        const reuse::ReuseSettings& s = rl->base;
        row["reuse"] = s.enabled;
        row["L"] = s.L;
        row["H"] = s.H;
        row["hash"] = s.hash;
        if (s.enabled) {
          auto product = reuse::make_product(s);
          reuse::ProductErrors e = reuse::compare_to_dense(*product, px, pw, pdy);
          ProductTiming pr = time_product(*product, px, pw, pdy, repeats);
          product->reset_stats();
          m.set_product(product);
          LayerTiming reuse_t = time_layer(m, x, needs_dx, repeats, 1000 + i);
          const auto& st = product->stats();
          double calls = std::max<int64_t>(1, st.forward_calls);
          row["reuse_forward_ms"] = reuse_t.forward_ms;
          row["reuse_backward_ms"] = reuse_t.backward_ms;
          row["reuse_ms"] = reuse_t.forward_ms + reuse_t.backward_ms;
          row["reuse_product_ms"] = {{"forward", pr.forward_ms}, {"dw", pr.dw_ms}, {"dx", pr.dx_ms}};
          row["speedup"] = row["dense_ms"].get<double>() / row["reuse_ms"].get<double>();
          row["r_c"] = e.remaining_ratio;
          row["err_y"] = e.err_y;
          row["err_dw"] = e.err_dw;
          row["err_dx"] = e.err_dx;
          row["overhead_ms"] = {{"hash", st.hash_s * 1e3 / calls}, {"cluster", st.cluster_s * 1e3 / calls},
                                {"scatter", st.scatter_s * 1e3 / calls}, {"gemm", st.gemm_s * 1e3 / calls}};
        } else {
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
  out["layers"] = rows;
  double dense_total = 0, reuse_total = 0, dense_reuse_layers = 0, reuse_reuse_layers = 0;
  for (const auto& r : rows) {
    dense_total += r["dense_ms"].get<double>();
    reuse_total += r.value("reuse_ms", r["dense_ms"].get<double>());
    if (r.value("reuse", false)) {
      dense_reuse_layers += r["dense_ms"].get<double>();
      reuse_reuse_layers += r["reuse_ms"].get<double>();
    }
  }
  out["total_dense_ms"] = dense_total;
  out["total_ms"] = reuse_total;
  if (reuse_reuse_layers > 0) out["reuse_layers_speedup"] = dense_reuse_layers / reuse_reuse_layers;
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
        reused ? fmt::format("{:.3f}", r["err_y"].get<double>()) : "-",
        reused ? fmt::format("{:.3f}", r["err_dw"].get<double>()) : "-",
        reused ? fmt::format("{:.3f}", r["err_dx"].get<double>()) : "-",
        reused ? fmt::format("{} L={} H={}", r["hash"].get<std::string>(), r["L"].get<int64_t>(), r["H"].get<int64_t>())
               : "");
  }
  std::cout << fmt::format("layers total: dense {:.1f} ms, as configured {:.1f} ms; training step {:.1f} ms\n",
                           dense_total, reuse_total, out["step_ms"].get<double>());
  if (out.contains("reuse_layers_speedup"))
    std::cout << fmt::format("reuse-enabled layers: {:.2f}x faster than dense\n",
                             out["reuse_layers_speedup"].get<double>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
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
