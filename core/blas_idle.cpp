#include "core/blas_idle.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace deja::core {

void reexec_with_short_blas_spin(char** argv) {
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr) return;
  const std::string value = std::to_string(kBlasThreadTimeout);
  if (setenv("OPENBLAS_THREAD_TIMEOUT", value.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when exec failed (no /proc, say): continue as we are.
}

}  // namespace deja::core
