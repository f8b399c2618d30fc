// The real Fashion-MNIST from Debian's dataset-fashion-mnist package; skipped
// when the package is not installed. Pinned values were read from the files
// with an independent script (Python gzip).
#include <doctest/doctest.h>

#include <vector>

#include "data/file_bytes.h"
#include "data/pipeline.h"

using namespace deja::data;

namespace {
bool installed() { return file_exists(std::string(kFashionMnistDefaultPath) + "/train-images-idx3-ubyte.gz"); }
}  // namespace

TEST_CASE("real Fashion-MNIST found by default" * doctest::skip(!installed())) {
  DataPipeline p = make_data_pipeline(deja::core::Json{{"dataset", "fashion-mnist"}, {"pad_to", 32}}, 1);
  CHECK(p.train->size() == 60000);
  CHECK(p.test->size() == 10000);
  CHECK(p.num_classes == 10);
  CHECK(p.input_shape == deja::core::Shape{1, 32, 32});
  CHECK(p.resolved["path"] == kFashionMnistDefaultPath);
  CHECK(p.train->class_names()[9] == "Ankle boot");
  const std::vector<int32_t> first_train = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, first_test = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; ++i) {
    CHECK(p.train->label(i) == first_train[i]);
    CHECK(p.test->label(i) == first_test[i]);
  }
  CHECK(p.train->label(59999) == 5);
  CHECK(p.test->label(9999) == 5);
  // Image 0: pixel sum 76247 and pixel (14, 14) = 217, seen through the 2-pixel padding.
  std::vector<float> img(32 * 32);
  p.train->read_image(0, img.data());
  double sum = 0;
  for (float v : img) sum += v * 255.0;
  CHECK(sum == doctest::Approx(76247).epsilon(1e-6));
  CHECK(img[16 * 32 + 16] * 255.0f == doctest::Approx(217));
  CHECK(p.train->describe() ==
        "Fashion-MNIST train (60000 images, 1x28x28, 10 classes) from "
        "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, pad(top 2, left 2, bottom 2, right 2) -> 1x32x32");
  // Mean/std of the real training set (computed before padding).
  CHECK(p.resolved["normalize"]["mean"][0].get<double>() == doctest::Approx(0.2860).epsilon(1e-3));
  CHECK(p.resolved["normalize"]["std"][0].get<double>() == doctest::Approx(0.3530).epsilon(1e-3));
}
