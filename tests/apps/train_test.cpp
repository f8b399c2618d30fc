// End-to-end tests of the train and eval apps on the smoke config: learning,
// determinism, bit-exact resume, checkpoint round trips and damaged files,
// every bad-input case with its exact message, --set overrides, NaN stops.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "apps/common/checkpoint.h"
#include "apps/common/run_config.h"
#include "apps/common/trainer.h"
#include "resume_helpers.h"
#include "run_helpers.h"

using namespace deja;
using namespace deja::testing;

namespace {

const std::string kSmoke = source("configs/smoke.json");

RunResult train(const std::string& args) { return run_command(bin("train") + " --quiet " + args); }

// The fields that must repeat exactly (timings naturally differ).
std::vector<double> losses_of(const std::vector<nlohmann::json>& epochs) {
  std::vector<double> v;
  for (const auto& e : epochs)
    for (const char* k : {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"})
      v.push_back(e.at(k).get<double>());
  return v;
}

}  // namespace

TEST_CASE("train: the smoke CNN learns its generated data, identically twice with one seed") {
  ScratchDir a("learn-a"), b("learn-b");
  RunResult ra = train("--config " + kSmoke + " --epochs 10 --out " + a.str());
  REQUIRE_MESSAGE(ra.status == 0, ra.output);
  RunResult rb = train("--config " + kSmoke + " --epochs 10 --out " + b.str());
  REQUIRE_MESSAGE(rb.status == 0, rb.output);
  auto ea = read_metrics(a / "metrics.jsonl"), eb = read_metrics(b / "metrics.jsonl");
  REQUIRE(ea.size() == 10);
  CHECK(ea.back()["step"].get<int64_t>() == 160);  // 512 images / 32 per batch x 10 epochs
  CHECK(ea.back()["train_accuracy"].get<double>() > 0.95);
  CHECK(ea.back()["test_accuracy"].get<double>() > 0.95);
  CHECK(ea.front()["train_loss"].get<double>() > ea.back()["train_loss"].get<double>() * 5);
  CHECK(losses_of(ea) == losses_of(eb));
  for (const char* key : {"epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr",
                          "images_per_s", "wall_s", "time"})
    CHECK_MESSAGE(ea.back().contains(key), key);
  for (const char* key : {"data_s", "forward_s", "backward_s", "optimizer_s"})
    CHECK(ea.back()["time"].contains(key));
  // Keeps only the last 2 checkpoints.
  CHECK(std::filesystem::exists(a / "checkpoint-epoch-0010.safetensors"));
  CHECK(std::filesystem::exists(a / "checkpoint-epoch-0009.safetensors"));
  CHECK_FALSE(std::filesystem::exists(a / "checkpoint-epoch-0008.safetensors"));
}

TEST_CASE("train: 1 epoch + resume 1 epoch equals 2 epochs, to the bit") {
  ScratchDir whole("resume-whole"), split("resume-split");
  auto [a, b] = train_whole_and_resumed(kSmoke, 2, 1, whole, split);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  CHECK(losses_of(a) == losses_of(b));
  CHECK(b[1]["step"] == a[1]["step"]);
  CHECK(b[1]["wall_s"].get<double>() >= b[0]["wall_s"].get<double>());  // summed across the resume
  // The weights of both final checkpoints are identical.
  auto ca = apps::open_checkpoint(whole.str()), cb = apps::open_checkpoint(split.str());
  CHECK(ca.state.epochs_done == 2);
  CHECK(cb.state.epochs_done == 2);
  check_same_weights(whole.str(), split.str());
}

TEST_CASE("checkpoint: weights, buffers and optimizer state round-trip") {
  ScratchDir dir("roundtrip");
  core::Json raw = core::load_json_file(kSmoke);
  raw["optimizer"] = {{"type", "adam"}, {"lr", 0.01}};
  apps::RunConfig config = apps::parse_run_config(raw, kSmoke);
  config.epochs = 1;
  apps::Trainer first(config, dir.str(), true);
  first.run();
  apps::Checkpoint ckpt = apps::open_checkpoint(dir.str());
  CHECK(ckpt.state.epochs_done == 1);
  CHECK(ckpt.state.step == 16);
  CHECK(ckpt.file.has("conv1.weight"));
  CHECK(ckpt.file.has("deja.optimizer.adam.m"));
  CHECK(ckpt.file.shape("conv1.weight") == core::Shape{8, 1, 3, 3});  // PyTorch layout
  auto fresh = apps::build_task_and_model(config);
  auto& values = fresh.model->parameters().values();
  std::vector<float> before = values.to_vector();
  apps::load_model_weights(ckpt, *fresh.model);
  CHECK(values.to_vector() == first.model().parameters().values().to_vector());
  CHECK(values.to_vector() != before);
  auto optimizer = core::make_optimizer(raw["optimizer"], fresh.model->parameters().size());
  apps::load_optimizer_state(ckpt, *optimizer);
  CHECK(optimizer->steps_taken() == 16);
}

TEST_CASE("checkpoint: truncated and damaged files are refused") {
  ScratchDir dir("damaged");
  RunResult r = train("--config " + kSmoke + " --epochs 1 --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string good = dir / "checkpoint-epoch-0001.safetensors";
  const std::string bytes = read_text(good);
  REQUIRE(bytes.size() > 1000);
  const std::string bad = dir / "bad.safetensors";
  for (size_t cut : {size_t{0}, size_t{5}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    write_text(bad, bytes.substr(0, cut));
    CHECK_THROWS_WITH_AS(apps::open_checkpoint(bad), doctest::Contains(("checkpoint '" + bad + "'").c_str()),
                         std::runtime_error);
  }
  std::string flipped = bytes;
  flipped[40] = static_cast<char>(flipped[40] ^ 0x01);  // inside the JSON header
  write_text(bad, flipped);
  CHECK_THROWS_WITH_AS(apps::open_checkpoint(bad), doctest::Contains(("checkpoint '" + bad + "'").c_str()),
                       std::runtime_error);
  flipped = bytes;
  flipped[bytes.size() - 7] = static_cast<char>(flipped[bytes.size() - 7] ^ 0x10);  // inside the data
  write_text(bad, flipped);
  CHECK_THROWS_WITH_AS(apps::open_checkpoint(bad), doctest::Contains("checksum mismatch"), std::runtime_error);
  // Through the app: one error line, non-zero exit.
  r = train("--resume " + bad);
  CHECK(r.status == 2);
  CHECK(r.output.find("train: error: checkpoint '" + bad + "'") != std::string::npos);
  // A checkpoint of another model is refused by name and shape.
  r = train("--config " + kSmoke + " --set model.layers.0.out_channels=4 --resume " + good + " --out " +
            (dir / "other"));
  CHECK(r.status == 2);
  CHECK(r.output.find("tensor 'conv1.weight' has shape [8, 1, 3, 3], expected [4, 1, 3, 3]") != std::string::npos);
}

TEST_CASE("train: bad input gets one clear error and exit status 2 before training") {
  ScratchDir dir("badinput");
  struct Case {
    std::string args, message;
  };
  write_text(dir / "malformed.json", "{\n  \"seed\": 1,\n  \"epochs\": 2,,\n}\n");
  core::Json renamed = core::load_json_file(kSmoke);
  renamed["optimiser"] = renamed["optimizer"];
  renamed.erase("optimizer");
  write_text(dir / "renamed.json", renamed.dump());
  const std::string out = " --out " + (dir / "run");
  std::vector<Case> cases = {
      {"--config " + (dir / "malformed.json"),
       "train: error: " + (dir / "malformed.json") +
           ":3:15: malformed JSON: syntax error while parsing object key - unexpected ','; expected string literal"},
      {"--config " + (dir / "renamed.json"),
       "train: error: " + (dir / "renamed.json") + ": unknown key 'optimiser' (did you mean 'optimizer'?)"},
      {"--config " + kSmoke + " --set epochs='\"two\"'",
       "train: error: " + kSmoke + ": key 'epochs' must be an integer, got \"two\""},
      {"--config " + kSmoke + " --set model.layers.0.type=convv2d",
       "train: error: model.layers[0]: unknown layer type 'convv2d' (did you mean 'conv2d'?)"},
      {"--config " + kSmoke + " --set model.layers.0.strides=2",
       "train: error: model.layers[0]: unknown key 'strides' (did you mean 'stride'?)"},
      {"--config " + kSmoke + " --set model.layers.1.reuse.L=3",
       "train: error: model.layers[1]: layer type 'relu' has no weight product, so key 'reuse' does not apply"},
      {"--config " + kSmoke + " --set model.layers.0.reuse.H=40",
       "train: error: model.layers[0] (conv1).reuse: key 'H' must be in 1..32, got 40"},
      {"--config " + kSmoke + " --set model.layers.3.kernel=9",
       "train: error: model.layers[3] (conv2): conv2d: input [1, 8, 6, 6] does not fit"},
      {"--config " + kSmoke + " --set model.input.1=10",
       "train: error: model: key 'input' is [1, 10, 12] but the data gives images of [1, 12, 12]"},
      {"--config " + kSmoke + " --set optimizer.lr=-1",
       "train: error: optimizer: key 'lr' must be a positive number, got -1"},
      {"--config " + (dir / "missing.json"), "train: error: " + (dir / "missing.json") + ": cannot open"},
      {"--resume " + (dir / "nothing"), "train: error: checkpoint '" + (dir / "nothing") + "': no such file or folder"},
  };
  for (const auto& c : cases) {
    RunResult r = train(c.args + out);
    CHECK_MESSAGE(r.status == 2, c.args);
    CHECK_MESSAGE(r.output.rfind(c.message, 0) == 0, c.args << "\n got: " << r.output);
    CHECK_FALSE(std::filesystem::exists(dir / "run/metrics.jsonl"));
  }
  // An unwritable output folder (a path below a regular file).
  write_text(dir / "file", "x");
  RunResult r = train("--config " + kSmoke + " --out " + (dir / "file/run"));
  CHECK(r.status == 2);
  CHECK(r.output.rfind("train: error: cannot create output folder '" + (dir / "file/run") + "'", 0) == 0);
}

TEST_CASE("train: --set overrides reach the run, and the resolved config is logged") {
  ScratchDir dir("overrides");
  RunResult r = train("--config " + kSmoke + " --epochs 1 --set optimizer.lr=0.02 --set data.batch_size=64 " +
                      "--set 'data.normalize={\"mean\": [0.1], \"std\": [2.0]}' --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto e = read_metrics(dir / "metrics.jsonl");
  REQUIRE(e.size() == 1);
  CHECK(e[0]["lr"].get<double>() == doctest::Approx(0.02));
  CHECK(e[0]["step"].get<int64_t>() == 8);  // 512 / 64
  apps::Checkpoint c = apps::open_checkpoint(dir.str());
  CHECK(c.config["optimizer"]["lr"].get<double>() == doctest::Approx(0.02));
  CHECK(c.config["data"]["normalize"]["std"][0].get<double>() == doctest::Approx(2.0));  // a value with commas
  CHECK(read_text(dir / "train.log").find("\"batch_size\": 64") != std::string::npos);
}

TEST_CASE("train: scheduled layers start on the ladder's first rung, not on their own reuse settings") {
  // smoke_adr's layers say H = 4 (model.reuse); the ladder written here starts at H = 6.
  ScratchDir dir("first-rung");
  RunResult r = train("--config " + source("configs/smoke_adr.json") + " --epochs 2 " +
                      "--set 'reuse_schedule.default_ladder=[{\"L\": 9, \"H\": 6}]' " +
                      "--set reuse_schedule.plateau.min_steps=1000 --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto e = read_metrics(dir / "metrics.jsonl");
  REQUIRE(e.size() == 2);
  for (const char* layer : {"conv1", "conv2"}) {
    INFO(layer);
    const std::string settings = e[0]["reuse"][layer]["settings"].get<std::string>();
    CHECK_MESSAGE(settings.find("H=6") != std::string::npos, settings);
    CHECK(e[1]["reuse"][layer]["settings"].get<std::string>() == "dense");
  }
}

TEST_CASE("train: a non-finite loss stops the run and keeps the last good checkpoint") {
  ScratchDir dir("nan");
  RunResult r = train("--config " + kSmoke + " --epochs 1 --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string ckpt = dir / "checkpoint-epoch-0001.safetensors";
  const std::string before = read_text(ckpt);
  r = train("--resume " + dir.str() + " --epochs 3 --set optimizer.lr=1e20");
  CHECK(r.status == 3);
  CHECK(r.output.find("train: stopped: loss is") != std::string::npos);
  // Which step overflows first depends on the GEMM kernel's rounding (a loss
  // of 4e36 is still finite), so pin the message's shape and its arithmetic:
  // epoch 1 ran 16 steps, so batch b of epoch 2 is step 16 + b.
  std::smatch where;
  REQUIRE(std::regex_search(r.output, where, std::regex(R"(at step (\d+) \(epoch 2, batch (\d+)\))")));
  CHECK(std::stoi(where[1]) == 16 + std::stoi(where[2]));
  CHECK(read_text(ckpt) == before);
  CHECK_FALSE(std::filesystem::exists(dir / "checkpoint-epoch-0002.safetensors"));
  CHECK_NOTHROW(apps::open_checkpoint(ckpt));
}

TEST_CASE("eval: reproduces the test accuracy train reported") {
  ScratchDir dir("eval");
  RunResult r = train("--config " + kSmoke + " --epochs 2 --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto e = read_metrics(dir / "metrics.jsonl");
  REQUIRE(e.size() == 2);
  RunResult ev = run_command(bin("eval") + " --json --checkpoint " + dir.str());
  REQUIRE_MESSAGE(ev.status == 0, ev.output);
  auto line = ev.output.substr(ev.output.find('{'));
  auto j = nlohmann::json::parse(line);
  CHECK(j["accuracy"].get<double>() == e[1]["test_accuracy"].get<double>());
  CHECK(j["loss"].get<double>() == doctest::Approx(e[1]["test_loss"].get<double>()).epsilon(1e-6));
  CHECK(j["images"].get<int64_t>() == 256);
  CHECK(j["images_per_s"].get<double>() > 0);
  RunResult missing = run_command(bin("eval") + " --checkpoint " + (dir / "none.safetensors"));
  CHECK(missing.status == 2);
  CHECK(missing.output.rfind("eval: error: checkpoint '" + (dir / "none.safetensors") + "': no such file", 0) == 0);
}
