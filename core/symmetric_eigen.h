// The leading eigenvectors of a small symmetric matrix: a full solve (LAPACK's
// dsyevr, which Debian's OpenBLAS exports) or a cheap refinement of a good
// guess. The reuse engine's "pca" hash projects each sub-vector block onto the
// principal directions of a batch's sample.
#pragma once

#include <cstdint>
#include <vector>

namespace deja::core {

struct Eigenvectors {
  std::vector<double> values;   // [count], largest first
  std::vector<double> vectors;  // [count][n], row e is the unit eigenvector of values[e]
};

// The `count` largest eigenpairs of the symmetric n x n matrix `a` (row-major;
// only one triangle needs to be valid; 1 <= count <= n). Each vector's
// largest-magnitude component is made positive, so the result does not depend
// on the solver's sign choice. Throws std::runtime_error if LAPACK fails.
Eigenvectors top_eigenvectors(const double* a, int64_t n, int64_t count);

// The same `count` eigenpairs refined from a guess (start: [count][n], rows
// need not be orthonormal, e.g. the last batch's directions): `steps` steps of
// subspace iteration Q <- orth(A Q), then a Rayleigh-Ritz rotation (the
// eigenvectors of Q^T A Q), so the result is ordered and signed as
// top_eigenvectors'. From a close guess a few steps suffice, at a fraction of
// the full solve's cost. Throws std::runtime_error for a rank-deficient start.
Eigenvectors refine_top_eigenvectors(const double* a, int64_t n, const std::vector<double>& start,
                                     int64_t count, int steps);

}  // namespace deja::core
