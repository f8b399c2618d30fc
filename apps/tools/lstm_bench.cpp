// lstm_bench: one training window of an LSTM language model (forward, loss,
// backward, global-norm clip, SGD), timed per phase over several windows with
// the hidden state carried and detached between windows, dense or with reuse
// on the LSTM input projections. Defaults: the medium model (2 x 650, embedding
// 650, vocab 10000, seq 35, batch 20). Random token ids: speed does not depend
// on the text. Prints one JSON object (medians in ms, tokens/s).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/blas.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/grad_clip.h"
#include "core/optimizer.h"
#include "core/parallel.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/cross_entropy.h"
#include "layers/language_model.h"
#include "reuse/settings.h"

using namespace deja;
using core::Tensor;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options cli("lstm_bench", "LSTM language model: training window time, dense vs reuse");
  cli.add_options()("threads", "threads (ours and OpenBLAS)", cxxopts::value<int>()->default_value("2"))(
      "windows", "timed windows", cxxopts::value<int>()->default_value("10"))(
      "warmup", "untimed windows first", cxxopts::value<int>()->default_value("2"))(
      "batch", "batch size", cxxopts::value<int64_t>()->default_value("20"))(
      "seq", "sequence length (BPTT window)", cxxopts::value<int64_t>()->default_value("35"))(
      "hidden", "hidden size (= embedding size)", cxxopts::value<int64_t>()->default_value("650"))(
      "layers", "LSTM layers", cxxopts::value<int64_t>()->default_value("2"))(
      "vocab", "vocabulary size", cxxopts::value<int64_t>()->default_value("10000"))(
      "dropout", "dropout", cxxopts::value<double>()->default_value("0.5"))(
      "reuse", "reuse settings JSON for the LSTM input projections, e.g. "
               "'{\"enabled\": true, \"L\": 10, \"H\": 8}' (absent: dense)",
      cxxopts::value<std::string>()->default_value(""))("help", "usage");
  auto args = cli.parse(argc, argv);
  if (args.count("help")) {
    std::cout << cli.help() << "\n";
    return 0;
  }
  core::set_num_threads(args["threads"].as<int>());
  const int64_t B = args["batch"].as<int64_t>(), T = args["seq"].as<int64_t>();
  const int64_t H = args["hidden"].as<int64_t>(), V = args["vocab"].as<int64_t>();
  layers::LanguageModel lm({V, H, H, args["layers"].as<int64_t>(), args["dropout"].as<double>(), false}, 1);
  std::string product = "dense";
  if (!args["reuse"].as<std::string>().empty()) {
    reuse::ReuseSettings s = reuse::settings_from_json(
        core::parse_json_text(args["reuse"].as<std::string>(), "--reuse"), reuse::ReuseSettings(),
        "--reuse");
    // One product per layer, hash seeds differing by layer (as the train app does).
    for (int64_t k = 0; k < lm.lstm().options().num_layers; ++k) {
      reuse::ReuseSettings layer_settings = s;
      layer_settings.seed = s.seed + static_cast<uint64_t>(k);
      lm.lstm().set_layer_product(k, reuse::make_product(layer_settings));
    }
    product = reuse::describe(s);
  }
  lm.train();
  core::ParameterArena arena;
  arena.bind(lm.named_parameters());
  auto sgd = core::make_sgd({20.0, 0.0, 0.0, 0.0, false}, arena.size());
  core::Rng data(5, 2);

  std::vector<double> fwd, bwd, upd, total;
  const int windows = args["windows"].as<int>(), warmup = args["warmup"].as<int>();
  double loss_value = 0.0;
  for (int w = 0; w < warmup + windows; ++w) {
    Tensor ids = Tensor::empty({B, T});
    std::vector<int32_t> labels(static_cast<size_t>(B * T));
    for (int64_t i = 0; i < B * T; ++i) {
      ids[i] = static_cast<float>(data.below(static_cast<uint32_t>(V)));
      labels[static_cast<size_t>(i)] = static_cast<int32_t>(data.below(static_cast<uint32_t>(V)));
    }
    lm.detach_state();
    const double t0 = now_ms();
    arena.zero_grad();
    Tensor loss = layers::softmax_cross_entropy(lm.forward(ids), labels);
    const double t1 = now_ms();
    core::backward(loss);
    const double t2 = now_ms();
    core::clip_grad_norm(arena, 0.25);
    sgd->step(arena, 1.0);  // small lr: random labels, keep the weights sane
    const double t3 = now_ms();
    loss_value = loss[0];
    if (w < warmup) continue;
    fwd.push_back(t1 - t0);
    bwd.push_back(t2 - t1);
    upd.push_back(t3 - t2);
    total.push_back(t3 - t0);
  }
  double rc = 0.0;
  for (core::Product* p : lm.lstm().products()) rc += p->stats().mean_remaining_ratio();
  rc /= static_cast<double>(lm.lstm().products().size());
  nlohmann::json out = {{"model", "lstm_lm"},
                        {"batch", B},
                        {"seq", T},
                        {"hidden", H},
                        {"layers", lm.lstm().options().num_layers},
                        {"vocab", V},
                        {"threads", core::num_threads()},
                        {"product", product},
                        {"blas_core", core::blas_core_name()},
                        {"median_ms", median(total)},
                        {"forward_ms", median(fwd)},
                        {"backward_ms", median(bwd)},
                        {"update_ms", median(upd)},
                        {"tokens_per_s", static_cast<double>(B * T) / (median(total) / 1000.0)},
                        {"lstm_input_rc", rc},
                        {"last_loss", loss_value}};
  std::cout << out.dump() << "\n";
  return 0;
}
