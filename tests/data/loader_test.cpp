#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "data/loader.h"

using namespace deja::data;

namespace {

// Item i: every pixel = i, label = i % 7.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t fail_at = -1) : n_(n), fail_at_(fail_at) {}
  int64_t size() const override { return n_; }
  deja::core::Shape item_shape() const override { return {1, 2, 3}; }
  int64_t num_classes() const override { return 7; }
  void read_image(int64_t index, float* out) const override {
    if (index == fail_at_) throw std::runtime_error("bad item " + std::to_string(index));
    for (int k = 0; k < 6; ++k) out[k] = static_cast<float>(index) + k * 0.001f;
  }
  int32_t label(int64_t index) const override { return static_cast<int32_t>(index % 7); }
  std::string describe() const override { return "counting"; }

 private:
  int64_t n_, fail_at_;
};

std::vector<std::vector<float>> run_epoch(Loader& loader, int64_t epoch, int64_t first = 0) {
  loader.start_epoch(epoch, first);
  std::vector<std::vector<float>> out;
  Batch b;
  int64_t expected_index = first;
  while (loader.next(b)) {
    CHECK(b.epoch == epoch);
    CHECK(b.index == expected_index++);
    out.push_back(b.images.to_vector());
  }
  return out;
}

}  // namespace

TEST_CASE("loader batches every item once per epoch with matching labels") {
  auto ds = std::make_shared<CountingDataset>(10);
  for (int prefetch : {0, 1, 3}) {
    CAPTURE(prefetch);
    LoaderOptions o;
    o.batch_size = 4;
    o.prefetch = prefetch;
    Loader loader(ds, nullptr, o);
    CHECK(loader.batches_per_epoch() == 3);
    loader.start_epoch(0);
    std::multiset<int64_t> items;
    Batch b;
    std::vector<int64_t> sizes;
    while (loader.next(b)) {
      REQUIRE(b.images.dim() == 4);
      CHECK(b.images.size(1) == 1);
      CHECK(b.images.size(2) == 2);
      CHECK(b.images.size(3) == 3);
      sizes.push_back(b.images.size(0));
      for (int64_t i = 0; i < b.images.size(0); ++i) {
        const int64_t item = static_cast<int64_t>(b.images[i * 6]);
        items.insert(item);
        CHECK(b.labels[i] == item % 7);
        CHECK(b.images[i * 6 + 5] == doctest::Approx(item + 0.005f));
      }
    }
    CHECK(sizes == std::vector<int64_t>{4, 4, 2});
    CHECK(items == std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK_FALSE(loader.next(b));  // stays at the end until repositioned
  }
}

TEST_CASE("drop_last drops the partial batch; shuffle off keeps dataset order") {
  auto ds = std::make_shared<CountingDataset>(10);
  LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  o.shuffle = false;
  Loader loader(ds, nullptr, o);
  CHECK(loader.batches_per_epoch() == 2);
  auto batches = run_epoch(loader, 3);
  REQUIRE(batches.size() == 2);
  CHECK(batches[1][0] == 4.0f);
  CHECK(batches[1][18] == 7.0f);
}

TEST_CASE("order: same seed same order, other seed or epoch other order, repositioning exact") {
  auto ds = std::make_shared<CountingDataset>(50);
  auto transform = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(1), std::make_shared<HorizontalFlip>(0.5)});
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 11;
  Loader a(ds, transform, o), b(ds, transform, o);
  auto a0 = run_epoch(a, 0), b0 = run_epoch(b, 0);
  CHECK(a0 == b0);
  auto a1 = run_epoch(a, 1);
  CHECK(a1 != a0);
  CHECK(a.epoch_order(1) != a.epoch_order(0));
  LoaderOptions o2 = o;
  o2.seed = 12;
  Loader c(ds, transform, o2);
  CHECK(run_epoch(c, 0) != a0);
  // Resume in the middle of epoch 1: exactly the tail of the uninterrupted run,
  // augmentation included, even after an interrupted read-ahead.
  Loader d(ds, transform, o);
  d.start_epoch(1);
  Batch skip;
  REQUIRE(d.next(skip));
  auto tail = run_epoch(d, 1, 4);
  REQUIRE(tail.size() == a1.size() - 4);
  for (size_t i = 0; i < tail.size(); ++i) CHECK(tail[i] == a1[i + 4]);
  // Prefetch setting does not change the data.
  LoaderOptions o3 = o;
  o3.prefetch = 0;
  Loader e(ds, transform, o3);
  CHECK(run_epoch(e, 1) == a1);
}

TEST_CASE("a read error on the worker reaches next()") {
  auto ds = std::make_shared<CountingDataset>(10, 5);
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  Loader loader(ds, nullptr, o);
  loader.start_epoch(0);
  Batch b;
  CHECK(loader.next(b));
  CHECK(loader.next(b));
  CHECK_THROWS_WITH(loader.next(b), "bad item 5");
  CHECK_THROWS_WITH(loader.start_epoch(0, 6), "Loader: cannot start epoch 0 at batch 6 (5 batches per epoch)");
  CHECK_THROWS_WITH(Loader(ds, nullptr, LoaderOptions{0}), "Loader: batch_size must be positive, got 0");
}
