#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/pipeline.h"
#include "data/synthetic_dataset.h"
#include "data_test_files.h"

using namespace deja::data;
using deja::core::Json;
using deja::testing::TempDir;

TEST_CASE("synthetic pipeline: shapes, defaults resolved, deterministic from the seed") {
  Json cfg = {{"dataset", "synthetic"},
              {"synthetic", {{"classes", 4}, {"train", 64}, {"test", 16}, {"channels", 2}, {"size", 6}}},
              {"batch_size", 16},
              {"normalize", "none"}};
  DataPipeline p = make_data_pipeline(cfg, 5);
  CHECK(p.input_shape == deja::core::Shape{2, 6, 6});
  CHECK(p.num_classes == 4);
  CHECK(p.train->size() == 64);
  CHECK(p.test->size() == 16);
  CHECK(p.train_options.batch_size == 16);
  CHECK(p.test_options.batch_size == 16);
  CHECK_FALSE(p.test_options.shuffle);
  CHECK(p.train_options.seed == 5);
  CHECK(p.resolved["prefetch"] == 2);
  CHECK(p.resolved["shuffle"] == true);
  // Same seed, same pixels; other seed, other pixels; label i % classes.
  DataPipeline q = make_data_pipeline(cfg, 5), r = make_data_pipeline(cfg, 6);
  std::vector<float> a(72), b(72), c(72);
  p.train->read_image(9, a.data());
  q.train->read_image(9, b.data());
  r.train->read_image(9, c.data());
  CHECK(a == b);
  CHECK(a != c);
  CHECK(p.train->label(9) == 1);
  for (float v : a) CHECK((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("synthetic data is learnable: items sit nearest their own class pattern") {
  SyntheticOptions o;
  o.classes = 5;
  o.noise = 0.2;
  SyntheticDataset train(o, 3, true), test(o, 3, false);
  const int64_t n = 64;
  // Class means from train; nearest-mean classification of test.
  std::vector<std::vector<double>> mean(5, std::vector<double>(n, 0.0));
  std::vector<float> img(n);
  for (int64_t i = 0; i < train.size(); ++i) {
    train.read_image(i, img.data());
    for (int64_t k = 0; k < n; ++k) mean[train.label(i)][k] += img[k];
  }
  int correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    test.read_image(i, img.data());
    int best = -1;
    double best_d = 1e30;
    for (int c = 0; c < 5; ++c) {
      double d = 0;
      for (int64_t k = 0; k < n; ++k) d += std::pow(img[k] - mean[c][k] / 200.0, 2);
      if (d < best_d) best_d = d, best = c;
    }
    correct += best == test.label(i);
  }
  CHECK(correct > test.size() * 9 / 10);
}

TEST_CASE("pipeline with idx files: pad_to, auto normalisation, augmentation, subset") {
  TempDir dir;
  deja::testing::write_bytes(dir.file("tr_i"), deja::testing::idx_images(20, 4, 4), true);
  deja::testing::write_bytes(dir.file("tr_l"), deja::testing::idx_labels(std::vector<uint8_t>(20, 2)));
  deja::testing::write_bytes(dir.file("te_i"), deja::testing::idx_images(5, 4, 4));
  deja::testing::write_bytes(dir.file("te_l"), deja::testing::idx_labels({0, 1, 2, 1, 0}));
  Json cfg = {{"dataset", "idx"},   {"path", dir.path().string()}, {"train_images", "tr_i"},
              {"train_labels", "tr_l"}, {"test_images", "te_i"},     {"test_labels", "te_l"},
              {"pad_to", 6},         {"subset", 10},                {"augment", {{"random_crop", 1}, {"hflip", true}}},
              {"test_batch_size", 3}};
  DataPipeline p = make_data_pipeline(cfg, 1);
  CHECK(p.train->size() == 10);
  CHECK(p.test->size() == 5);
  CHECK(p.num_classes == 3);
  CHECK(p.input_shape == deja::core::Shape{1, 6, 6});
  CHECK(p.train_options.augment);
  CHECK(p.test_options.batch_size == 3);
  // Mean/std over the first 10 unpadded train images, by a naive loop here.
  double s = 0, s2 = 0;
  for (int i = 0; i < 10; ++i)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        double v = deja::testing::idx_pixel(i, y, x) / 255.0;
        s += v;
        s2 += v * v;
      }
  const double mean = s / 160, std = std::sqrt(s2 / 160 - mean * mean);
  REQUIRE(p.resolved["normalize"].is_object());
  CHECK(p.resolved["normalize"]["mean"][0].get<double>() == doctest::Approx(mean).epsilon(1e-5));
  CHECK(p.resolved["normalize"]["std"][0].get<double>() == doctest::Approx(std).epsilon(1e-5));
  // Test images: zero padding (before normalisation) around the 4x4 pixels.
  std::vector<float> img(36), out(36);
  p.test->read_image(2, img.data());
  CHECK(img[0] == 0.0f);
  CHECK(img[1 * 6 + 1] == doctest::Approx(deja::testing::idx_pixel(2, 0, 0) / 255.0f));
  deja::core::Rng rng(1);
  p.test_transform->apply(img.data(), p.input_shape, out.data(), rng);
  CHECK(out[0] == doctest::Approx((0 - mean) / std).epsilon(1e-4));
  // The resolved section rebuilds the same pipeline without recomputing.
  DataPipeline again = make_data_pipeline(p.resolved, 1);
  CHECK(again.resolved["normalize"] == p.resolved["normalize"]);
  // Loader over the pipeline delivers [B, 1, 6, 6].
  Loader loader(p.train, p.train_transform, p.train_options);
  Batch b;
  REQUIRE(loader.next(b));
  CHECK(b.images.shape() == deja::core::Shape{10, 1, 6, 6});
}

TEST_CASE("pipeline config errors name the key") {
  Json base = {{"dataset", "synthetic"}, {"normalize", "none"}};
  auto with = [&](const char* key, Json value) {
    Json c = base;
    c[key] = value;
    return c;
  };
  CHECK_THROWS_WITH(make_data_pipeline(with("bach_size", 3), 1), "data: unknown key 'bach_size' (did you mean 'batch_size'?)");
  CHECK_THROWS_WITH(make_data_pipeline(with("dataset", "imagenet"), 1),
                    "data: key 'dataset' must be one of fashion-mnist, mnist, idx, cifar10, cifar100, image_folder, "
                    "synthetic, got \"imagenet\"");
  CHECK_THROWS_WITH(make_data_pipeline(with("grey", true), 1),
                    "data: key 'grey' applies only to dataset image_folder, not 'synthetic'");
  CHECK_THROWS_WITH(make_data_pipeline(with("normalize", "zscore"), 1),
                    "data: key 'normalize' must be \"auto\", \"none\" or {\"mean\": [...], \"std\": [...]}, got \"zscore\"");
  CHECK_THROWS_WITH(make_data_pipeline(with("normalize", Json{{"mean", {0.5, 0.5}}, {"std", {1}}}), 1),
                    "data.normalize.mean must be a list of 1 numbers (one per channel), got [0.5,0.5]");
  CHECK_THROWS_WITH(make_data_pipeline(with("augment", Json{{"flip", true}}), 1),
                    "data.augment: unknown key 'flip' (did you mean 'hflip'?)");
  CHECK_THROWS_WITH(make_data_pipeline(with("batch_size", 0), 1), "data: 'batch_size' must be positive, got 0");
  CHECK_THROWS_WITH(make_data_pipeline(with("synthetic", Json{{"clases", 3}}), 1),
                    "data.synthetic: unknown key 'clases' (did you mean 'classes'?)");
  CHECK_THROWS_WITH(make_data_pipeline(Json{{"dataset", "cifar10"}}, 1),
                    "data: dataset 'cifar10' needs a 'path' (the folder of the binary batches)");
  CHECK_THROWS_WITH(make_data_pipeline(Json{{"dataset", "idx"}, {"train_images", "x"}}, 1, "cfg.data"),
                    "cfg.data: dataset 'idx' needs 'train_labels'");
  CHECK_THROWS_WITH(make_data_pipeline(Json{{"dataset", "mnist"}, {"path", "/nonexistent"}}, 1),
                    "data: '/nonexistent/train-images-idx3-ubyte.gz': cannot open (missing or unreadable)");
}

TEST_CASE("the smoke config's data section is accepted; resize reaches the input shape") {
  Json smoke = deja::core::load_json_file(std::string(DEJA_SOURCE_DIR) + "/configs/smoke.json");
  DataPipeline p = make_data_pipeline(smoke["data"], 1);
  CHECK(p.input_shape == deja::core::Shape{1, 12, 12});
  CHECK(p.num_classes == 4);
  CHECK(p.train->size() == 512);
  Json cfg = smoke["data"];
  cfg["resize"] = {6, 8};
  DataPipeline r = make_data_pipeline(cfg, 1);
  CHECK(r.input_shape == deja::core::Shape{1, 6, 8});
  // Resized pixels are the bilinear average of 2x(1.5) blocks: inside [0, 1].
  std::vector<float> img(48);
  r.train->read_image(0, img.data());
  for (float v : img) CHECK((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("image folder pipeline: grey + resize, class list and skipped images in the notes") {
  TempDir dir;
  const auto root = dir.path();
  for (const char* cls : {"b", "a"})
    for (int i = 0; i < 4; ++i)
      deja::testing::write_pnm((root / cls / (std::to_string(i) + ".ppm")).string(), 3, 3, 3, std::vector<uint8_t>(27, 90));
  deja::testing::write_bytes((root / "a/bad.jpg").string(), {0xFF, 0xD8, 0x00});
  Json cfg = {{"dataset", "image_folder"}, {"path", root.string()}, {"resize", {5, 5}}, {"grey", true},
              {"skip_bad_images", true},    {"test_fraction", 0.25},  {"normalize", "none"}};
  DataPipeline p = make_data_pipeline(cfg, 1);
  CHECK(p.input_shape == deja::core::Shape{1, 5, 5});
  CHECK(p.num_classes == 2);
  // The split is by file (a's last file, bad.jpg, is its test share and is skipped).
  CHECK(p.train->size() == 7);
  CHECK(p.test->size() == 1);
  CHECK(std::find(p.notes.begin(), p.notes.end(), "classes (2): a, b") != p.notes.end());
  CHECK(std::find(p.notes.begin(), p.notes.end(),
                  "skipped 1 undecodable images: " + (root / "a/bad.jpg").string()) != p.notes.end());
  std::vector<float> img(25);
  p.train->read_image(0, img.data());
  CHECK(img[12] == doctest::Approx(90 / 255.0f));
  cfg.erase("skip_bad_images");
  CHECK_THROWS_WITH(make_data_pipeline(cfg, 1),
                    doctest::Contains(("data: '" + (root / "a/bad.jpg").string() + "': cannot decode image").c_str()));
}
