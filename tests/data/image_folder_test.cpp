#include <doctest/doctest.h>

#include <vector>

#include "data/image_folder_dataset.h"
#include "data_test_files.h"

using namespace deja::data;
using deja::testing::TempDir;

namespace {

// w x h RGB image, pixel (y, x) = (base + x, base + 10 * y, 200).
void rgb(const std::string& path, int w, int h, int base) {
  std::vector<uint8_t> p;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      p.push_back(static_cast<uint8_t>(base + x));
      p.push_back(static_cast<uint8_t>(base + 10 * y));
      p.push_back(200);
    }
  deja::testing::write_pnm(path, w, h, 3, p);
}

}  // namespace

TEST_CASE("image folders: sorted classes, CHW pixels, test split from the last files") {
  TempDir dir;
  const auto root = dir.path();
  rgb((root / "dog/a.ppm").string(), 4, 3, 0);
  rgb((root / "dog/b.ppm").string(), 4, 3, 20);
  rgb((root / "cat/x.ppm").string(), 4, 3, 40);
  rgb((root / "cat/y.ppm").string(), 4, 3, 60);
  deja::testing::write_bytes((root / "cat/notes.txt").string(), {'h', 'i'});
  ImageFolderOptions o;
  o.test_fraction = 0.5;
  auto s = open_image_folders(root.string(), o);
  CHECK(s.classes == std::vector<std::string>{"cat", "dog"});
  CHECK(s.ignored_files == 1);
  REQUIRE(s.train->size() == 2);
  REQUIRE(s.test->size() == 2);
  CHECK(s.train->item_shape() == deja::core::Shape{3, 3, 4});
  CHECK(s.train->label(0) == 0);  // cat/x
  CHECK(s.train->label(1) == 1);  // dog/a
  CHECK(s.test->label(0) == 0);   // cat/y
  CHECK(s.test->class_names() == std::vector<std::string>{"cat", "dog"});
  std::vector<float> img(36);
  s.test->read_image(1, img.data());  // dog/b, base 20
  CHECK(img[0 * 12 + 1 * 4 + 3] == doctest::Approx(23 / 255.0f));   // R at (1, 3)
  CHECK(img[1 * 12 + 2 * 4 + 0] == doctest::Approx(40 / 255.0f));   // G at (2, 0)
  CHECK(img[2 * 12 + 0] == doctest::Approx(200 / 255.0f));          // B
}

TEST_CASE("image folders: grey conversion, resize, train/test sub-folders") {
  TempDir dir;
  const auto root = dir.path();
  // A 2x2 grey image resized to 4x4: bilinear with clamped edges.
  deja::testing::write_pnm((root / "train/a/0.pgm").string(), 2, 2, 1, {0, 100, 200, 40});
  deja::testing::write_pnm((root / "test/a/0.pgm").string(), 4, 4, 1, std::vector<uint8_t>(16, 7));
  ImageFolderOptions o;
  o.grey = true;
  o.height = 4;
  o.width = 4;
  auto s = open_image_folders(root.string(), o);
  REQUIRE(s.train->size() == 1);
  CHECK(s.train->item_shape() == deja::core::Shape{1, 4, 4});
  std::vector<float> img(16);
  s.train->read_image(0, img.data());
  CHECK(img[0] == doctest::Approx(0.0f));
  CHECK(img[1] == doctest::Approx(25 / 255.0f));   // x: 0.25 of the way from 0 to 100
  CHECK(img[3] == doctest::Approx(100 / 255.0f));
  CHECK(img[15] == doctest::Approx(40 / 255.0f));
  s.test->read_image(0, img.data());
  CHECK(img[5] == doctest::Approx(7 / 255.0f));
}

TEST_CASE("image folders bad input: undecodable image, empty class, no classes, missing root") {
  TempDir dir;
  const auto root = dir.path();
  CHECK_THROWS_WITH(open_image_folders((root / "nope").string(), {}),
                    ("data: '" + (root / "nope").string() + "': cannot open (missing or not a folder)").c_str());
  CHECK_THROWS_WITH(open_image_folders(root.string(), {}),
                    ("data: '" + root.string() + "': no class sub-folders (expected one folder per class)").c_str());
  rgb((root / "a/1.ppm").string(), 2, 2, 0);
  rgb((root / "a/2.ppm").string(), 2, 2, 0);
  std::filesystem::create_directories(root / "b");
  CHECK_THROWS_WITH(open_image_folders(root.string(), {}),
                    ("data: '" + (root / "b").string() + "': class folder 'b' has no image files").c_str());
  deja::testing::write_bytes((root / "b/broken.png").string(), {1, 2, 3, 4, 5, 6, 7, 8});
  rgb((root / "b/ok.ppm").string(), 2, 2, 9);
  CHECK_THROWS_WITH(open_image_folders(root.string(), {}),
                    doctest::Contains(("data: '" + (root / "b/broken.png").string() + "': cannot decode image (").c_str()));
  ImageFolderOptions skip;
  skip.skip_bad_images = true;
  skip.test_fraction = 0.0;
  auto s = open_image_folders(root.string(), skip);
  CHECK(s.skipped_bad == 1);
  CHECK(s.skipped_files == std::vector<std::string>{(root / "b/broken.png").string()});
  CHECK(s.train->size() == 3);
  CHECK(s.test == nullptr);
}
