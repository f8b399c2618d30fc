#include "core/symmetric_eigen.h"

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
    const double* v = z.data() + src * n;
    int64_t biggest = 0;
    for (int64_t j = 1; j < n; ++j)
      if (std::fabs(v[j]) > std::fabs(v[biggest])) biggest = j;
    const double sign = v[biggest] < 0.0 ? -1.0 : 1.0;
    out.values[e] = w[src];
    for (int64_t j = 0; j < n; ++j) out.vectors[e * n + j] = sign * v[j];
  }
  return out;
}

}  // namespace deja::core
