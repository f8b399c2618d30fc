// eval: evaluates a checkpoint on the test split (or other data), densely or
// with deep-reuse inference, and prints accuracy, loss and speed (--json for
// one JSON object). Run with --help.
#include <spdlog/spdlog.h>

#include "apps/common/cli.h"
#include <algorithm>
#include <cmath>
#include <iostream>

#include "apps/common/checkpoint.h"
#include "apps/common/logging.h"
#include "apps/common/trainer.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/parallel.h"
#include "data/pipeline.h"

using namespace deja;

namespace {

int run(int argc, char** argv) {
  cxxopts::Options options("eval", "Evaluate a deja checkpoint on its test split.");
  options.add_options()
    ("checkpoint", "checkpoint file, or a run folder (its latest checkpoint)", cxxopts::value<std::string>())
    ("c,config", "config to build the model and data from (default: the one stored in the checkpoint)",
     cxxopts::value<std::string>())
    ("data", "dataset name (fashion-mnist, mnist, cifar10, ...) or a data folder to evaluate on",
     cxxopts::value<std::string>())
    ("set", "override a config field (repeatable), e.g. --set data.test_batch_size=500",
     cxxopts::value<std::vector<std::string>>())
    ("reuse", "deep-reuse inference: reuse settings for every reuse-capable layer, as JSON, e.g. "
              "'{\"L\": 10, \"H\": 8}' (per-layer settings via --set model.layers.N.reuse...)",
     cxxopts::value<std::string>())
    ("threads", "threads", cxxopts::value<int>())
    ("json", "print one JSON object instead of text")
    ("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("checkpoint")) {
    std::cout << options.help();
    return args.count("help") ? 0 : 2;
  }
  bool json = args.count("json") > 0;
  apps::setup_logging("", json);
  apps::Checkpoint ckpt = apps::open_checkpoint(args["checkpoint"].as<std::string>());
  core::Json raw = args.count("config") ? core::load_json_file(args["config"].as<std::string>()) : ckpt.config;
  if (args.count("data")) {
    std::string d = args["data"].as<std::string>();
    static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"};
    if (std::find(names.begin(), names.end(), d) != names.end()) raw["data"]["dataset"] = d;
    else raw["data"]["path"] = d;
  }
  if (args.count("set"))
    for (const auto& o : args["set"].as<std::vector<std::string>>()) core::apply_override(raw, o);
  if (args.count("threads")) raw["threads"] = args["threads"].as<int>();
  if (args.count("reuse")) {
    core::Json r = core::parse_json_text(args["reuse"].as<std::string>(), "--reuse");
    if (!r.contains("enabled")) r["enabled"] = true;
    raw["model"]["reuse"] = r;
  }
  apps::RunConfig config = apps::parse_run_config(raw, args.count("config") ? args["config"].as<std::string>()
                                                                            : ckpt.file.path() + " (config)");
  core::set_num_threads(config.threads);
  apps::log_blas_kernels();
  auto tm = apps::build_task_and_model(config);
  apps::load_model_weights(ckpt, *tm.model);
  if (args.count("reuse")) {
    // The model-wide reuse default applies to every reuse-capable layer.
    auto& layers = tm.model->reuse_layers();
    for (size_t i = 0; i < layers.size(); ++i) tm.model->apply_reuse(i, layers[i].base);
  }
  apps::EvalResult r = tm.task->evaluate(*tm.model);
  double rate = r.seconds > 0 ? static_cast<double>(r.items) / r.seconds : 0.0;
  core::Json layers = core::Json::object();
  for (auto& l : tm.model->reuse_layers())
    if (auto* p = l.module->product())
      layers[l.name] = {{"product", p->describe()}, {"r_c", p->is_reuse() ? p->stats().mean_remaining_ratio() : 1.0}};
  if (json) {
    core::Json out = {{"checkpoint", ckpt.file.path()}, {"accuracy", r.accuracy}, {"loss", r.loss},
                      {"images", r.items}, {tm.task->item_name(), r.items}, {"seconds", r.seconds},
                      {"images_per_s", rate}, {"layers", layers}};
    if (tm.task->item_name() == "tokens") out["perplexity"] = std::exp(r.loss);
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "checkpoint " << ckpt.file.path() << "\n"
              << "accuracy   " << r.accuracy << "\n"
              << "loss       " << r.loss << "\n"
              << tm.task->item_name() << "     " << r.items << " in " << r.seconds << " s (" << rate << " "
              << tm.task->item_name() << "/s)\n";
    for (auto& [name, l] : layers.items())
      std::cout << "  " << name << ": " << l["product"].get<std::string>() << ", r_c " << l["r_c"].get<double>()
                << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  try {
    return run(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "eval: " << e.what() << " (see eval --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "eval: error: " << e.what() << "\n";
    return 2;
  }
}
