#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "core/transpose.h"

using deja::core::transpose;
using deja::core::transpose_plain;

TEST_CASE("transpose matches the plain loop for full blocks, edges and strides") {
  const int64_t shapes[][2] = {{16, 16}, {1, 1}, {17, 33}, {64, 50}, {50, 64}, {3, 40}, {40, 3}, {256, 25}, {300, 20}};  // 300: more than one slab of row pointers
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

TEST_CASE("transpose_rows reads scattered rows, repeated rows included") {
  // 8 distinct source rows, picked in a scrambled order with repeats (as
  // cluster ids pick per-cluster rows); 37 and 48 rows (full 16-row slabs
  // and a tail); 50 columns (a ragged right edge done by an overlapping
  // block), 16 and 17 (one block, one block plus one column), 5 (no block).
  for (const int64_t cols : {int64_t{50}, int64_t{16}, int64_t{17}, int64_t{5}}) {
    std::vector<float> table(static_cast<size_t>(8 * cols));
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i) * 0.25f + 1.0f;
    for (const int64_t count : {int64_t{37}, int64_t{48}}) {
      std::vector<const float*> rows(static_cast<size_t>(count));
      std::vector<float> gathered(static_cast<size_t>(count * cols));
      for (int64_t i = 0; i < count; ++i) {
        rows[i] = table.data() + ((i * 5 + 3) % 8) * cols;
        for (int64_t j = 0; j < cols; ++j) gathered[i * cols + j] = rows[i][j];
      }
      const int64_t ldd = count + 2;
      std::vector<float> fast(static_cast<size_t>(cols * ldd), -1.0f), plain(fast);
      deja::core::transpose_rows(rows.data(), count, cols, fast.data(), ldd);
      transpose_plain(gathered.data(), count, cols, cols, plain.data(), ldd);
      CAPTURE(cols);
      CAPTURE(count);
      CHECK(fast == plain);
    }
  }
}
