// Every shipped config loads, builds its model and (when it has one) its reuse
// schedule; and every reuse twin X_adr.json differs from X.json only in reuse.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "apps/common/run_config.h"
#include "layers/builder.h"
#include "reuse/schedule.h"
#include "run_helpers.h"

using namespace deja;
using namespace deja::testing;

namespace {

std::vector<std::filesystem::path> shipped_configs() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(source("configs")))
    if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The config without anything reuse-related (and without its description).
nlohmann::json without_reuse(nlohmann::json c) {
  c.erase("description");
  c.erase("reuse_schedule");
  if (c.contains("model")) {
    c["model"].erase("reuse");
    if (c["model"].contains("layers"))
      for (auto& l : c["model"]["layers"]) l.erase("reuse");
  }
  return c;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("configs/: every image config builds its model and reuse schedule") {
  const auto configs = shipped_configs();
  REQUIRE(configs.size() >= 8);
  for (const auto& path : configs) {
    CAPTURE(path.string());
    apps::RunConfig rc = apps::load_run_config(path.string(), {});
    CHECK_FALSE(rc.description.empty());
    const auto& model_cfg = rc.raw["model"];
    if (!model_cfg.contains("layers") || !model_cfg["layers"].is_array()) continue;  // language models: built with their corpus
    auto model = layers::build_model(model_cfg, rc.seed);
    REQUIRE(model);
    if (!rc.raw.contains("reuse_schedule")) continue;
    std::vector<std::string> names;
    std::vector<reuse::ReuseSettings> base;
    for (auto& l : model->reuse_layers()) {
      names.push_back(l.name);
      base.push_back(l.base);
    }
    CHECK_FALSE(names.empty());
    CHECK_NOTHROW(reuse::ReuseScheduler(rc.raw["reuse_schedule"], names, base, rc.epochs));
  }
}

TEST_CASE("configs/: each reuse twin differs from its dense config only in reuse") {
  int twins = 0;
  for (const auto& path : shipped_configs()) {
    const std::string stem = path.stem().string();
    if (stem.size() < 5 || stem.substr(stem.size() - 4) != "_adr") continue;
    const auto dense = path.parent_path() / (stem.substr(0, stem.size() - 4) + ".json");
    CAPTURE(path.string());
    REQUIRE(std::filesystem::exists(dense));
    CHECK(without_reuse(read_json(path)) == without_reuse(read_json(dense)));
    ++twins;
  }
  CHECK(twins >= 4);  // cifarnet, alexnet, vgg19, vgg19_bn
}
