// Image classification: batches from the data pipeline (data/pipeline.h),
// softmax cross-entropy loss, accuracy on the test split.
#pragma once
#include <memory>

#include "apps/common/task.h"
#include "data/pipeline.h"

namespace deja::apps {

class ImageTask final : public Task {
 public:
  ImageTask(const core::Json& data_cfg, uint64_t seed);
  std::string name() const override { return "image_classification"; }
  std::string item_name() const override { return "images"; }
  int64_t steps_per_epoch() const override { return train_loader_->batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first_step) override;
  bool next_batch() override;
  core::Tensor forward_loss(layers::Model& model, int64_t* correct, int64_t* items) override;
  EvalResult evaluate(layers::Model& model) override;
  core::Shape input_shape() const override { return pipeline_.input_shape; }
  int64_t batch_size() const override { return pipeline_.train_options.batch_size; }
  std::vector<std::string> notes() const override;
  const data::DataPipeline& pipeline() const { return pipeline_; }
  const data::Batch& batch() const { return batch_; }

 private:
  data::DataPipeline pipeline_;
  std::unique_ptr<data::Loader> train_loader_, test_loader_;
  data::Batch batch_;
};

}  // namespace deja::apps
