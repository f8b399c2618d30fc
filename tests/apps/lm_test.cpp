// End-to-end tests of language-model training through the train and eval
// apps on a generated text (a few sentences repeated in a seeded order):
// perplexity reported and falling, bit-exact resume, eval reproducing the
// validation loss, reuse in each LSTM layer with its own product and r_c,
// and Model::apply_reuse giving every LSTM layer its own product.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "apps/common/checkpoint.h"
#include "apps/common/run_config.h"
#include "apps/common/trainer.h"
#include "core/rng.h"
#include "layers/lstm.h"
#include "layers/model.h"
#include "reuse/reuse_product.h"
#include "resume_helpers.h"
#include "run_helpers.h"

using namespace deja;
using namespace deja::testing;

namespace {

// About 6 kB of text from 4 sentences in a seeded random order: learnable
// (within a sentence every character is determined) but not trivially periodic.
std::string generated_text() {
  const char* sentences[] = {"the cat sat on the mat. ", "a dog ran in the park. ",
                             "we like to read books. ", "rain fell all day long.\n"};
  core::Rng rng = core::make_rng(7, core::RngPurpose::Data);
  std::string text;
  while (text.size() < 6000) text += sentences[rng.next_u32() % 4];
  return text;
}

// A 2-layer character model with dropout between layers, so resume must also
// restore the dropout streams and the per-layer products.
nlohmann::json lm_config(const std::string& corpus) {
  return {{"task", "language_model"},
          {"seed", 3},
          {"epochs", 2},
          {"threads", 2},
          {"grad_clip", 1.0},
          {"data",
           {{"dataset", "text"}, {"path", corpus}, {"level", "char"}, {"batch_size", 8}, {"seq_len", 16},
            {"eval_batch_size", 4}, {"valid_fraction", 0.1}, {"test_fraction", 0.05}}},
          {"optimizer", {{"type", "adam"}, {"lr", 0.03}}},
          {"lr_schedule", {{"type", "plateau"}, {"factor", 0.25}, {"patience", 0}}},
          {"checkpoint", {{"every_epochs", 1}, {"keep_last", 2}}},
          {"log", {{"every_steps", 0}}},
          {"model",
           {{"type", "language_model"}, {"embedding", 16}, {"hidden", 24}, {"layers", 2}, {"dropout", 0.1},
            {"tie_weights", false}}}};
}

std::vector<double> fields_of(const std::vector<nlohmann::json>& epochs) {
  std::vector<double> v;
  for (const auto& e : epochs)
    for (const char* k : {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_perplexity",
                          "test_perplexity", "lr"})
      v.push_back(e.at(k).get<double>());
  return v;
}

struct LmFixture {
  ScratchDir dir{"lm"};
  std::string corpus = dir / "corpus.txt";
  std::string config = dir / "lm.json";
  explicit LmFixture(const nlohmann::json& overrides = nlohmann::json::object()) {
    write_text(corpus, generated_text());
    nlohmann::json cfg = lm_config(corpus);
    cfg.merge_patch(overrides);
    write_text(config, cfg.dump(2));
  }
};

}  // namespace

TEST_CASE("train lm: perplexity falls; 4 epochs equal 2 + resume 2 to the bit; eval repeats the loss") {
  LmFixture f;
  ScratchDir whole("lm-whole"), split("lm-split");
  auto [a, b] = train_whole_and_resumed(f.config, 4, 2, whole, split);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  CHECK(fields_of(a) == fields_of(b));
  CHECK(a[3]["step"] == b[3]["step"]);
  for (const auto& e : a) {
    CHECK(e.contains("tokens_per_s"));
    CHECK(e["test_split"] == "valid");
    CHECK(e["train_perplexity"].get<double>() == doctest::Approx(std::exp(e["train_loss"].get<double>())));
    CHECK(e["test_perplexity"].get<double>() == doctest::Approx(std::exp(e["test_loss"].get<double>())));
  }
  // Character unigrams alone give about 15; the sentences, once learned, about 1.2.
  for (size_t e = 1; e < a.size(); ++e)
    CHECK(a[e]["test_perplexity"].get<double>() < a[e - 1]["test_perplexity"].get<double>());
  CHECK(a[3]["test_perplexity"].get<double>() < 2.5);
  // Final weights identical, under PyTorch's names.
  auto ca = apps::open_checkpoint(whole.str());
  CHECK(ca.file.has("rnn.weight_ih_l1"));
  CHECK(ca.file.has("encoder.weight"));
  check_same_weights(whole.str(), split.str());
  RunResult ev = run_command(bin("eval") + " --json --checkpoint " + whole.str());
  REQUIRE_MESSAGE(ev.status == 0, ev.output);
  auto j = nlohmann::json::parse(ev.output.substr(ev.output.find('{')));
  CHECK(j["loss"].get<double>() == doctest::Approx(a[3]["test_loss"].get<double>()).epsilon(1e-6));
  CHECK(j["perplexity"].get<double>() == doctest::Approx(a[3]["test_perplexity"].get<double>()).epsilon(1e-6));
  CHECK(j["accuracy"].get<double>() == a[3]["test_accuracy"].get<double>());
}

TEST_CASE("train lm: reuse in the LSTM reports r_c per layer, learns, and resumes to the bit") {
  for (std::string dx : {"exact", "cluster"}) {
    CAPTURE(dx);
    LmFixture f(nlohmann::json{{"model", {{"reuse", {{"enabled", true}, {"L", 8}, {"H", 6}, {"dx", dx}}}}}});
    ScratchDir whole("lm-reuse-whole-" + dx), split("lm-reuse-split-" + dx);
    auto [a, b] = train_whole_and_resumed(f.config, 3, 1, whole, split);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
    CHECK(fields_of(a) == fields_of(b));
    for (size_t e = 1; e < a.size(); ++e)
      CHECK(a[e]["test_perplexity"].get<double>() < a[e - 1]["test_perplexity"].get<double>());
    CHECK(a[2]["test_perplexity"].get<double>() < 9.0);  // unigram level is about 15
    for (const auto& e : a) {
      REQUIRE(e.contains("reuse"));
      const auto& reuse = e["reuse"];
      CHECK(reuse.size() == 2);
      for (const char* layer : {"rnn.l0", "rnn.l1"}) {
        CAPTURE(std::string(layer));
        REQUIRE(reuse.contains(layer));
        const double rc = reuse[layer]["r_c"].get<double>();
        CHECK(rc > 0.0);
        CHECK(rc < 1.0);  // 28 characters in 128 rows: layer 0's rows repeat exactly
        CHECK(reuse[layer]["reuse_fraction"].get<double>() == 1.0);
        CHECK(reuse[layer]["settings"].get<std::string>().find("dx=" + dx) != std::string::npos);
      }
    }
  }
}

TEST_CASE("bench on a language-model config: model, LSTM and per-layer projection rows") {
  LmFixture f;
  RunResult r = run_command(bin("bench") + " --config " + f.config +
                            " --json --repeats 1 --reuse '{\"L\": 4, \"H\": 6, \"dx\": \"exact\"}'");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  REQUIRE(j["layers"].size() == 4);
  std::vector<std::string> names;
  for (const auto& row : j["layers"]) names.push_back(row["name"]);
  CHECK(names == std::vector<std::string>{"model", "rnn", "rnn.l0", "rnn.l1"});
  for (const auto& row : j["layers"]) {
    CAPTURE(row.dump());
    CHECK(row["reuse"].get<bool>());
    CHECK(row["dense_ms"].get<double>() > 0);
    CHECK(row["reuse_ms"].get<double>() > 0);
    CHECK(row["r_c"].get<double>() > 0);
    CHECK(row["r_c"].get<double>() <= 1.0);
  }
  for (size_t k = 2; k < 4; ++k) {
    const auto& row = j["layers"][k];
    CHECK(row["L"] == 4);
    CHECK(row["H"] == 6);
    CHECK(row["err_dx"].get<double>() < 1e-5);  // dx exact
    CHECK(row["err_y"].get<double>() >= 0.0);
    CHECK(row["err_dw"].get<double>() >= 0.0);
  }
  CHECK(j["layers"][2]["input"] == nlohmann::json::array({8 * 16, 16}));  // B*T rows x embedding
  CHECK(j["layers"][3]["input"] == nlohmann::json::array({8 * 16, 24}));  // x hidden
  CHECK(j["total_dense_ms"] == j["layers"][0]["dense_ms"]);
}

TEST_CASE("language-model task: one reuse layer per LSTM layer, each with its own product") {
  LmFixture f(nlohmann::json{{"model", {{"layers", 3}, {"reuse", {{"enabled", true}, {"L", 4}, {"H", 5}}}}}});
  apps::RunConfig config = apps::parse_run_config(core::load_json_file(f.config), f.config);
  auto tm = apps::build_task_and_model(config);
  auto& layers = tm.model->reuse_layers();
  REQUIRE(layers.size() == 3);
  std::set<core::Product*> distinct;
  std::set<uint64_t> seeds;
  for (size_t k = 0; k < layers.size(); ++k) {
    CHECK(layers[k].name == "rnn.l" + std::to_string(k));
    auto* p = dynamic_cast<reuse::ReuseProduct*>(layers[k].module->product());
    REQUIRE(p != nullptr);
    CHECK(p->settings().H == 5);
    distinct.insert(p);
    seeds.insert(p->settings().seed);
  }
  CHECK(distinct.size() == 3);
  CHECK(seeds.size() == 3);
  // Switching one layer to dense leaves the others on reuse.
  reuse::ReuseSettings dense;
  tm.model->apply_reuse(1, dense);
  CHECK_FALSE(layers[1].module->product()->is_reuse());
  CHECK(layers[0].module->product()->is_reuse());
  CHECK(layers[2].module->product()->is_reuse());
}

TEST_CASE("Model::apply_reuse on an LSTM module: a product per layer, settings switched in place") {
  core::Rng init = core::make_rng(1, core::RngPurpose::Init);
  auto owned = std::make_unique<layers::Lstm>(layers::LstmOptions{6, 5, 2, 0.0}, init,
                                              core::make_rng(1, core::RngPurpose::Dropout));
  layers::Lstm* lstm = owned.get();
  layers::Model model(std::move(owned), core::Shape{4, 6}, {{"rnn", lstm, reuse::ReuseSettings{}}});
  reuse::ReuseSettings s;
  s.enabled = true;
  s.L = 3;
  s.H = 4;
  s.seed = 40;
  model.apply_reuse(0, s);
  auto products = lstm->products();
  REQUIRE(products.size() == 2);
  CHECK(products[0] != products[1]);
  auto* p0 = dynamic_cast<reuse::ReuseProduct*>(products[0]);
  auto* p1 = dynamic_cast<reuse::ReuseProduct*>(products[1]);
  REQUIRE(p0 != nullptr);
  REQUIRE(p1 != nullptr);
  CHECK(p0->settings().seed == 40);
  CHECK(p1->settings().seed == 41);
  s.H = 7;
  model.apply_reuse(0, s);
  CHECK(lstm->products() == products);  // same objects, new rung
  CHECK(p1->settings().H == 7);
  // A product shared by both layers (Lstm::set_product) is split into one per layer.
  lstm->set_product(reuse::make_product(s));
  model.apply_reuse(0, s);
  CHECK(lstm->products()[0] != lstm->products()[1]);
  model.apply_reuse(0, reuse::ReuseSettings{});
  for (auto* p : lstm->products()) CHECK_FALSE(p->is_reuse());
  // Forward works on either product and through the model.
  core::Tensor x = core::Tensor::zeros({4, 3, 6});
  CHECK(model.forward(x).shape() == core::Shape{4, 3, 5});
}
