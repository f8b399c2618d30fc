// make_data_pipeline: everything the config's "data" section describes, built
// and checked: datasets (with pad_to / resize / subset applied), the train and
// test transforms (augmentation, normalisation with given or computed
// mean/std) and loader options. Keys and defaults are listed in pipeline.cpp;
// unknown keys are errors naming the key. `resolved` is the section with every
// default filled in and computed values (mean/std, path) written out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"

namespace deja::data {

struct DataPipeline {
  std::shared_ptr<const Dataset> train, test;
  std::shared_ptr<const Transform> train_transform, test_transform;
  LoaderOptions train_options, test_options;
  core::Shape input_shape;
  int64_t num_classes = 0;
  core::Json resolved;
  std::vector<std::string> notes;  // e.g. computed mean/std, class list
};

DataPipeline make_data_pipeline(const core::Json& cfg, uint64_t seed, const std::string& where = "data");

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* kFashionMnistDefaultPath = "/usr/share/datasets/fashion-mnist";

// Per-channel mean and population standard deviation over every pixel of
// every image (summed in double, in a fixed order, so the result does not
// depend on the thread count).
void compute_channel_stats(const Dataset& dataset, std::vector<float>& mean, std::vector<float>& std);

}  // namespace deja::data
