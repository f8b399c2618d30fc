// train: trains the model a JSON config describes, with progress, per-epoch
// validation, metrics.jsonl and resumable checkpoints. Run with --help.
#include <spdlog/spdlog.h>

#include "apps/common/cli.h"
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/common/checkpoint.h"
#include "apps/common/logging.h"
#include "apps/common/trainer.h"
#include "core/blas.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"

namespace fs = std::filesystem;
using namespace deja;

namespace {

// Creates `dir` and proves it is writable before any training starts.
void require_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create output folder '" + dir + "': " + ec.message());
  fs::path probe = fs::path(dir) / ".write-test";
  {
    std::ofstream out(probe);
    if (!out || !(out << "ok") || !out.flush())
      throw std::runtime_error("output folder '" + dir + "' is not writable");
  }
  fs::remove(probe, ec);
}

int run(int argc, char** argv) {
  cxxopts::Options options("train", "Train a deja model from a JSON config (see README: config reference).");
  options.add_options()
    ("c,config", "config file (JSON)", cxxopts::value<std::string>())
    ("set", "override a config field, e.g. --set optimizer.lr=0.02 (repeatable)",
     cxxopts::value<std::vector<std::string>>())
    ("o,out", "output folder for metrics.jsonl, train.log and checkpoints (default runs/<config name>)",
     cxxopts::value<std::string>())
    ("resume", "continue from a checkpoint file or a run folder (its latest checkpoint)",
     cxxopts::value<std::string>())
    ("threads", "threads for GEMMs and our loops (overrides the config)", cxxopts::value<int>())
    ("seed", "random seed (overrides the config)", cxxopts::value<uint64_t>())
    ("epochs", "epochs in total (overrides the config; with --resume, the new total)",
     cxxopts::value<int64_t>())
    ("q,quiet", "no progress line, warnings only")
    ("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || (!args.count("config") && !args.count("resume"))) {
    std::cout << options.help() << "\nExamples:\n"
              << "  train --config configs/cifarnet.json\n"
              << "  train --config configs/cifarnet.json --set optimizer.lr=0.02 --epochs 5 --out runs/lr02\n"
              << "  train --resume runs/lr02 --epochs 8\n";
    return args.count("help") ? 0 : 2;
  }

  std::optional<apps::Checkpoint> checkpoint;
  core::Json raw;
  std::string source;
  if (args.count("resume")) checkpoint = apps::open_checkpoint(args["resume"].as<std::string>());
  if (args.count("config")) {
    source = args["config"].as<std::string>();
    raw = core::load_json_file(source);
  } else {
    source = checkpoint->file.path() + " (config)";
    raw = checkpoint->config;
  }
  if (args.count("set"))
    for (const auto& o : args["set"].as<std::vector<std::string>>()) core::apply_override(raw, o);
  if (args.count("threads")) raw["threads"] = args["threads"].as<int>();
  if (args.count("seed")) raw["seed"] = args["seed"].as<uint64_t>();
  if (args.count("epochs")) raw["epochs"] = args["epochs"].as<int64_t>();
  apps::RunConfig config = apps::parse_run_config(raw, source);

  std::string out;
  if (args.count("out")) out = args["out"].as<std::string>();
  else if (checkpoint) out = fs::path(checkpoint->file.path()).parent_path().string();
  else out = "runs/" + fs::path(source).stem().string();
  if (out.empty()) out = ".";
  require_writable_dir(out);
  bool quiet = args.count("quiet") > 0;
  apps::setup_logging(out + "/train.log", quiet);
  // Everything is built (and so validated) before anything is logged: a bad
  // config gets its one error line, not a wall of text before it.
  apps::Trainer trainer(config, out, quiet);
  spdlog::info("deja train: {}", config.description.empty() ? source : config.description);
  spdlog::info("resolved config:\n{}", config.raw.dump(2));
  apps::log_blas_kernels();
  for (const auto& note : trainer.task().notes()) spdlog::info("data: {}", note);
  spdlog::info("model summary:\n{}", trainer.model().summary_table(trainer.task().batch_size()));
  spdlog::info("{} parameters in one arena; {} threads; output in {}", trainer.model().parameters().size(),
               config.threads, out);
  if (checkpoint) {
    trainer.resume(*checkpoint);
    spdlog::info("resumed from {} ({} epochs, {} steps done)", checkpoint->file.path(),
                 checkpoint->state.epochs_done, checkpoint->state.step);
  }
  apps::TrainSummary s = trainer.run();
  spdlog::info("done: {} epochs, {} steps, test accuracy {:.4f}, test loss {:.4f}, {:.1f} s", s.epochs, s.steps,
               s.test_accuracy, s.test_loss, s.wall_s);
  if (quiet)
    std::cout << "test_accuracy " << s.test_accuracy << " test_loss " << s.test_loss << " wall_s " << s.wall_s
              << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  try {
    return run(argc, argv);
  } catch (const apps::NonFiniteLoss& e) {
    std::cerr << "train: stopped: " << e.what() << "\n";
    return 3;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "train: " << e.what() << " (see train --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "train: error: " << e.what() << "\n";
    return 2;
  }
}
