// bench on the smoke CNN: the step timing JSON and the OpenBLAS idle setting
// the apps give themselves (core/blas_idle.h) unless the user chose one.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <regex>

#include "run_helpers.h"

using namespace deja::testing;

namespace {

nlohmann::json bench_json(const std::string& env) {
  RunResult r = run_command(env + " " + bin("bench") + " --config " + source("configs/smoke.json") +
                            " --step-only --repeats 1 --json");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  return nlohmann::json::parse(r.output.substr(r.output.find('{')));
}

}  // namespace

TEST_CASE("bench --step-only: the JSON names the step time and the BLAS setup it was taken with") {
  nlohmann::json unset = bench_json("env -u OPENBLAS_THREAD_TIMEOUT");
  CHECK(unset["step_ms"].get<double>() > 0);
  CHECK(unset["items_per_s"].get<double>() > 0);
  CHECK(unset["batch"].get<int>() > 0);
  CHECK(!unset["openblas_core"].get<std::string>().empty());
  // Re-executed with OpenBLAS's shortest spin before its workers sleep.
  CHECK(unset["openblas_thread_timeout"] == "4");
  // A value the user set is kept.
  nlohmann::json chosen = bench_json("env OPENBLAS_THREAD_TIMEOUT=12");
  CHECK(chosen["openblas_thread_timeout"] == "12");
}

TEST_CASE("bench --json: the saving as configured and its ceiling, the reuse-enabled layers' share") {
  const std::string command =
      bin("bench") + " --config " + source("configs/smoke.json") + " --repeats 1 --json";
  auto parse = [](const RunResult& r) {
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return nlohmann::json::parse(r.output.substr(r.output.find('{')));
  };
  nlohmann::json reused = parse(run_command(command + " --reuse '{\"L\": 9, \"H\": 4}'"));
  double dense_total = 0, reuse_total = 0, dense_reused = 0;
  for (const auto& row : reused["layers"]) {
    dense_total += row["dense_ms"].get<double>();
    reuse_total += row.value("reuse_ms", row["dense_ms"].get<double>());
    if (row.value("reuse", false)) dense_reused += row["dense_ms"].get<double>();
  }
  REQUIRE(dense_reused > 0);
  CHECK(dense_reused < dense_total);  // pooling, relu and the loss stay dense
  CHECK(reused["reuse_layers_share"].get<double>() == doctest::Approx(dense_reused / dense_total));
  CHECK(reused["step_saving"].get<double>() == doctest::Approx(1.0 - reuse_total / dense_total));
  // Without reuse there is nothing to save and nothing reuse could touch.
  nlohmann::json dense = parse(run_command(command));
  CHECK(dense["reuse_layers_share"].get<double>() == 0.0);
  CHECK(dense["step_saving"].get<double>() == doctest::Approx(0.0));
}

TEST_CASE("bench's summary line says slower when reuse is slower, never a ratio below 1 as faster") {
  // The smoke CNN's layers are too small for reuse to pay at these settings,
  // so the line usually reads "slower"; either way the multiplier is >= 1,
  // and "slower" goes with no saving on the next line (the same run's sums).
  RunResult r = run_command(bin("bench") + " --config " + source("configs/smoke.json") +
                            " --repeats 1 --reuse '{\"L\": 9, \"H\": 4}'");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::smatch m;
  const std::regex summary(R"(reuse-enabled layers: ([0-9.]+)x (faster|slower) than dense)");
  REQUIRE_MESSAGE(std::regex_search(r.output, m, summary), r.output);
  CHECK(std::stod(m[1].str()) >= 1.0);
  std::smatch saving;
  REQUIRE(std::regex_search(r.output, saving, std::regex(R"(saving: (none|[0-9.]+%))")));
  CHECK((m[2].str() == "slower") == (saving[1].str() == "none"));
}
