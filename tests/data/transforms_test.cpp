#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "data/transforms.h"

using namespace deja::data;
using deja::core::Rng;
using deja::core::Shape;

namespace {

std::vector<float> iota_image(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 1.0f);
  return v;
}

}  // namespace

TEST_CASE("Pad places the image with zeros around it") {
  Pad pad(1, 2, 0, 1);
  Shape in{1, 2, 2};
  CHECK(pad.output_shape(in) == Shape{1, 3, 5});
  std::vector<float> src = {1, 2, 3, 4}, out(15, -1.0f);
  Rng rng(1);
  pad.apply(src.data(), in, out.data(), rng);
  std::vector<float> expected = {0, 0, 0, 0, 0,  //
                                 0, 0, 1, 2, 0,  //
                                 0, 0, 3, 4, 0};
  CHECK(out == expected);
  auto square = Pad::to_square({1, 28, 28}, 32);
  CHECK(square->output_shape({1, 28, 28}) == Shape{1, 32, 32});
  CHECK(square->describe() == "pad(top 2, left 2, bottom 2, right 2)");
  CHECK(Pad::to_square({1, 3, 4}, 5)->describe() == "pad(top 1, left 0, bottom 1, right 1)");
  CHECK_THROWS_WITH(Pad::to_square({1, 28, 28}, 20), "data: pad_to 20 is smaller than the images (28x28)");
}

TEST_CASE("RandomCrop equals pad-then-crop at some offset, and covers all offsets") {
  const Shape in{2, 3, 4};
  auto src = iota_image(24);
  RandomCrop crop(1);
  Rng rng(7);
  std::vector<std::vector<float>> seen;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> out(24);
    crop.apply(src.data(), in, out.data(), rng);
    // Find the (dy, dx) in [-1, 1]^2 that explains the output exactly.
    int matches = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        bool ok = true;
        for (int c = 0; c < 2; ++c)
          for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 4; ++x) {
              int sy = y + dy, sx = x + dx;
              float want = (sy >= 0 && sy < 3 && sx >= 0 && sx < 4) ? src[(c * 3 + sy) * 4 + sx] : 0.0f;
              ok = ok && out[(c * 3 + y) * 4 + x] == want;
            }
        matches += ok;
      }
    CHECK(matches == 1);
    if (std::find(seen.begin(), seen.end(), out) == seen.end()) seen.push_back(out);
  }
  CHECK(seen.size() == 9);  // every offset of the 3x3 range occurs
  // Deterministic given the generator state.
  std::vector<float> a(24), b(24);
  Rng r1(3), r2(3);
  crop.apply(src.data(), in, a.data(), r1);
  crop.apply(src.data(), in, b.data(), r2);
  CHECK(a == b);
}

TEST_CASE("HorizontalFlip mirrors rows; p=0 copies, p=1 always flips") {
  const Shape in{1, 2, 3};
  std::vector<float> src = {1, 2, 3, 4, 5, 6}, out(6);
  Rng rng(1);
  HorizontalFlip(1.0).apply(src.data(), in, out.data(), rng);
  CHECK(out == std::vector<float>{3, 2, 1, 6, 5, 4});
  HorizontalFlip(0.0).apply(src.data(), in, out.data(), rng);
  CHECK(out == src);
  int flips = 0;
  HorizontalFlip half(0.5);
  for (int i = 0; i < 1000; ++i) {
    half.apply(src.data(), in, out.data(), rng);
    flips += out[0] == 3;
  }
  CHECK(flips > 400);
  CHECK(flips < 600);
}

TEST_CASE("Normalize is per channel (x - mean) / std and checks its channel count") {
  Normalize norm({0.5f, 1.0f}, {0.25f, 2.0f});
  const Shape in{2, 1, 2};
  std::vector<float> src = {0.5f, 1.0f, 3.0f, -1.0f}, out(4);
  Rng rng(1);
  norm.apply(src.data(), in, out.data(), rng);
  CHECK(out[0] == doctest::Approx(0.0f));
  CHECK(out[1] == doctest::Approx(2.0f));
  CHECK(out[2] == doctest::Approx(1.0f));
  CHECK(out[3] == doctest::Approx(-1.0f));
  CHECK_THROWS_WITH(norm.output_shape({3, 2, 2}), "Normalize: 2 channel statistics for images with 3 channels");
  CHECK_THROWS_WITH(Normalize({0.5f}, {0.0f}), "Normalize: std [0] must be positive");
}

TEST_CASE("Resize: bilinear with aligned pixel centres") {
  Rng rng(1);
  // 1x2 -> 1x4: source centres at x=0,1; output centres map to -0.25, 0.25, 0.75, 1.25 -> clamped.
  std::vector<float> src = {0, 4}, out(4);
  Resize(1, 4).apply(src.data(), {1, 1, 2}, out.data(), rng);
  CHECK(out == std::vector<float>{0, 1, 3, 4});
  // 2x2 -> 3x3: centre is the mean of the four.
  std::vector<float> sq = {0, 2, 4, 6}, big(9);
  Resize(3, 3).apply(sq.data(), {1, 2, 2}, big.data(), rng);
  CHECK(big[4] == doctest::Approx(3.0f));
  CHECK(big[0] == doctest::Approx(0.0f));
  CHECK(big[1] == doctest::Approx(1.0f));  // x = 0.5 -> between 0 and 2
  CHECK(big[8] == doctest::Approx(6.0f));
  // 4x4 -> 2x2 averages each 2x2 block (centres fall between source pixels).
  auto four = iota_image(16), half(std::vector<float>(4));
  Resize(2, 2).apply(four.data(), {1, 4, 4}, half.data(), rng);
  CHECK(half[0] == doctest::Approx((1 + 2 + 5 + 6) / 4.0f));
  CHECK(half[3] == doctest::Approx((11 + 12 + 15 + 16) / 4.0f));
}

TEST_CASE("Compose applies its parts in order and tracks the shape") {
  auto pad = std::make_shared<Pad>(0, 0, 0, 1);
  auto flip = std::make_shared<HorizontalFlip>(1.0);
  auto norm = std::make_shared<Normalize>(std::vector<float>{1.0f}, std::vector<float>{2.0f});
  Compose c({pad, flip, norm});
  CHECK(c.output_shape({1, 1, 2}) == Shape{1, 1, 3});
  CHECK(c.is_random());
  std::vector<float> src = {3, 5}, out(3);
  Rng rng(1);
  c.apply(src.data(), {1, 1, 2}, out.data(), rng);
  // pad -> [3, 5, 0]; flip -> [0, 5, 3]; normalise -> [-0.5, 2, 1]
  CHECK(out == std::vector<float>{-0.5f, 2.0f, 1.0f});
  Compose empty({});
  CHECK_FALSE(empty.is_random());
  empty.apply(src.data(), {1, 1, 2}, out.data(), rng);
  CHECK(out[0] == 3);
  CHECK(out[1] == 5);
}
