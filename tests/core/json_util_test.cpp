#include <doctest/doctest.h>

#include "core/json_util.h"

using namespace deja::core;

TEST_CASE("malformed JSON is reported with line and column") {
  CHECK_THROWS_WITH(parse_json_text("{\n  \"a\": 1,\n  \"b\": ]\n}", "cfg.json"),
                    doctest::Contains("cfg.json:3:8: malformed JSON: syntax error"));
  CHECK_THROWS_WITH(load_json_file("/nonexistent/x.json"),
                    "/nonexistent/x.json: cannot open (missing or unreadable)");
  // Comments are allowed.
  CHECK(parse_json_text("{\"a\": 1 // one\n}", "c")["a"] == 1);
}

TEST_CASE("unknown keys are rejected with the closest valid key") {
  Json j = {{"batch_size", 3}, {"bach_sise", 4}};
  CHECK_THROWS_WITH(reject_unknown_keys(j, {"batch_size", "epochs"}, "data"),
                    "data: unknown key 'bach_sise' (did you mean 'batch_size'?)");
  CHECK_THROWS_WITH(reject_unknown_keys(Json{{"zzzzzz", 1}}, {"batch_size"}, "data"),
                    "data: unknown key 'zzzzzz'");
  CHECK_NOTHROW(reject_unknown_keys(Json{{"epochs", 1}}, {"batch_size", "epochs"}, "x"));
}

TEST_CASE("typed reads name the key and the bad value") {
  Json j = {{"L", "ten"}, {"lr", 0.1}, {"k", {3, 5}}, {"n", 4.0}};
  CHECK_THROWS_WITH(read_int(j, "L", 1, "model.layers[3].reuse"),
                    "model.layers[3].reuse: key 'L' must be an integer, got \"ten\"");
  CHECK(read_number(j, "lr", 0, "o") == doctest::Approx(0.1));
  CHECK(read_int(j, "n", 0, "o") == 4);
  CHECK(read_int(j, "missing", 7, "o") == 7);
  CHECK(read_pair(j, "k", {1, 1}, "o") == std::pair<int64_t, int64_t>{3, 5});
  CHECK_THROWS_WITH(read_bool(j, "lr", false, "o"), "o: key 'lr' must be true or false, got 0.1");
}

TEST_CASE("--set overrides reach nested objects and list items") {
  Json c = {{"optimizer", {{"lr", 0.1}}}, {"model", {{"layers", {{{"type", "conv2d"}}}}}}};
  apply_override(c, "optimizer.lr=0.05");
  apply_override(c, "model.layers.0.out_channels=32");
  apply_override(c, "data.dataset=cifar10");
  CHECK(c["optimizer"]["lr"] == 0.05);
  CHECK(c["model"]["layers"][0]["out_channels"] == 32);
  CHECK(c["data"]["dataset"] == "cifar10");
  CHECK_THROWS_WITH(apply_override(c, "model.layers.4.x=1"),
                    "--set model.layers.4.x=1: 'model.layers.4' is past the end of a list of 1");
  CHECK_THROWS_WITH(apply_override(c, "noequals"), "--set noequals: expected key.path=value");
}
