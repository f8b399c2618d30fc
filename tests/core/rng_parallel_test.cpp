#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "core/blas.h"
#include "core/buffer_cache.h"
#include "core/parallel.h"
#include "core/rng.h"

using namespace deja::core;

TEST_CASE("rng streams are reproducible, independent and restorable") {
  Rng a(42, 1), b(42, 1), c(42, 2);
  std::vector<uint32_t> va, vb, vc;
  for (int i = 0; i < 8; ++i) {
    va.push_back(a.next_u32());
    vb.push_back(b.next_u32());
    vc.push_back(c.next_u32());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  Rng::State s = a.state();
  uint32_t next = a.next_u32();
  a.set_state(s);
  CHECK(a.next_u32() == next);
  double mean = 0, var = 0;
  Rng g(7);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    float x = g.normal();
    mean += x;
    var += x * x;
  }
  mean /= n;
  var = var / n - mean * mean;
  CHECK(mean == doctest::Approx(0.0).epsilon(0.03).scale(1.0));
  CHECK(var == doctest::Approx(1.0).epsilon(0.05));
  for (int i = 0; i < 1000; ++i) CHECK(g.below(7) < 7u);
}

TEST_CASE("parallel_for covers the range exactly once with any thread count") {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(1000, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) CHECK(h.load() == 1);
    CHECK(num_threads() == threads);
  }
  set_num_threads(1);
  CHECK_THROWS_WITH(set_num_threads(0), "threads must be >= 1, got 0");
}

TEST_CASE("gemm wrapper computes row-major products with transposes") {
  // A = [[1,2],[3,4]], B = [[5,6],[7,8]]
  std::vector<float> a{1, 2, 3, 4}, b{5, 6, 7, 8}, c(4, 1.0f);
  gemm(Trans::No, Trans::No, 2, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{19, 22, 43, 50});
  gemm(Trans::Yes, Trans::No, 2, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 1.0f, c.data(), 2);
  // A^T B = [[26,30],[38,44]], added to C
  CHECK(c == std::vector<float>{45, 52, 81, 94});
  CHECK_FALSE(blas_core_name().empty());
}

TEST_CASE("syrk_upper writes A A^T's upper triangle and leaves the lower one alone") {
  // A = [[1,2,0],[0,1,3]] with lda 3 -> A A^T = [[5,2],[2,10]]; C's lower entry is a sentinel.
  std::vector<float> a{1, 2, 0, 0, 1, 3}, c{0, 0, -7, 0};
  syrk_upper(2, 3, 1.0f, a.data(), 3, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{5, 2, -7, 10});
  syrk_upper(2, 3, 2.0f, a.data(), 3, 1.0f, c.data(), 2);  // C += 2 A A^T, upper only
  CHECK(c == std::vector<float>{15, 6, -7, 30});
  syrk_upper(2, 0, 1.0f, a.data(), 3, 0.5f, c.data(), 2);  // empty inner size: only the scaling
  CHECK(c == std::vector<float>{7.5f, 3, -7, 15});
}

TEST_CASE("buffer cache: a freed large buffer is handed to the next request of its size") {
  deja::core::trim_buffer_cache();
  const size_t big = size_t{8} << 20;
  void* a = deja::core::acquire_buffer(big);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  deja::core::release_buffer(a, big);
  CHECK(deja::core::buffer_cache_stats().cached_bytes == big);
  void* b = deja::core::acquire_buffer(big);
  CHECK(b == a);
  CHECK(deja::core::buffer_cache_stats().cached_bytes == 0);
  void* c = deja::core::acquire_buffer(big + (size_t{1} << 20));  // another size: a new block
  CHECK(c != a);
  deja::core::release_buffer(b, big);
  deja::core::release_buffer(c, big + (size_t{1} << 20));
  // Small buffers are not cached.
  void* s = deja::core::acquire_buffer(256);
  deja::core::release_buffer(s, 256);
  CHECK(deja::core::buffer_cache_stats().cached_bytes == 2 * big + (size_t{1} << 20));
  deja::core::trim_buffer_cache();
  CHECK(deja::core::buffer_cache_stats().cached_bytes == 0);
}
