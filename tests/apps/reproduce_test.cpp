// The quick reproduction of the training-time experiment runs end to end on the
// smoke config (dense and its adaptive-reuse twin) and writes its CSV, markdown
// table and plot.
#include <doctest/doctest.h>

#include <filesystem>

#include "run_helpers.h"

using namespace deja::testing;

TEST_CASE("experiments/reproduce_training.sh --quick smoke: CSV, table and plot") {
  ScratchDir dir("reproduce");
  RunResult r = run_command("cd " + source("") + " && DEJA_TRAIN=" + bin("train") +
                            " bash experiments/reproduce_training.sh smoke --quick --out " + dir.str());
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::string csv = read_text(dir / "results.csv");
  CHECK(csv.rfind("network,epochs,dense_s,reuse_s,reduction,speedup,dense_acc,reuse_acc,diff,mean_rc", 0) == 0);
  CHECK(csv.find("\nsmoke,2,") != std::string::npos);
  const std::string md = read_text(dir / "results.md");
  CHECK(md.find("| smoke | 2 |") != std::string::npos);
  CHECK(md.find("conv1 0.") != std::string::npos);  // a mean r_c below 1 for the reuse layers
  CHECK(md.find("rung 0 -> 1") != std::string::npos);
  auto png = read_text(dir / "smoke/loss_accuracy.png");
  REQUIRE(png.size() > 1000);
  CHECK(png.substr(1, 3) == "PNG");
  // Both runs trained the same number of steps on the same data.
  auto dense = read_metrics(dir / "smoke/dense/metrics.jsonl"), reuse = read_metrics(dir / "smoke/reuse/metrics.jsonl");
  REQUIRE(dense.size() == 2);
  REQUIRE(reuse.size() == 2);
  CHECK(dense.back()["step"] == reuse.back()["step"]);
  CHECK(reuse.front()["reuse"]["conv2"]["r_c"].get<double>() < 0.5);
  CHECK(dense.front()["reuse"]["conv2"]["r_c"].get<double>() == 1.0);
}
