// bench on the smoke CNN: the step timing JSON and the OpenBLAS idle setting
// the apps give themselves (core/blas_idle.h) unless the user chose one.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

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
