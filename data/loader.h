// Loader: turns a Dataset into shuffled NCHW batches on one background thread.
// The order of an epoch is a function of (seed, epoch) only and the
// augmentation of a batch a function of (seed, epoch, batch index) only, so
// start_epoch(e, b) reproduces exactly the batches an uninterrupted run would
// see from (e, b) on. Up to `prefetch` batches are built ahead; prefetch 0
// builds each batch inside next() (no thread). A read error on the worker is
// rethrown by next().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace deja::data {

struct Batch {
  core::Tensor images;  // [B, C, H, W]
  std::vector<int32_t> labels;
  int64_t epoch = 0, index = 0;
};

struct LoaderOptions {
  int64_t batch_size = 128;
  // augment is informational (the transform passed to the Loader carries the
  // augmentation); shuffle off keeps dataset order.
  bool shuffle = true, drop_last = false, augment = false;
  uint64_t seed = 1;
  int prefetch = 2;
};

class Loader {
 public:
  // transform may be null (images pass unchanged).
  Loader(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Transform> transform,
         const LoaderOptions& options);
  ~Loader();  // joins the worker
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  // Positions the loader; the next next() returns that batch. next() before
  // any start_epoch starts epoch 0.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  bool next(Batch& out);  // false at the end of the epoch
  const Dataset& dataset() const;
  core::Shape output_item_shape() const { return out_shape_; }

  // The sample order of an epoch (a permutation of [0, size) or the identity).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  void build_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t index, Batch& out) const;
  void worker_loop();
  void stop_worker();

  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<const Transform> transform_;
  LoaderOptions options_;
  core::Shape in_shape_, out_shape_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread worker_;
  bool stop_ = false, started_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch: stale batches are dropped
  int64_t epoch_ = 0, produce_next_ = 0, consume_next_ = 0, end_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
};

}  // namespace deja::data
