#include "apps/common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/bf16_gemm.h"
#include "core/blas.h"

namespace deja::apps {

void setup_logging(const std::string& log_file, bool quiet) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(quiet ? spdlog::level::warn : spdlog::level::info);
  std::vector<spdlog::sink_ptr> sinks = {console};
  if (!log_file.empty()) {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false);
    file->set_level(spdlog::level::info);
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("deja", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::info);
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void log_blas_kernels() {
  spdlog::info("OpenBLAS kernels: {} ({}); bf16 products (lowrank \"bf16\"): {}", core::blas_core_name(),
               core::blas_config(), core::bf16_available() ? "AVX512_BF16" : "not in this build, float instead");
  std::string warning = core::blas_core_warning();
  if (!warning.empty()) spdlog::warn("{}", warning);
}

}  // namespace deja::apps
