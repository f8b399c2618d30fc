// metrics.jsonl: one JSON object per line (per epoch, and every N steps if
// configured), appended and flushed at once so a crash loses nothing written.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace deja::apps {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  // throws naming the path if unwritable
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace deja::apps
