// The one-line training progress display: epoch, batch, loss, accuracy,
// images/s, elapsed, ETA. On a terminal it redraws one line (at most ~8 times a
// second); when stderr is not a terminal it prints plain lines every 10% of an
// epoch so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace deja::apps {

std::string format_duration(double seconds);  // "1:02:03" or "2:03"

class ProgressLine {
 public:
  ProgressLine(int64_t epochs, int64_t steps_per_epoch, bool quiet);
  void start_epoch(int64_t epoch);
  void update(int64_t step_in_epoch, double loss, double accuracy, double images_per_s,
              const std::string& extra = "");
  void set_unit(std::string unit) { unit_ = std::move(unit); }  // "img/s" by default
  void finish_epoch();  // ends the redrawn line
  double elapsed_s() const;

 private:
  std::string render(int64_t step_in_epoch, double loss, double accuracy, double images_per_s,
                     const std::string& extra) const;
  int64_t epochs_, steps_per_epoch_, epoch_ = 0;
  bool quiet_, tty_;
  int64_t last_plain_decile_ = -1;
  std::chrono::steady_clock::time_point start_, epoch_start_, last_draw_;
  bool drawn_ = false;
  std::string unit_ = "img/s";
};

}  // namespace deja::apps
