// reuse_bench: dense vs reuse time of one weight product (forward, dW, dX) on
// synthetic rows with realistic redundancy: each column block of a row is one
// of `--protos` prototypes (Zipf-like popularity) plus small noise, and a
// fraction of sub-vectors is exactly zero (as after ReLU). Default shape is
// CifarNet conv2 at batch 128 (N = 32768, K = 1600, M = 64).
// Run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for full-speed GEMMs.
// L and H are given as -L 20 -H 8 (cxxopts takes one-letter names as short options).
#include <cxxopts.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <sys/mman.h>
#include <vector>

#include "core/blas.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/stopwatch.h"
#include "reuse/compare.h"
#include "reuse/reuse_product.h"

using namespace deja;
using core::Tensor;

namespace {

bool g_huge_pages = false;

// With --huge-pages, ask for transparent huge pages on a fresh big tensor
// before its first touch (the experiment behind the perf notes' advice to
// madvise large buffers: strided row passes otherwise miss the TLB per row).
Tensor big_tensor(core::Shape shape) {
  Tensor t = Tensor::empty(shape);
  if (g_huge_pages) {
    const auto begin = reinterpret_cast<uintptr_t>(t.data());
    const uintptr_t end = begin + static_cast<uintptr_t>(t.numel()) * sizeof(float);
    const uintptr_t page = uintptr_t{2} << 20;
    const uintptr_t lo = (begin + page - 1) & ~(page - 1), hi = end & ~(page - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  }
  return t;
}

Tensor synthetic_rows(int64_t n, int64_t k, int64_t block, int64_t protos, double noise,
                      double zero_fraction, uint64_t seed) {
  core::Rng rng(seed, 11);
  std::vector<float> p(static_cast<size_t>(protos * k));
  for (auto& v : p) v = std::max(0.0f, rng.normal());  // ReLU-like prototypes
  Tensor x = big_tensor({n, k});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s * block < k; ++s) {
      const int64_t lo = s * block, hi = std::min(k, lo + block);
      float* dst = x.data() + i * k;
      if (rng.uniform() < zero_fraction) {
        for (int64_t j = lo; j < hi; ++j) dst[j] = 0.0f;
        continue;
      }
      // Zipf-like: index = protos^u - 1 favours small indices.
      const auto a = static_cast<int64_t>(std::pow(double(protos), rng.uniform())) - 1;
      for (int64_t j = lo; j < hi; ++j)
        dst[j] = p[a * k + j] + static_cast<float>(noise) * rng.normal();
    }
  return x;
}

bool g_cpu_time = false;

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Median wall ms, or median process CPU ms with --cpu-time (a fairer measure
// on a loaded machine when run with --threads 1).
template <class F>
double median_ms(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    core::Stopwatch w;
    const double c0 = process_cpu_seconds();
    f();
    t.push_back((g_cpu_time ? process_cpu_seconds() - c0 : w.seconds()) * 1e3);
  }
  return core::median(t);
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options opts("reuse_bench", "dense vs reuse weight product timing");
  opts.add_options()("n", "rows", cxxopts::value<int64_t>()->default_value("32768"))(
      "k", "columns", cxxopts::value<int64_t>()->default_value("1600"))(
      "m", "outputs", cxxopts::value<int64_t>()->default_value("64"))(
      "hash", "family", cxxopts::value<std::string>()->default_value("qproj"))(
      "L", "block", cxxopts::value<int64_t>()->default_value("10"))(
      "H", "bits", cxxopts::value<int64_t>()->default_value("8"))(
      "width", "qproj width", cxxopts::value<double>()->default_value("0"))(
      "dx", "cluster|exact", cxxopts::value<std::string>()->default_value("cluster"))(
      "protos", "prototypes per block", cxxopts::value<int64_t>()->default_value("300"))(
      "noise", "noise stddev", cxxopts::value<double>()->default_value("0.05"))(
      "zeros", "zero sub-vector fraction", cxxopts::value<double>()->default_value("0.1"))(
      "threads", "threads", cxxopts::value<int>()->default_value("2"))(
      "reps", "repetitions", cxxopts::value<int>()->default_value("5"))(
      "cpu-time", "report process CPU time instead of wall time")(
      "huge-pages", "madvise(MADV_HUGEPAGE) X and dX before their first touch")("h,help", "help");
  auto a = opts.parse(argc, argv);
  if (a.count("help")) {
    std::puts(opts.help().c_str());
    return 0;
  }
  const int64_t n = a["n"].as<int64_t>(), k = a["k"].as<int64_t>(), m = a["m"].as<int64_t>();
  core::set_num_threads(a["threads"].as<int>());
  reuse::ReuseSettings s;
  s.enabled = true;
  s.hash = a["hash"].as<std::string>();
  s.L = a["L"].as<int64_t>();
  s.H = a["H"].as<int64_t>();
  s.width = a["width"].as<double>();
  s.dx = a["dx"].as<std::string>();
  s.seed = 1;
  s.validate("reuse_bench");
  const int reps = a["reps"].as<int>();
  g_cpu_time = a.count("cpu-time") > 0;
  g_huge_pages = a.count("huge-pages") > 0;
  if (auto warn = core::blas_core_warning(); !warn.empty()) std::printf("WARNING: %s\n", warn.c_str());

  Tensor x = synthetic_rows(n, k, s.L, a["protos"].as<int64_t>(), a["noise"].as<double>(),
                            a["zeros"].as<double>(), 3);
  core::Rng rng(4, 1);
  Tensor w = Tensor::empty({m, k}), dy = Tensor::empty({n, m});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = rng.normal() * 0.02f;
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = rng.normal();
  Tensor y = Tensor::empty({n, m}), dw = Tensor::zeros({m, k}), dx = big_tensor({n, k});

  auto dense = core::make_dense_product();
  std::unique_ptr<core::ProductSaved> saved;
  const double d_fwd = median_ms(reps, [&] { saved = dense->forward(x, w, y, true); });
  const double d_dw = median_ms(reps, [&] { dense->backward(*saved, dy, w, dw.data(), nullptr, 0.0f); });
  const double d_dx = median_ms(reps, [&] { dense->backward(*saved, dy, w, nullptr, dx.data(), 0.0f); });

  reuse::ReuseProduct reuse(s);
  const double r_fwd = median_ms(reps, [&] { saved = reuse.forward(x, w, y, true); });
  const auto fst = reuse.stats();
  reuse.reset_stats();
  const double r_dw = median_ms(reps, [&] { reuse.backward(*saved, dy, w, dw.data(), nullptr, 0.0f); });
  const double r_dx = median_ms(reps, [&] { reuse.backward(*saved, dy, w, nullptr, dx.data(), 0.0f); });
  const double r_both = median_ms(reps, [&] { reuse.backward(*saved, dy, w, dw.data(), dx.data(), 0.0f); });
  const auto bst = reuse.stats();
  reuse::ReuseProduct fresh(s);
  auto e = reuse::compare_to_dense(fresh, x, w, dy);

  std::printf("%s  N=%lld K=%lld M=%lld threads=%d blas=%s\n", reuse.describe().c_str(),
              (long long)n, (long long)k, (long long)m, core::num_threads(),
              core::blas_core_name().c_str());
  std::printf("r_c %.4f  err_y %.4f  err_dw %.4f  err_dx %.4f\n", e.remaining_ratio, e.err_y,
              e.err_dw, e.err_dx);
  std::printf("%-8s %9s %9s %9s %9s\n", "", "fwd", "dW", "dX", "total");
  std::printf("%-8s %9.2f %9.2f %9.2f %9.2f\n", "dense", d_fwd, d_dw, d_dx, d_fwd + d_dw + d_dx);
  std::printf("%-8s %9.2f %9.2f %9.2f %9.2f  (dW+dX in one call %.2f)\n", "reuse", r_fwd, r_dw,
              r_dx, r_fwd + r_both, r_both);
  std::printf("speedup fwd+bwd %.2fx\n", (d_fwd + d_dw + d_dx) / (r_fwd + r_both));
  std::printf("forward wall ms: hash %.2f cluster %.2f products %.2f scatter %.2f\n",
              fst.hash_s / reps * 1e3, fst.cluster_s / reps * 1e3, fst.gemm_s / reps * 1e3,
              fst.scatter_s / reps * 1e3);
  std::printf("backward wall ms per call (dW, dX, both): products %.2f segment-sum+scatter %.2f\n",
              bst.gemm_s / (3 * reps) * 1e3, bst.scatter_s / (3 * reps) * 1e3);
  return 0;
}
