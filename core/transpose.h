// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: the tile
// transposes of conv2d's reuse path (K-major patches to row-major rows and
// back), which run over every element of a layer's patch matrix, so the
// inner 16 x 16 blocks are register transposes when AVX-512 is there.
#pragma once

#include <cstdint>

namespace deja::core {

void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd);

// dst[j * ldd + i] = rows[i][j] for i < count, j < cols: the same with
// scattered source rows (the reuse engine's per-cluster input gradients,
// read straight into a K-major tile, no row-major copy in between).
void transpose_rows(const float* const* rows, int64_t count, int64_t cols, float* dst, int64_t ldd);

// The plain loop, the reference the fast one is tested against.
void transpose_plain(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst,
                     int64_t ldd);

}  // namespace deja::core
