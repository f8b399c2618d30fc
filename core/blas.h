// The one narrow door to BLAS: row-major sgemm (and ssyrk) over OpenBLAS, its thread count,
// and what kernels it runs (a forced narrower core type halves GEMM speed on
// AVX-512 machines: design.md section 2; we report it, never override it).
#pragma once

#include <cstdint>
#include <string>

namespace deja::core {

enum class Trans { No, Yes };

// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, all row-major.
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// C[n x n] = alpha * A A^T + beta * C for A [n x k] row-major; only the upper
// triangle of C (j >= i) is written: half the work of gemm(A, A^T).
void syrk_upper(int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
                int64_t ldc);

void blas_set_threads(int n);
std::string blas_core_name();  // openblas_get_corename(), e.g. "Cooperlake" or "Haswell"
std::string blas_config();     // openblas_get_config()
// Non-empty when OPENBLAS_CORETYPE forces kernels narrower than the CPU supports:
// a warning sentence for logs.
std::string blas_core_warning();

}  // namespace deja::core
