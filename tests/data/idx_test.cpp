#include <doctest/doctest.h>

#include <vector>

#include "data/idx_dataset.h"
#include "data_test_files.h"

using namespace deja::data;
using deja::testing::TempDir;

namespace {

void write_pair(const TempDir& dir, const std::string& prefix, int n, int rows, int cols,
                const std::vector<uint8_t>& labels, bool gzip) {
  const std::string ext = gzip ? ".gz" : "";
  deja::testing::write_bytes(dir.file(prefix + "-images-idx3-ubyte" + ext), deja::testing::idx_images(n, rows, cols), gzip);
  deja::testing::write_bytes(dir.file(prefix + "-labels-idx1-ubyte" + ext), deja::testing::idx_labels(labels), gzip);
}

}  // namespace

TEST_CASE("IDX reader returns the pixels and labels written, raw and gzip") {
  for (bool gzip : {false, true}) {
    CAPTURE(gzip);
    TempDir dir;
    write_pair(dir, "train", 5, 3, 4, {3, 1, 4, 1, 5}, gzip);
    IdxFiles files = standard_idx_files(dir.path().string(), true);
    CHECK(files.images == dir.file(gzip ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte"));
    auto ds = open_idx_dataset(files, 10, {}, "Test train");
    REQUIRE(ds->size() == 5);
    CHECK(ds->item_shape() == deja::core::Shape{1, 3, 4});
    CHECK(ds->num_classes() == 10);
    CHECK(ds->label(0) == 3);
    CHECK(ds->label(4) == 5);
    std::vector<float> img(12);
    ds->read_image(2, img.data());
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x)
        CHECK(img[y * 4 + x] == doctest::Approx(deja::testing::idx_pixel(2, y, x) / 255.0f));
    CHECK(ds->describe() == "Test train (5 images, 1x3x4, 10 classes) from " + files.images);
    CHECK(ds->class_names() == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  }
}

TEST_CASE("IDX reader with num_classes 0 takes the largest label + 1") {
  TempDir dir;
  write_pair(dir, "train", 3, 2, 2, {0, 6, 2}, false);
  auto ds = open_idx_dataset(standard_idx_files(dir.path().string(), true), 0, {}, "x");
  CHECK(ds->num_classes() == 7);
}

TEST_CASE("IDX bad input: missing file, bad magic, truncation, label range, count mismatch") {
  TempDir dir;
  const std::string images = dir.file("i.idx"), labels = dir.file("l.idx");
  IdxFiles files{images, labels};

  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + images + "': cannot open (missing or unreadable)").c_str());

  // Labels file given as images: magic 0x801.
  deja::testing::write_bytes(images, deja::testing::idx_labels({1, 2}));  // 10 bytes: magic checked before size
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + images + "': bad magic 0x00000801 at offset 0, expected 0x00000803 (idx3 images)").c_str());

  // Truncated: 4 images of 5x5 need 16 + 100 bytes; cut to 60 (gzip too).
  for (bool gzip : {false, true}) {
    auto bytes = deja::testing::idx_images(4, 5, 5);
    bytes.resize(60);
    deja::testing::write_bytes(images, bytes, gzip);
    CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                      ("data: '" + images + "': ends at byte 60, expected 116 bytes (16-byte header + 4 images of 5x5)").c_str());
  }
  // Shorter than the header.
  deja::testing::write_bytes(images, {0, 0, 8, 3, 0});
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + images + "': ends at byte 5, expected a 16-byte idx3 images header").c_str());

  deja::testing::write_bytes(images, deja::testing::idx_images(4, 5, 5));
  deja::testing::write_bytes(labels, deja::testing::idx_labels({1, 2, 9, 12}));
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + labels + "': label 12 at index 3 (offset 11) outside [0, 10)").c_str());

  deja::testing::write_bytes(labels, deja::testing::idx_labels({1, 2, 3}));
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + labels + "': holds 3 labels but '" + images + "' holds 4 images").c_str());

  auto label_bytes = deja::testing::idx_labels({1, 2, 3, 4});
  label_bytes[3] = 0x03;
  deja::testing::write_bytes(labels, label_bytes);
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"),
                    ("data: '" + labels + "': bad magic 0x00000803 at offset 0, expected 0x00000801 (idx1 labels)").c_str());

  // A gzip stream cut in the middle is an error, not a short file taken as whole.
  deja::testing::write_bytes(images, deja::testing::idx_images(40, 28, 28), true);
  std::filesystem::resize_file(images, std::filesystem::file_size(images) / 2);
  CHECK_THROWS_WITH(open_idx_dataset(files, 10, {}, "x"), doctest::Contains(("data: '" + images + "': ").c_str()));
}
