// Loader: one worker thread fills a queue of at most `prefetch` batches for the
// current (epoch, position). start_epoch bumps a generation counter so a batch
// being built for an old position is dropped instead of delivered.
#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "core/rng.h"

namespace deja::data {

namespace {

// SplitMix64 finaliser: spreads (seed, epoch, batch) over the 64-bit seed
// space so neighbouring epochs/batches get unrelated generator states.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

core::Rng stream_rng(uint64_t seed, core::RngPurpose purpose, int64_t epoch, int64_t batch) {
  uint64_t s = mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(batch));
  return core::Rng(s, static_cast<uint64_t>(purpose));
}

}  // namespace

Loader::Loader(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Transform> transform,
               const LoaderOptions& options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(options) {
  if (!dataset_) throw std::invalid_argument("Loader: null dataset");
  if (options_.batch_size <= 0)
    throw std::invalid_argument("Loader: batch_size must be positive, got " + std::to_string(options_.batch_size));
  if (options_.prefetch < 0)
    throw std::invalid_argument("Loader: prefetch must be >= 0, got " + std::to_string(options_.prefetch));
  in_shape_ = dataset_->item_shape();
  out_shape_ = transform_ ? transform_->output_shape(in_shape_) : in_shape_;
  if (options_.prefetch > 0) worker_ = std::thread([this] { worker_loop(); });
}

Loader::~Loader() { stop_worker(); }

void Loader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

const Dataset& Loader::dataset() const { return *dataset_; }

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!options_.shuffle) return order;
  // Fisher-Yates driven by a generator that depends on (seed, epoch) only.
  core::Rng rng = stream_rng(options_.seed, core::RngPurpose::Data, epoch, -1);
  for (size_t i = order.size(); i > 1; --i) {
    size_t j = rng.below(static_cast<uint32_t>(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

void Loader::build_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t index, Batch& out) const {
  const int64_t begin = index * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  const int64_t count = end - begin;
  const int64_t in_numel = core::shape_numel(in_shape_), out_numel = core::shape_numel(out_shape_);
  core::Shape shape{count};
  shape.insert(shape.end(), out_shape_.begin(), out_shape_.end());
  out.images = core::Tensor::empty(shape);
  out.labels.resize(static_cast<size_t>(count));
  out.epoch = epoch;
  out.index = index;
  // One generator per batch, consumed image by image in batch order.
  core::Rng rng = stream_rng(options_.seed, core::RngPurpose::Augment, epoch, index);
  std::vector<float> scratch(transform_ ? static_cast<size_t>(in_numel) : 0);
  float* dst = out.images.data();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t item = order[static_cast<size_t>(begin + i)];
    if (transform_) {
      dataset_->read_image(item, scratch.data());
      transform_->apply(scratch.data(), in_shape_, dst + i * out_numel, rng);
    } else {
      dataset_->read_image(item, dst + i * out_numel);
    }
    out.labels[static_cast<size_t>(i)] = dataset_->label(item);
  }
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  const int64_t batches = batches_per_epoch();
  if (epoch < 0 || first_batch < 0 || first_batch > batches)
    throw std::invalid_argument("Loader: cannot start epoch " + std::to_string(epoch) + " at batch " +
                                std::to_string(first_batch) + " (" + std::to_string(batches) + " batches per epoch)");
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    started_ = true;
    epoch_ = epoch;
    produce_next_ = consume_next_ = first_batch;
    end_ = batches;
    order_ = std::move(order);
    ready_.clear();
    error_ = nullptr;
  }
  cv_.notify_all();
}

bool Loader::next(Batch& out) {
  bool need_start;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    need_start = !started_;
  }
  if (need_start) start_epoch(0);

  if (options_.prefetch == 0) {
    if (consume_next_ >= end_) return false;
    build_batch(*order_, epoch_, consume_next_, out);
    ++consume_next_;
    return true;
  }

  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return error_ || consume_next_ >= end_ || !ready_.empty(); });
  if (ready_.empty() && error_) {  // batches built before the failure are delivered first
    std::exception_ptr e = error_;
    error_ = nullptr;
    // The failed batch is not retried by itself: the caller repositions.
    consume_next_ = produce_next_ = end_;
    std::rethrow_exception(e);
  }
  if (ready_.empty()) return false;  // end of the epoch
  out = std::move(ready_.front());
  ready_.pop_front();
  ++consume_next_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] {
      return stop_ || (started_ && !error_ && produce_next_ < end_ &&
                       static_cast<int64_t>(ready_.size()) < options_.prefetch);
    });
    if (stop_) return;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_, index = produce_next_;
    std::shared_ptr<const std::vector<int64_t>> order = order_;
    lock.unlock();
    Batch batch;
    std::exception_ptr error;
    try {
      build_batch(*order, epoch, index, batch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (generation != generation_) continue;  // repositioned meanwhile: drop it
    if (error) {
      error_ = error;
    } else {
      ready_.push_back(std::move(batch));
      ++produce_next_;
    }
    cv_.notify_all();
  }
}

}  // namespace deja::data
