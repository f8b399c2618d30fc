// The leading eigenvectors of a small symmetric matrix (LAPACK's dsyevr, which
// Debian's OpenBLAS exports): the reuse engine's "pca" hash projects each
// sub-vector block onto the principal directions of a batch's sample.
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

}  // namespace deja::core
