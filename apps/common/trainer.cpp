#include "apps/common/trainer.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "apps/common/image_task.h"
#include "apps/common/lm_task.h"
#include "apps/common/progress.h"
#include "apps/common/recording_product.h"
#include "core/autograd.h"
#include "core/grad_clip.h"
#include "core/parallel.h"
#include "core/stopwatch.h"
#include "layers/builder.h"

namespace deja::apps {

TaskAndModel build_task_and_model(const RunConfig& config) {
  TaskAndModel tm;
  const core::Json& raw = config.raw;
  std::string task = raw.value("task", std::string("image_classification"));
  if (task == "language_model") {
    auto lm = std::make_unique<LmTask>(raw["data"], config.seed);
    tm.model = lm->build_model(raw["model"], config.seed);
    tm.task = std::move(lm);
    return tm;
  }
  if (task != "image_classification")
    throw std::invalid_argument(config.source + ": key 'task' must be \"image_classification\" or "
                                "\"language_model\", got \"" + task + "\"");
  auto image = std::make_unique<ImageTask>(raw["data"], config.seed);
  tm.model = layers::build_model(raw["model"], config.seed);
  const core::Shape& data_shape = image->input_shape();
  if (tm.model->input_shape() != data_shape)
    throw std::invalid_argument("model: key 'input' is " + core::shape_to_string(tm.model->input_shape()) +
                                " but the data gives images of " + core::shape_to_string(data_shape) +
                                " (set data.pad_to / data.resize or model.input)");
  tm.task = std::move(image);
  return tm;
}

Trainer::Trainer(RunConfig config, std::string out_dir, bool quiet)
    : config_(std::move(config)), out_dir_(std::move(out_dir)), quiet_(quiet) {
  core::set_num_threads(config_.threads);
  auto tm = build_task_and_model(config_);
  task_ = std::move(tm.task);
  model_ = std::move(tm.model);
  const core::Json& raw = config_.raw;
  optimizer_ = core::make_optimizer(raw["optimizer"], model_->parameters().size());
  lr_schedule_ = std::make_unique<core::LrSchedule>(
      raw.value("lr_schedule", core::Json{{"type", "constant"}}),
      core::optimizer_base_lr(raw["optimizer"]), config_.epochs);
  if (raw.contains("reuse_schedule")) {
    std::vector<std::string> names;
    std::vector<reuse::ReuseSettings> base;
    for (auto& l : model_->reuse_layers()) {
      names.push_back(l.name);
      base.push_back(l.base);
    }
    scheduler_ = std::make_unique<reuse::ReuseScheduler>(raw["reuse_schedule"], names, base,
                                                         config_.epochs);
    // A scheduled layer starts on its ladder's first rung, not on the layer's
    // own "reuse" settings (they differ when the ladder is written apart from
    // them); automatic ladders are applied once calibrated, resumed runs on
    // the checkpoint's rung.
    for (size_t i = 0; i < scheduler_->layer_count(); ++i)
      if (scheduler_->scheduled(i) && !scheduler_->needs_calibration(i))
        model_->apply_reuse(i, scheduler_->current(i));
  }
  metrics_ = std::make_unique<MetricsLog>(out_dir_ + "/metrics.jsonl");
}

Trainer::~Trainer() = default;

void Trainer::resume(const Checkpoint& ckpt) {
  load_model_weights(ckpt, *model_);
  load_optimizer_state(ckpt, *optimizer_);
  load_random_streams(ckpt, *model_);
  lr_schedule_->load_state(ckpt.state.lr_schedule);
  if (scheduler_) {
    if (ckpt.state.reuse_schedule.is_null())
      throw std::runtime_error("checkpoint '" + ckpt.file.path() +
                               "': has no reuse schedule state but the config has a reuse_schedule");
    scheduler_->load_state(ckpt.state.reuse_schedule);
    for (size_t i = 0; i < scheduler_->layer_count(); ++i)
      if (scheduler_->scheduled(i)) model_->apply_reuse(i, scheduler_->current(i));
  }
  state_ = ckpt.state;
  resumed_ = true;
}

void Trainer::apply_schedule_events(const std::vector<reuse::ScheduleEvent>& events) {
  if (!events.empty()) harvest_product_stats();
  for (const auto& e : events) {
    for (size_t i = 0; i < scheduler_->layer_count(); ++i)
      if (scheduler_->layer_name(i) == e.layer) model_->apply_reuse(i, scheduler_->current(i));
    spdlog::info("reuse schedule: {} rung {} -> {} ({}) at epoch {} step {}: {}", e.layer, e.rung_from,
                 e.rung_to, e.reason, e.epoch + 1, e.step, e.settings);
    metrics_->append({{"kind", "reuse_event"}, {"epoch", e.epoch + 1}, {"step", e.step}, {"layer", e.layer},
                      {"from", e.rung_from}, {"to", e.rung_to}, {"reason", e.reason},
                      {"settings", e.settings}});
  }
}

// Automatic ladders need real rows: run one training batch through recording
// products, hand each layer's X and W to the scheduler, then restore.
void Trainer::calibrate_schedule() {
  if (!scheduler_) return;
  bool any = false;
  for (size_t i = 0; i < scheduler_->layer_count(); ++i) any = any || scheduler_->needs_calibration(i);
  if (!any) return;
  core::Stopwatch watch;
  auto& layers = model_->reuse_layers();
  std::vector<std::shared_ptr<RecordingProduct>> recorders;
  for (auto& l : layers) {
    auto rec = std::make_shared<RecordingProduct>(core::make_dense_product());
    l.module->set_product(rec);
    recorders.push_back(rec);
  }
  task_->start_epoch(0, 0);
  if (!task_->next_batch()) throw std::runtime_error("calibration: the training split is empty");
  {
    core::NoGradGuard no_grad;
    int64_t correct = 0, items = 0;
    task_->forward_loss(*model_, &correct, &items);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (scheduler_->needs_calibration(i))
      scheduler_->calibrate(i, recorders[i]->last_x(), recorders[i]->last_w());
    layers[i].module->set_product(core::make_dense_product());
    model_->apply_reuse(i, scheduler_->scheduled(i) ? scheduler_->current(i) : layers[i].base);
  }
  spdlog::info("reuse schedule calibrated on one batch in {:.1f} s", watch.seconds());
}

void Trainer::reset_product_stats() {
  epoch_stats_.assign(model_->reuse_layers().size(), LayerEpochStats());
  for (auto& l : model_->reuse_layers())
    if (auto* p = l.module->product()) p->reset_stats();
}

void Trainer::harvest_product_stats() {
  auto& layers = model_->reuse_layers();
  if (epoch_stats_.size() != layers.size()) epoch_stats_.assign(layers.size(), LayerEpochStats());
  for (size_t i = 0; i < layers.size(); ++i) {
    core::Product* p = layers[i].module->product();
    if (!p) continue;
    const auto& s = p->stats();
    auto& acc = epoch_stats_[i];
    if (s.forward_calls > 0) {
      acc.totals += s;
      if (p->is_reuse()) {
        acc.reuse_calls += s.forward_calls;
        acc.rc_sum += s.remaining_ratio_sum;
      }
      std::string d = p->describe();
      if (acc.settings.size() < d.size() || acc.settings.compare(acc.settings.size() - d.size(), d.size(), d) != 0)
        acc.settings += (acc.settings.empty() ? "" : " -> ") + d;
    }
    p->reset_stats();
  }
}

// r_c is the mean over the epoch's reuse forwards (1 when the layer ran dense
// all epoch); "settings" lists what the layer ran with, in order.
core::Json Trainer::reuse_report() const {
  core::Json r = core::Json::object();
  const auto& layers = model_->reuse_layers();
  for (size_t i = 0; i < layers.size() && i < epoch_stats_.size(); ++i) {
    const auto& a = epoch_stats_[i];
    const core::ProductStats& t = a.totals;
    r[layers[i].name] = {
        {"settings", a.settings.empty() ? "dense" : a.settings},
        {"r_c", a.reuse_calls ? a.rc_sum / static_cast<double>(a.reuse_calls) : 1.0},
        {"reuse_fraction", t.forward_calls ? static_cast<double>(a.reuse_calls) / t.forward_calls : 0.0},
        {"hash_s", t.hash_s},
        {"cluster_s", t.cluster_s},
        {"gemm_s", t.gemm_s},
        {"scatter_s", t.scatter_s},
        {"lowering_s", t.lowering_s},
        {"forward_s", t.forward_s},
        {"backward_s", t.backward_s}};
  }
  return r;
}

TrainSummary Trainer::run() {
  core::Stopwatch run_watch;
  const double wall_before = state_.wall_s;
  const int64_t steps_per_epoch = task_->steps_per_epoch();
  if (steps_per_epoch < 1) throw std::runtime_error("data: the training split gives no batches");
  if (!resumed_) {
    state_.epochs_done = 0;
    state_.step = 0;
    calibrate_schedule();
  }
  if (scheduler_) spdlog::info("reuse schedule:\n{}", scheduler_->describe());
  TrainSummary summary;
  if (state_.epochs_done >= config_.epochs) {
    spdlog::warn("nothing to train: the checkpoint has {} epochs done and the config asks for {}",
                 state_.epochs_done, config_.epochs);
    summary.epochs = state_.epochs_done;
    summary.steps = state_.step;
    return summary;
  }
  ProgressLine progress(config_.epochs, steps_per_epoch, quiet_);
  if (task_->item_name() == "tokens") progress.set_unit("tok/s");
  core::ParameterArena& params = model_->parameters();
  for (int64_t epoch = state_.epochs_done; epoch < config_.epochs; ++epoch) {
    if (scheduler_) apply_schedule_events(scheduler_->on_epoch_start(epoch));
    model_->train();
    reset_product_stats();
    task_->start_epoch(epoch, 0);
    progress.start_epoch(epoch);
    double data_s = 0, forward_s = 0, backward_s = 0, optimizer_s = 0;
    double loss_sum = 0;
    int64_t correct_sum = 0, items_sum = 0, step_in_epoch = 0;
    double lr = 0;
    core::Stopwatch phase;
    core::Stopwatch epoch_watch;
    while (true) {
      phase.restart();
      bool have = task_->next_batch();
      data_s += phase.lap();
      if (!have) break;
      params.zero_grad();
      int64_t correct = 0, items = 0;
      core::Tensor loss = task_->forward_loss(*model_, &correct, &items);
      double loss_value = loss[0];
      forward_s += phase.lap();
      if (!std::isfinite(loss_value)) {
        progress.finish_epoch();
        throw NonFiniteLoss(fmt::format(
            "loss is {} at step {} (epoch {}, batch {}): training stopped; the last good checkpoint in "
            "'{}' is untouched (try a lower learning rate or grad_clip)",
            loss_value, state_.step + 1, epoch + 1, step_in_epoch + 1, out_dir_));
      }
      core::backward(loss);
      backward_s += phase.lap();
      if (config_.grad_clip > 0) core::clip_grad_norm(params, config_.grad_clip);
      lr = lr_schedule_->lr(epoch, step_in_epoch, steps_per_epoch);
      optimizer_->step(params, lr);
      optimizer_s += phase.lap();
      ++state_.step;
      ++step_in_epoch;
      loss_sum += loss_value * static_cast<double>(items);
      correct_sum += correct;
      items_sum += items;
      double elapsed = epoch_watch.seconds();
      double rate = elapsed > 0 ? static_cast<double>(items_sum) / elapsed : 0.0;
      progress.update(step_in_epoch, loss_sum / static_cast<double>(items_sum),
                      static_cast<double>(correct_sum) / static_cast<double>(items_sum), rate);
      if (config_.log_every_steps > 0 && state_.step % config_.log_every_steps == 0)
        metrics_->append({{"kind", "step"}, {"epoch", epoch + 1}, {"step", state_.step},
                          {"loss", loss_value}, {"lr", lr}, {"items_per_s", rate},
                          {"wall_s", wall_before + run_watch.seconds()}});
      if (scheduler_) apply_schedule_events(scheduler_->on_step(epoch, state_.step, loss_value));
    }
    progress.finish_epoch();
    const double train_s = epoch_watch.seconds();
    EvalResult train_result;
    train_result.items = items_sum;
    train_result.loss = items_sum ? loss_sum / static_cast<double>(items_sum) : 0.0;
    train_result.accuracy = items_sum ? static_cast<double>(correct_sum) / static_cast<double>(items_sum) : 0.0;
    harvest_product_stats();
    core::Json reuse = reuse_report();
    EvalResult test = task_->evaluate(*model_);
    lr_schedule_->on_epoch_end(epoch, test.loss);
    state_.epochs_done = epoch + 1;
    state_.wall_s = wall_before + run_watch.seconds();
    const double rate = train_s > 0 ? static_cast<double>(items_sum) / train_s : 0.0;
    core::Json record = {{"kind", "epoch"},
                         {"epoch", epoch + 1},
                         {"step", state_.step},
                         {"train_loss", train_result.loss},
                         {"train_accuracy", train_result.accuracy},
                         {"test_loss", test.loss},
                         {"test_accuracy", test.accuracy},
                         {"lr", lr},
                         {task_->item_name() + "_per_s", rate},
                         {"images_per_s", rate},
                         {"epoch_s", train_s},
                         {"eval_s", test.seconds},
                         {"wall_s", state_.wall_s},
                         {"time", {{"data_s", data_s}, {"forward_s", forward_s},
                                   {"backward_s", backward_s}, {"optimizer_s", optimizer_s}}},
                         {"reuse", reuse}};
    if (task_->item_name() != "images") record.erase("images_per_s");
    task_->add_epoch_fields(record, train_result, test);
    metrics_->append(record);
    spdlog::info("epoch {}/{}: train loss {:.4f} acc {:.4f} | test loss {:.4f} acc {:.4f} | {:.0f} {}/s | "
                 "{:.1f} s (data {:.1f}, forward {:.1f}, backward {:.1f}, optimizer {:.1f})",
                 epoch + 1, config_.epochs, train_result.loss, train_result.accuracy, test.loss,
                 test.accuracy, rate, task_->item_name(), train_s, data_s, forward_s, backward_s,
                 optimizer_s);
    summary.train_loss = train_result.loss;
    summary.train_accuracy = train_result.accuracy;
    summary.test_loss = test.loss;
    summary.test_accuracy = test.accuracy;
    summary.items_per_s = rate;
    bool last = epoch + 1 == config_.epochs;
    if (last || (config_.checkpoint_every_epochs > 0 && (epoch + 1) % config_.checkpoint_every_epochs == 0)) {
      state_.optimizer = optimizer_->state_json();
      state_.lr_schedule = lr_schedule_->state();
      state_.reuse_schedule = scheduler_ ? scheduler_->state() : core::Json();
      state_.rngs = save_random_streams(*model_);
      summary.last_checkpoint =
          save_checkpoint(out_dir_, *model_, optimizer_.get(), state_, config_.raw, config_.keep_last);
      spdlog::info("checkpoint: {}", summary.last_checkpoint);
    }
  }
  summary.epochs = state_.epochs_done;
  summary.steps = state_.step;
  summary.wall_s = state_.wall_s;
  return summary;
}

}  // namespace deja::apps
