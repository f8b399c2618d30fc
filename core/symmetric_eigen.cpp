#include "core/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

extern "C" {
// LAPACK (Fortran ABI, trailing hidden string lengths).
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a,
             const int* lda, const double* vl, const double* vu, const int* il, const int* iu,
             const double* abstol, int* m, double* w, double* z, const int* ldz, int* isuppz,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info,
             unsigned long jobz_len, unsigned long range_len, unsigned long uplo_len);
}

namespace deja::core {

namespace {

// The sign convention of both solvers: v's largest-magnitude component is positive.
void orient(double* v, int64_t n) {
  int64_t biggest = 0;
  for (int64_t j = 1; j < n; ++j)
    if (std::fabs(v[j]) > std::fabs(v[biggest])) biggest = j;
  if (v[biggest] < 0.0)
    for (int64_t j = 0; j < n; ++j) v[j] = -v[j];
}

// out_e = A in_e for the `count` rows of `in` (A symmetric n x n, row-major),
// as a sum of A's rows scaled by in_e's entries (A's row j is its column j):
// the inner loop is an axpy that vectorises, where a dot product per entry
// is one serial chain of double adds (pca refits 32 blocks every batch).
void multiply_rows(const double* a, int64_t n, const std::vector<double>& in, int64_t count,
                   std::vector<double>& out) {
  for (int64_t e = 0; e < count; ++e) {
    double* oe = out.data() + e * n;
    std::fill(oe, oe + n, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      const double scale = in[e * n + j];
      const double* row = a + j * n;
      for (int64_t i = 0; i < n; ++i) oe[i] += scale * row[i];
    }
  }
}

// sum_j a[j] b[j] in eight interleaved partial sums, added pairwise at the
// end: one vector of independent FMA chains where a single running sum is
// a serial chain of dependent adds (these dots were most of the refit's
// time: docs/perf-notes.md, Round 20).
double dot(const double* a, const double* b, int64_t n) {
  double part[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) part[l] += a[j + l] * b[j + l];
  for (int l = 0; j < n; ++j, ++l) part[l] += a[j] * b[j];
  return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}

// Modified Gram-Schmidt over the rows, twice (the second pass mops up the
// first's rounding).
void orthonormalise_rows(std::vector<double>& v, int64_t n, int64_t count) {
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t e = 0; e < count; ++e) {
      double* ve = v.data() + e * n;
      for (int64_t f = 0; f < e; ++f) {
        const double* vf = v.data() + f * n;
        const double along = dot(ve, vf, n);
        for (int64_t j = 0; j < n; ++j) ve[j] -= along * vf[j];
      }
      const double norm = dot(ve, ve, n);
      if (!(norm > 1e-300)) throw std::runtime_error("refine_top_eigenvectors: rank-deficient start");
      const double inv = 1.0 / std::sqrt(norm);
      for (int64_t j = 0; j < n; ++j) ve[j] *= inv;
    }
}

}  // namespace

Eigenvectors top_eigenvectors(const double* a, int64_t n, int64_t count) {
  if (n < 1 || count < 1 || count > n)
    throw std::invalid_argument("top_eigenvectors: need 1 <= count <= n, got n = " + std::to_string(n) +
                                ", count = " + std::to_string(count));
  const int ni = static_cast<int>(n), lo = ni - static_cast<int>(count) + 1, hi = ni;
  std::vector<double> work_a(a, a + n * n);  // dsyevr overwrites its input
  const double none = 0.0, abstol = 0.0;      // abstol 0: LAPACK's default accuracy
  int found = 0, info = 0;
  std::vector<double> w(static_cast<size_t>(n)), z(static_cast<size_t>(n * count));
  std::vector<int> isuppz(static_cast<size_t>(2 * count));
  const int lwork = 26 * ni, liwork = 10 * ni;  // LAPACK's documented minimums
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  // Row-major upper triangle = column-major lower triangle.
  dsyevr_("V", "I", "L", &ni, work_a.data(), &ni, &none, &none, &lo, &hi, &abstol, &found, w.data(),
          z.data(), &ni, isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1, 1);
  if (info != 0 || found != count)
    throw std::runtime_error("top_eigenvectors: LAPACK dsyevr failed (info " + std::to_string(info) + ")");
  Eigenvectors out;
  out.values.resize(static_cast<size_t>(count));
  out.vectors.resize(static_cast<size_t>(count * n));
  for (int64_t e = 0; e < count; ++e) {
    const int64_t src = count - 1 - e;  // dsyevr returns ascending order
    out.values[e] = w[src];
    std::copy(z.data() + src * n, z.data() + (src + 1) * n, out.vectors.data() + e * n);
    orient(out.vectors.data() + e * n, n);
  }
  return out;
}

Eigenvectors refine_top_eigenvectors(const double* a, int64_t n, const std::vector<double>& start,
                                     int64_t count, int steps) {
  if (n < 1 || count < 1 || count > n || static_cast<int64_t>(start.size()) != count * n)
    throw std::invalid_argument("refine_top_eigenvectors: need 1 <= count <= n and a [count][n] start, got n = " +
                                std::to_string(n) + ", count = " + std::to_string(count));
  std::vector<double> q = start, z(q.size());
  orthonormalise_rows(q, n, count);
  for (int step = 0; step < steps; ++step) {
    multiply_rows(a, n, q, count, z);
    orthonormalise_rows(z, n, count);
    q.swap(z);
  }
  multiply_rows(a, n, q, count, z);  // B = Q^T A Q, count x count
  std::vector<double> b(static_cast<size_t>(count * count));
  for (int64_t e = 0; e < count; ++e)
    for (int64_t f = 0; f < count; ++f) b[e * count + f] = dot(q.data() + e * n, z.data() + f * n, n);
  const Eigenvectors small = top_eigenvectors(b.data(), count, count);
  Eigenvectors out;
  out.values = small.values;
  out.vectors.assign(q.size(), 0.0);
  for (int64_t e = 0; e < count; ++e) {
    double* oe = out.vectors.data() + e * n;
    for (int64_t f = 0; f < count; ++f)
      for (int64_t j = 0; j < n; ++j) oe[j] += small.vectors[e * count + f] * q[f * n + j];
    orient(oe, n);
  }
  return out;
}

}  // namespace deja::core
