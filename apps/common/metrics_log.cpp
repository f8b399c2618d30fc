#include "apps/common/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace deja::apps {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
}

void MetricsLog::append(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error(path_ + ": write failed");
}

}  // namespace deja::apps
