// top_eigenvectors against a matrix built from known eigenpairs.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/rng.h"
#include "core/symmetric_eigen.h"

using namespace deja;

TEST_CASE("top_eigenvectors recovers known eigenpairs, largest first") {
  // A = Q diag(d) Q^T with Q from Gram-Schmidt on random vectors.
  const int64_t n = 7;
  core::Rng rng(3, 1);
  std::vector<double> q(n * n);
  for (auto& v : q) v = rng.normal();
  for (int64_t e = 0; e < n; ++e) {  // rows of q become orthonormal
    for (int64_t f = 0; f < e; ++f) {
      double dot = 0.0;
      for (int64_t j = 0; j < n; ++j) dot += q[e * n + j] * q[f * n + j];
      for (int64_t j = 0; j < n; ++j) q[e * n + j] -= dot * q[f * n + j];
    }
    double norm = 0.0;
    for (int64_t j = 0; j < n; ++j) norm += q[e * n + j] * q[e * n + j];
    for (int64_t j = 0; j < n; ++j) q[e * n + j] /= std::sqrt(norm);
  }
  const std::vector<double> d = {0.5, 9.0, -2.0, 4.0, 1.0, 0.0, 6.0};
  std::vector<double> a(n * n, 0.0);
  for (int64_t e = 0; e < n; ++e)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) a[i * n + j] += d[e] * q[e * n + i] * q[e * n + j];
  auto eig = core::top_eigenvectors(a.data(), n, 3);
  REQUIRE(eig.values.size() == 3);
  CHECK(eig.values[0] == doctest::Approx(9.0));
  CHECK(eig.values[1] == doctest::Approx(6.0));
  CHECK(eig.values[2] == doctest::Approx(4.0));
  const int64_t source[3] = {1, 6, 3};  // the rows of q with those eigenvalues
  for (int64_t e = 0; e < 3; ++e) {
    double dot = 0.0;
    int64_t biggest = 0;
    for (int64_t j = 0; j < n; ++j) {
      dot += eig.vectors[e * n + j] * q[source[e] * n + j];
      if (std::fabs(eig.vectors[e * n + j]) > std::fabs(eig.vectors[e * n + biggest])) biggest = j;
    }
    CHECK(std::fabs(dot) == doctest::Approx(1.0).epsilon(1e-9));
    CHECK(eig.vectors[e * n + biggest] > 0.0);  // sign convention
  }
  CHECK_THROWS_AS(core::top_eigenvectors(a.data(), n, 0), std::invalid_argument);
  CHECK_THROWS_AS(core::top_eigenvectors(a.data(), n, n + 1), std::invalid_argument);
}

TEST_CASE("refine_top_eigenvectors from a rough guess agrees with the full solve") {
  // Eigenvalues 10, 5, 2 and then 0.1-ish: a guess 0.3 rad off converges in a
  // few steps; zero steps (Rayleigh-Ritz on the guess alone) does not.
  // A = Q D Q^T with a dense orthogonal Q (Householder reflection I - 2 u u^T / u^T u),
  // so that every entry of A and of the iterates takes part in the products.
  const int64_t n = 6, count = 3;
  const double d[n] = {10.0, 5.0, 2.0, 0.1, 0.05, 0.01};
  const double u[n] = {1.0, -2.0, 0.5, 3.0, -1.0, 2.0};
  double uu = 0.0;
  for (double e : u) uu += e * e;
  std::vector<double> q(n * n);  // q[i * n + k]: component i of eigenvector k
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) q[i * n + k] = (i == k ? 1.0 : 0.0) - 2.0 * u[i] * u[k] / uu;
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += q[i * n + k] * d[k] * q[j * n + k];
  std::vector<double> guess(count * n, 0.0);  // eigenvector e turned 0.3 rad towards e + 3
  for (int64_t e = 0; e < count; ++e)
    for (int64_t j = 0; j < n; ++j)
      guess[e * n + j] = std::cos(0.3) * q[j * n + e] + std::sin(0.3) * q[j * n + e + 3];
  auto full = core::top_eigenvectors(a.data(), n, count);
  auto refined = core::refine_top_eigenvectors(a.data(), n, guess, count, 4);
  auto rough = core::refine_top_eigenvectors(a.data(), n, guess, count, 0);
  for (int64_t e = 0; e < count; ++e) {
    double dot = 0.0, rough_dot = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      dot += refined.vectors[e * n + j] * full.vectors[e * n + j];
      rough_dot += rough.vectors[e * n + j] * full.vectors[e * n + j];
    }
    CHECK(dot > 0.999999);  // same direction and sign
    CHECK(refined.values[e] == doctest::Approx(full.values[e]).epsilon(1e-6));
    CHECK(std::fabs(rough_dot) < 0.99);
  }
  std::vector<double> flat(count * n, 0.0);  // rank-deficient start
  CHECK_THROWS_AS(core::refine_top_eigenvectors(a.data(), n, flat, count, 2), std::runtime_error);
  CHECK_THROWS_AS(core::refine_top_eigenvectors(a.data(), n, guess, count + 1, 2), std::invalid_argument);
}
