#include "core/blas.h"

#include <cblas.h>

#include <cstdlib>
#include <string>

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
void openblas_set_num_threads(int);
}

namespace deja::core {

void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS would still scale C by beta; make that explicit and cheap
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta == Trans::Yes ? CblasTrans : CblasNoTrans,
              tb == Trans::Yes ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void syrk_upper(int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
                int64_t ldc) {
  if (n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), beta, c, static_cast<int>(ldc));
}

void blas_set_threads(int n) { openblas_set_num_threads(n); }

std::string blas_core_name() { return openblas_get_corename(); }
std::string blas_config() { return openblas_get_config(); }

std::string blas_core_warning() {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (!forced || !*forced) return "";
  __builtin_cpu_init();
  bool cpu_avx512 = __builtin_cpu_supports("avx512f");
  std::string core = blas_core_name();
  bool core_avx512 = core.find("SkylakeX") != std::string::npos ||
                     core.find("Cooperlake") != std::string::npos ||
                     core.find("SapphireRapids") != std::string::npos ||
                     core.find("Zen4") != std::string::npos;
  if (cpu_avx512 && !core_avx512)
    return "OPENBLAS_CORETYPE=" + std::string(forced) + " forces OpenBLAS's " + core +
           " kernels on a CPU with AVX-512: GEMMs run at about half speed. Unset "
           "OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for full speed.";
  return "";
}

}  // namespace deja::core
