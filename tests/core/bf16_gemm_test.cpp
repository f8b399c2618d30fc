#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/bf16_gemm.h"
#include "core/rng.h"

using namespace deja::core;

namespace {

std::vector<float> normals(int64_t count, uint64_t seed) {
  Rng rng(seed, 3);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = rng.normal();
  return v;
}

}  // namespace

TEST_CASE("to_bf16 rounds to nearest even and keeps zeros, infinities and NaN") {
  CHECK(to_bf16(1.0f) == 0x3f80);
  CHECK(to_bf16(-2.0f) == 0xc000);
  CHECK(to_bf16(1.0f + 0x1p-8f) == 0x3f80);       // halfway, the even neighbour below
  CHECK(to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);   // halfway, the even neighbour above
  CHECK(to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);  // above halfway: up
  CHECK(to_bf16(0.0f) == 0x0000);
  CHECK(to_bf16(-0.0f) == 0x8000);
  CHECK(to_bf16(INFINITY) == 0x7f80);
  CHECK(std::isnan(from_bf16(to_bf16(NAN))));
  CHECK(from_bf16(0x3fc0) == 1.5f);
}

TEST_CASE("pair packing: row pairs and column pairs hold the rounded elements in order, padding zero") {
  for (const int64_t rows : {int64_t{1}, int64_t{6}, int64_t{7}})
    for (const int64_t cols : {int64_t{1}, int64_t{16}, int64_t{33}, int64_t{70}}) {
      CAPTURE(rows);
      CAPTURE(cols);
      const int64_t lds = cols + 3;
      const std::vector<float> x = normals(rows * lds, 11);
      const int64_t ldo = round_up_16(cols) + 16;
      std::vector<uint32_t> by_rows(static_cast<size_t>((rows + 1) / 2 * ldo), 0xdeadbeefu);
      pack_row_pairs(x.data(), rows, cols, lds, by_rows.data(), ldo);
      bool rows_ok = true;
      for (int64_t p = 0; p < (rows + 1) / 2; ++p)
        for (int64_t j = 0; j < ldo; ++j) {
          const uint32_t w = by_rows[p * ldo + j];
          const uint32_t lo = j < cols ? to_bf16(x[2 * p * lds + j]) : 0u;
          const uint32_t hi = j < cols && 2 * p + 1 < rows ? to_bf16(x[(2 * p + 1) * lds + j]) : 0u;
          rows_ok = rows_ok && w == (lo | (hi << 16));
        }
      CHECK(rows_ok);
      const int64_t words = (cols + 1) / 2, ldw = words + 2;
      std::vector<uint32_t> by_cols(static_cast<size_t>(rows * ldw), 0xdeadbeefu);
      pack_column_pairs(x.data(), rows, cols, lds, by_cols.data(), ldw);
      bool cols_ok = true;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t q = 0; q < words; ++q) {
          const uint32_t lo = to_bf16(x[i * lds + 2 * q]);
          const uint32_t hi = 2 * q + 1 < cols ? to_bf16(x[i * lds + 2 * q + 1]) : 0u;
          cols_ok = cols_ok && by_cols[i * ldw + q] == (lo | (hi << 16));
        }
        cols_ok = cols_ok && by_cols[i * ldw + words] == 0xdeadbeefu;  // nothing written past the words
      }
      CHECK(cols_ok);
    }
}

TEST_CASE("gemm_bf16_pairs matches the plain loop and the float product of its operands") {
  MESSAGE(std::string(bf16_available() ? "bf16 kernels in this build" : "no bf16 kernels in this build: plain loops"));
  // C = A B with A [m x k], B [k x n]: A packed both ways the low-rank
  // products use (pairs along A's rows of a K-major copy, and along a row-major
  // A's columns), B as row pairs; edges of every register block and vector.
  for (const int64_t m : {int64_t{1}, int64_t{5}, int64_t{6}, int64_t{13}})
    for (const int64_t n : {int64_t{1}, int64_t{16}, int64_t{17}, int64_t{64}, int64_t{130}})
      for (const int64_t k : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{64}}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        const std::vector<float> a = normals(m * k, 5), b = normals(k * n, 6);
        std::vector<float> at(static_cast<size_t>(k * m));  // A^T, K-major
        for (int64_t i = 0; i < m; ++i)
          for (int64_t q = 0; q < k; ++q) at[q * m + i] = a[i * k + q];
        const int64_t pairs = (k + 1) / 2, ldb = round_up_16(n), words = pairs;
        std::vector<uint32_t> bp(static_cast<size_t>(std::max<int64_t>(1, pairs * ldb)));
        pack_row_pairs(b.data(), k, n, n, bp.data(), ldb);
        std::vector<uint32_t> a_cols(static_cast<size_t>(std::max<int64_t>(1, m * words)));
        pack_column_pairs(a.data(), m, k, k, a_cols.data(), words);
        std::vector<uint32_t> a_rows(static_cast<size_t>(std::max<int64_t>(1, pairs * m)));
        pack_row_pairs(at.data(), k, m, m, a_rows.data(), m);
        const int64_t ldc = n + 2;
        std::vector<float> start = normals(m * ldc, 7);
        for (const bool accumulate : {false, true}) {
          CAPTURE(accumulate);
          std::vector<float> fast_cols(start), fast_rows(start), plain(start);
          gemm_bf16_pairs(m, n, pairs, a_cols.data(), words, 1, bp.data(), ldb, fast_cols.data(), ldc, accumulate);
          gemm_bf16_pairs(m, n, pairs, a_rows.data(), 1, m, bp.data(), ldb, fast_rows.data(), ldc, accumulate);
          gemm_bf16_pairs_plain(m, n, pairs, a_cols.data(), words, 1, bp.data(), ldb, plain.data(), ldc, accumulate);
          double worst_kernel = 0.0, worst_float = 0.0, worst_pad = 0.0;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double exact = accumulate ? start[i * ldc + j] : 0.0, scale = 1.0;
              for (int64_t q = 0; q < k; ++q) {
                exact += double(a[i * k + q]) * b[q * n + j];
                scale += std::abs(double(a[i * k + q]) * b[q * n + j]);
              }
              const size_t at_ij = static_cast<size_t>(i * ldc + j);
              worst_kernel = std::max({worst_kernel, std::abs(double(fast_cols[at_ij]) - plain[at_ij]) / scale,
                                       std::abs(double(fast_rows[at_ij]) - plain[at_ij]) / scale});
              worst_float = std::max(worst_float, std::abs(double(plain[at_ij]) - exact) / scale);
            }
            for (int64_t j = n; j < ldc; ++j)  // columns past n untouched
              worst_pad = std::max({worst_pad, double(std::abs(fast_cols[i * ldc + j] - start[i * ldc + j])),
                                    double(std::abs(fast_rows[i * ldc + j] - start[i * ldc + j]))});
          }
          CHECK(worst_kernel < 1e-6);
          CHECK(worst_float < 8e-3);  // two roundings to 8 significant bits per product
          CHECK(worst_pad == 0.0);
        }
      }
}
