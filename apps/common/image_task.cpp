#include "apps/common/image_task.h"

#include "core/autograd.h"
#include "core/stopwatch.h"
#include "layers/cross_entropy.h"

namespace deja::apps {

ImageTask::ImageTask(const core::Json& data_cfg, uint64_t seed)
    : pipeline_(data::make_data_pipeline(data_cfg, seed)) {
  train_loader_ = std::make_unique<data::Loader>(pipeline_.train, pipeline_.train_transform,
                                                 pipeline_.train_options);
  test_loader_ = std::make_unique<data::Loader>(pipeline_.test, pipeline_.test_transform,
                                                pipeline_.test_options);
}

std::vector<std::string> ImageTask::notes() const {
  std::vector<std::string> n = {"train: " + pipeline_.train->describe(),
                                "test: " + pipeline_.test->describe()};
  n.insert(n.end(), pipeline_.notes.begin(), pipeline_.notes.end());
  return n;
}

void ImageTask::start_epoch(int64_t epoch, int64_t first_step) {
  train_loader_->start_epoch(epoch, first_step);
}

bool ImageTask::next_batch() { return train_loader_->next(batch_); }

core::Tensor ImageTask::forward_loss(layers::Model& model, int64_t* correct, int64_t* items) {
  core::Tensor logits = model.forward(batch_.images);
  *items = static_cast<int64_t>(batch_.labels.size());
  return layers::softmax_cross_entropy(logits, batch_.labels, correct);
}

EvalResult ImageTask::evaluate(layers::Model& model) {
  core::Stopwatch watch;
  core::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct_sum = 0;
  data::Batch b;
  test_loader_->start_epoch(0);
  while (test_loader_->next(b)) {
    int64_t correct = 0;
    core::Tensor logits = model.forward(b.images);
    core::Tensor loss = layers::softmax_cross_entropy(logits, b.labels, &correct);
    auto n = static_cast<int64_t>(b.labels.size());
    loss_sum += static_cast<double>(loss[0]) * static_cast<double>(n);
    correct_sum += correct;
    r.items += n;
  }
  model.train(was_training);
  if (r.items > 0) {
    r.loss = loss_sum / static_cast<double>(r.items);
    r.accuracy = static_cast<double>(correct_sum) / static_cast<double>(r.items);
  }
  r.seconds = watch.seconds();
  return r;
}

}  // namespace deja::apps
