// While our pool runs many small GEMMs at once (one per thread), OpenBLAS must
// not start its own threads for each: this scope makes it single-threaded and
// restores the process-wide count (core::num_threads()) on exit. The two pools
// then never run at once (design.md section 2).
#pragma once

#include "core/blas.h"
#include "core/parallel.h"

namespace deja::core {

class SerialBlasScope {
 public:
  SerialBlasScope() { blas_set_threads(1); }
  ~SerialBlasScope() { blas_set_threads(num_threads()); }
  SerialBlasScope(const SerialBlasScope&) = delete;
  SerialBlasScope& operator=(const SerialBlasScope&) = delete;
};

}  // namespace deja::core
