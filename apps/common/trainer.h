// The training loop shared by every task: phases timed (data / forward /
// backward / optimizer), a progress line with ETA, validation each epoch,
// metrics.jsonl records, atomic checkpoints every N epochs and at the end,
// bit-exact resume, the adaptive reuse schedule, and a clean stop on a
// non-finite loss that leaves the last good checkpoint untouched.
#pragma once
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "apps/common/checkpoint.h"
#include "apps/common/metrics_log.h"
#include "apps/common/run_config.h"
#include "apps/common/task.h"
#include "core/lr_schedule.h"
#include "core/optimizer.h"
#include "core/product.h"
#include "layers/model.h"
#include "reuse/schedule.h"

namespace deja::apps {

// Thrown when the loss stops being finite; train exits non-zero with it.
class NonFiniteLoss : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TaskAndModel {
  std::unique_ptr<Task> task;
  std::unique_ptr<layers::Model> model;
};
// Builds the data task and the model a config describes (train, eval, bench).
TaskAndModel build_task_and_model(const RunConfig& config);

struct TrainSummary {
  int64_t epochs = 0, steps = 0;
  double test_loss = 0.0, test_accuracy = 0.0, train_loss = 0.0, train_accuracy = 0.0;
  double items_per_s = 0.0, wall_s = 0.0;
  std::string last_checkpoint;
};

class Trainer {
 public:
  Trainer(RunConfig config, std::string out_dir, bool quiet);
  ~Trainer();
  // Continues from a checkpoint: weights, optimizer, schedules, RNG streams, position.
  void resume(const Checkpoint& checkpoint);
  TrainSummary run();
  layers::Model& model() { return *model_; }
  Task& task() { return *task_; }

 private:
  void apply_schedule_events(const std::vector<reuse::ScheduleEvent>& events);
  void calibrate_schedule();
  // Per-layer product statistics of the current epoch, harvested whenever a
  // layer's product is replaced so a rung change mid-epoch loses nothing.
  struct LayerEpochStats {
    core::ProductStats totals;  // all forwards of the epoch, dense or reuse
    int64_t reuse_calls = 0;    // forwards on reuse settings, and their r_c sum
    double rc_sum = 0;
    std::string settings;  // the settings it ran with, in order ("reuse(...) -> dense")
  };
  void harvest_product_stats();
  core::Json reuse_report() const;
  void reset_product_stats();
  std::vector<LayerEpochStats> epoch_stats_;

  RunConfig config_;
  std::string out_dir_;
  bool quiet_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<layers::Model> model_;
  std::unique_ptr<core::Optimizer> optimizer_;
  std::unique_ptr<core::LrSchedule> lr_schedule_;
  std::unique_ptr<reuse::ReuseScheduler> scheduler_;
  std::unique_ptr<MetricsLog> metrics_;
  TrainingState state_;
  bool resumed_ = false;
};

}  // namespace deja::apps
