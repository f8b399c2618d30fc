#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "core/transpose.h"

using deja::core::transpose;
using deja::core::transpose_plain;

TEST_CASE("transpose matches the plain loop for full blocks, edges and strides") {
  const int64_t shapes[][2] = {{16, 16}, {1, 1}, {17, 33}, {64, 50}, {50, 64}, {3, 40}, {40, 3}, {256, 25}};
  for (const auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1], lds = cols + 3, ldd = rows + 5;
    std::vector<float> src(static_cast<size_t>(rows * lds));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.0f;
    std::vector<float> fast(static_cast<size_t>(cols * ldd), -1.0f), plain(fast);
    transpose(src.data(), rows, cols, lds, fast.data(), ldd);
    transpose_plain(src.data(), rows, cols, lds, plain.data(), ldd);
    CAPTURE(rows);
    CAPTURE(cols);
    CHECK(fast == plain);
    if (cols > 1) CHECK(plain[1 * ldd + 0] == src[1]);  // dst[j][i] = src[i][j], j = 1, i = 0
  }
}
