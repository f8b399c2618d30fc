#include "apps/common/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace deja::apps {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressLine::ProgressLine(int64_t epochs, int64_t steps_per_epoch, bool quiet)
    : epochs_(epochs), steps_per_epoch_(steps_per_epoch), quiet_(quiet), tty_(isatty(2) != 0) {
  start_ = epoch_start_ = last_draw_ = std::chrono::steady_clock::now();
}

double ProgressLine::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  epoch_start_ = std::chrono::steady_clock::now();
  last_plain_decile_ = -1;
  drawn_ = false;
}

std::string ProgressLine::render(int64_t step, double loss, double accuracy, double images_per_s,
                                 const std::string& extra) const {
  double epoch_elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  double per_step = step > 0 ? epoch_elapsed / step : 0.0;
  double remaining_steps = static_cast<double>(steps_per_epoch_ - step) +
                           static_cast<double>(epochs_ - epoch_ - 1) * steps_per_epoch_;
  std::string eta = step > 0 ? format_duration(per_step * remaining_steps) : "?";
  int width = 20;
  int filled = steps_per_epoch_ ? static_cast<int>(width * step / steps_per_epoch_) : width;
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  return fmt::format("epoch {}/{} [{}] {}/{} loss {:.4f} acc {:.3f} | {:.0f} {} | {} | ETA {}{}",
                     epoch_ + 1, epochs_, bar, step, steps_per_epoch_, loss, accuracy, images_per_s, unit_,
                     format_duration(elapsed_s()), eta, extra.empty() ? "" : " | " + extra);
}

void ProgressLine::update(int64_t step, double loss, double accuracy, double images_per_s,
                          const std::string& extra) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    bool last = step == steps_per_epoch_;
    if (!last && std::chrono::duration<double>(now - last_draw_).count() < 0.12) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s", render(step, loss, accuracy, images_per_s, extra).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    int64_t decile = steps_per_epoch_ ? step * 10 / steps_per_epoch_ : 10;
    if (decile == last_plain_decile_) return;
    last_plain_decile_ = decile;
    std::fprintf(stderr, "%s\n", render(step, loss, accuracy, images_per_s, extra).c_str());
  }
}

void ProgressLine::finish_epoch() {
  if (!quiet_ && tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace deja::apps
