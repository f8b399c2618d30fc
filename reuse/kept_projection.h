// The pieces of keep_projection (settings.h): with orthonormal directions V_s
// [len x H] per block (the "pca" hasher's), a row's sub-vector is replaced in
// the clustered product by
//   x~ = c^ + V_s V_s^T x,   c^ = c - V_s V_s^T c   (c: its cluster's centroid),
// so the part of x along the block's H leading directions is exact per row
// and only the rest is shared by the cluster. Then
//   Y  = sum_s [ c^_s W_s^T + P_s G_s ],  P_s = X_s V_s,  G_s = V_s^T W_s^T,
//   dW_s = (clustered dW on c^) + V_s (P_s^T dY) ... transposed into [M, len],
//   dX_s = (cluster-mean dX_s)(I - V_s V_s^T) + (dY G_s^T) V_s^T,
// the exact gradient of that forward with the assignment and V held fixed.
// P and Q^T = G dY^T (both [blocks * H][rows]; P from the hashing pass in
// cluster_rows) make one GEMM of inner size blocks * H (about H / L of
// the dense product's K) per pass.
#pragma once

#include <cstdint>
#include <vector>


namespace deja::reuse {

class Hasher;

// All blocks' directions, [blocks][L][H] row-major (rows past a short last
// block's width are zero).
std::vector<float> block_directions(const Hasher& hasher);

// table[r, 0:len) -= V_s V_s^T table[r, 0:len) for r < rows (rows ld apart).
void remove_projection(float* table, int64_t rows, int64_t ld, const float* v_s, int64_t len, int64_t h);

// tile[j * ldt + i] (+)= sum_q V_s[j, q] qt[q * ldq + i] for j < len, i < count
// (added when `add`, else stored):
// a K-major dX tile's rows get their part along the directions, (Q_s V_s^T)^T
// (h vector registers of Q held while the tile's columns stream by).
void add_direction_terms(float* tile, int64_t ldt, int64_t len, int64_t count, const float* v_s, int64_t h,
                         const float* qt, int64_t ldq, bool add = true);

// g[(s * h + q) * m + o] = sum_j V_s[j, q] W[o, s * l + j]: G_s = V_s^T W_s^T, [blocks * H][M].
void direction_products(const float* v, int64_t l, int64_t h, const float* w, int64_t m, int64_t k, float* g);

}  // namespace deja::reuse
