#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/blas.h"

namespace deja::core {

namespace {

thread_local bool t_inside_pool = false;

class Pool {
 public:
  ~Pool() { resize(1); }

  void resize(int n) {
    stop_workers();
    threads_ = n;
    for (int i = 1; i < n; ++i)
      workers_.emplace_back([this, i, start = generation_] { worker_loop(i, start); });
  }
  int size() const { return threads_; }

  void run(int chunks, const std::function<void(int)>& job) {
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    wake_.notify_all();
    t_inside_pool = true;
    job(0);  // the caller takes chunk 0
    t_inside_pool = false;
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  // `seen` starts at the generation current at creation, so a new worker does
  // not mistake an old job for a new one.
  void worker_loop(int index, uint64_t seen) {
    t_inside_pool = true;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        if (index >= chunks_) continue;
        job = job_;
      }
      (*job)(index);
      {
        std::lock_guard lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    quit_ = false;
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int threads_ = 1;
  int chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool quit_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(n));
  if (n != pool().size()) pool().resize(n);
  blas_set_threads(n);
}

int num_threads() { return pool().size(); }

void parallel_for_indexed(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn,
                          int64_t min_chunk) {
  if (n <= 0) return;
  int threads = pool().size();
  int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, n / std::max<int64_t>(min_chunk, 1)));
  if (chunks <= 1 || t_inside_pool) {
    fn(0, 0, n);
    return;
  }
  std::function<void(int)> job = [&](int c) {
    int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    if (begin < end) fn(c, begin, end);
  };
  pool().run(static_cast<int>(chunks), job);
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  parallel_for_indexed(n, [&](int, int64_t b, int64_t e) { fn(b, e); }, min_chunk);
}

}  // namespace deja::core
