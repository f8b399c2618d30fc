#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/plane_sum.h"
#include "core/rng.h"

TEST_CASE("sum_run and copy_and_sum_run match a double-precision sum, lengths around the 16 lanes") {
  deja::core::Rng rng(7, 1);
  for (int64_t n : {0, 1, 5, 15, 16, 17, 31, 32, 33, 256, 1000, 1024}) {
    INFO("n ", n);
    std::vector<float> x(static_cast<size_t>(n));
    double want = 0.0, magnitude = 0.0;
    for (float& v : x) {
      v = rng.normal(0.5f, 2.0f);
      want += v;
      magnitude += std::fabs(v);
    }
    const double tolerance = 1e-6 * magnitude + 1e-7;
    CHECK(std::fabs(deja::core::sum_run(x.data(), n) - want) <= tolerance);
    std::vector<float> copy(static_cast<size_t>(n) + 1, -7.0f);  // one guard element
    const float s = deja::core::copy_and_sum_run(x.data(), copy.data(), n);
    CHECK(s == deja::core::sum_run(x.data(), n));
    for (int64_t i = 0; i < n; ++i) REQUIRE(copy[i] == x[i]);
    CHECK(copy[static_cast<size_t>(n)] == -7.0f);
  }
}

TEST_CASE("sum_run: exact on integers, and every element counts once") {
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13);
  double want = 0.0;
  for (float v : x) want += v;
  CHECK(deja::core::sum_run(x.data(), 1000) == static_cast<float>(want));
  CHECK(deja::core::sum_run(x.data(), 999) == static_cast<float>(want - x[999]));
}

TEST_CASE("lane_sum of a computed term (squared deviations) matches double precision") {
  deja::core::Rng rng(8, 1);
  for (int64_t n : {3, 16, 50, 1024}) {
    INFO("n ", n);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = rng.normal(3.0f, 1.5f);
    const float mean = 3.0f;
    double want = 0.0;
    for (float v : x) want += (static_cast<double>(v) - mean) * (static_cast<double>(v) - mean);
    const float got =
        deja::core::lane_sum(n, [&](int64_t i) { return (x[static_cast<size_t>(i)] - mean) * (x[static_cast<size_t>(i)] - mean); });
    CHECK(got == doctest::Approx(want).epsilon(1e-5));
  }
}
