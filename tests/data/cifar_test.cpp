#include <doctest/doctest.h>

#include <vector>

#include "data/cifar_dataset.h"
#include "data_test_files.h"

using namespace deja::data;
using deja::testing::TempDir;

namespace {

// A record: label bytes then 3072 pixels with pixel(c, y, x) = (seed + c * 50 + y * 3 + x) % 256.
void add_record(std::vector<uint8_t>& b, std::vector<uint8_t> labels, int seed) {
  b.insert(b.end(), labels.begin(), labels.end());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) b.push_back(static_cast<uint8_t>((seed + c * 50 + y * 3 + x) % 256));
}

}  // namespace

TEST_CASE("CIFAR-10 binary batches: five train files, one test file, CHW pixels") {
  TempDir dir;
  for (int f = 1; f <= 5; ++f) {
    std::vector<uint8_t> b;
    add_record(b, {static_cast<uint8_t>(f)}, f);
    add_record(b, {static_cast<uint8_t>(f + 4)}, f + 100);
    deja::testing::write_bytes(dir.file("data_batch_" + std::to_string(f) + ".bin"), b);
  }
  std::vector<uint8_t> t;
  add_record(t, {9}, 7);
  deja::testing::write_bytes(dir.file("test_batch.bin"), t);
  deja::testing::write_bytes(dir.file("batches.meta.txt"),
                             {'a', '\n', 'b', '\n', 'c', '\n', 'd', '\n', 'e', '\n', 'f', '\n', 'g', '\n', 'h', '\n', 'i', '\n', 'j', '\n', '\n'});
  auto train = open_cifar10(dir.path().string(), true);
  auto test = open_cifar10(dir.path().string(), false);
  REQUIRE(train->size() == 10);
  CHECK(test->size() == 1);
  CHECK(train->item_shape() == deja::core::Shape{3, 32, 32});
  CHECK(train->label(0) == 1);
  CHECK(train->label(3) == 6);
  CHECK(train->label(9) == 9);
  CHECK(test->label(0) == 9);
  CHECK(train->class_names()[9] == "j");
  std::vector<float> img(3072);
  train->read_image(3, img.data());  // file 2, record 1: seed 102
  CHECK(img[0] == doctest::Approx(102 / 255.0f));
  CHECK(img[2 * 1024 + 5 * 32 + 7] == doctest::Approx(((102 + 100 + 15 + 7) % 256) / 255.0f));
}

TEST_CASE("CIFAR-100 uses the fine label; bad sizes and labels are named") {
  TempDir dir;
  std::vector<uint8_t> b;
  add_record(b, {3, 42}, 0);
  add_record(b, {19, 99}, 1);
  deja::testing::write_bytes(dir.file("train.bin"), b);
  auto ds = open_cifar100(dir.path().string(), true);
  CHECK(ds->num_classes() == 100);
  CHECK(ds->label(0) == 42);
  CHECK(ds->label(1) == 99);

  CHECK_THROWS_WITH(open_cifar100(dir.path().string(), false),
                    ("data: '" + dir.file("test.bin") + "': cannot open (missing or unreadable)").c_str());
  b.resize(b.size() - 10);
  deja::testing::write_bytes(dir.file("test.bin"), b);
  CHECK_THROWS_WITH(open_cifar100(dir.path().string(), false),
                    ("data: '" + dir.file("test.bin") +
                     "': ends at byte 6138, expected a multiple of 3074 bytes (records of 2 label byte(s) + 3x32x32 pixels)").c_str());
  std::vector<uint8_t> c;
  add_record(c, {0}, 0);
  add_record(c, {10}, 0);
  deja::testing::write_bytes(dir.file("test_batch.bin"), c);
  CHECK_THROWS_WITH(open_cifar10(dir.path().string(), false),
                    ("data: '" + dir.file("test_batch.bin") + "': label 10 at record 1 (offset 3073) outside [0, 10)").c_str());
}
