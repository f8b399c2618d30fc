// Logging for the apps: spdlog to stderr (warnings only with --quiet) and,
// when a run folder is given, everything to <out>/train.log as well.
#pragma once
#include <string>

namespace deja::apps {

void setup_logging(const std::string& log_file, bool quiet);
// Logs which OpenBLAS kernels run and warns when an environment override
// forces narrower ones than the CPU has (design.md section 2).
void log_blas_kernels();

}  // namespace deja::apps
