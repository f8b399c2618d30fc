// eltwise_bench: forward and backward wall time of the element-wise CifarNet
// layers (relu, maxpool 3x3/2 pad 1, LRN size 9) at the CifarNet activation
// shapes, plus a plain copy of the same tensor as the memory-bandwidth floor.
// Best (minimum) of the repeats, the figure least disturbed by other load; not a test (no assertions), numbers go to
// docs/perf-notes.md. Usage: eltwise_bench [--threads 2] [--repeats 15]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "core/autograd.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/parallel.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "core/stopwatch.h"
#include "layers/lrn.h"
#include "layers/pool2d.h"
#include "layers/relu.h"

using deja::core::Tensor;

namespace {

struct Timing {
  double forward_ms, backward_ms;
};

// Times y = op(x) and the op's own backward given g (called on its node
// directly: the engine's seeding of a non-scalar root is not the op's cost);
// x is a leaf, so the backward accumulates into a real input gradient.
Timing time_op(const std::function<Tensor(const Tensor&)>& op, const deja::core::Shape& shape, int repeats) {
  Tensor x = Tensor::empty(shape);
  deja::core::Rng rng(1, 1);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = rng.normal();
  deja::core::ParameterArena arena;
  arena.bind({{"x", &x}});
  Tensor probe = op(x);
  Tensor g = Tensor::full(probe.shape(), 0.5f);
  std::vector<double> fw, bw;
  for (int r = 0; r < repeats + 2; ++r) {
    deja::core::Stopwatch sw;
    Tensor y = op(x);
    const double f = sw.lap();
    y.node()->backward(g);
    const double b = sw.lap();
    if (r >= 2) {  // warm-up: page faults of fresh buffers, pool start
      fw.push_back(f * 1e3);
      bw.push_back(b * 1e3);
    }
  }
  return {*std::min_element(fw.begin(), fw.end()), *std::min_element(bw.begin(), bw.end())};
}

double time_copy(const deja::core::Shape& shape, int repeats) {
  Tensor x = Tensor::full(shape, 1.0f);
  std::vector<double> t;
  for (int r = 0; r < repeats + 2; ++r) {
    deja::core::Stopwatch sw;
    Tensor y = Tensor::empty(shape);
    float* dst = y.data();
    const float* src = x.data();
    deja::core::parallel_for(x.numel(), [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
    });
    if (r >= 2) t.push_back(sw.seconds() * 1e3);
  }
  return *std::min_element(t.begin(), t.end());
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options options("eltwise_bench", "forward/backward time of relu, maxpool and LRN");
  options.add_options()("threads", "threads", cxxopts::value<int>()->default_value("2"))(
      "repeats", "timed repeats", cxxopts::value<int>()->default_value("15"))("h,help", "help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  const int threads = args["threads"].as<int>(), repeats = args["repeats"].as<int>();
  deja::core::set_num_threads(threads);

  deja::layers::Pool2dOptions pool;
  pool.kernel = 3;
  pool.stride = 2;
  pool.padding = 1;
  deja::layers::LrnOptions lrn;
  lrn.size = 9;
  lrn.alpha = 1e-3;
  lrn.beta = 0.75;
  lrn.k = 1.0;

  std::printf("threads %d, best of %d repeats, ms\n", threads, repeats);
  std::printf("%-18s %-22s %9s %9s %9s\n", "op", "input", "forward", "backward", "total");
  for (const deja::core::Shape& shape : {deja::core::Shape{128, 64, 32, 32}, deja::core::Shape{128, 64, 16, 16}}) {
    const std::string s = deja::core::shape_to_string(shape);
    const double copy = time_copy(shape, repeats);
    std::printf("%-18s %-22s %9.2f %9s %9s\n", "copy (floor)", s.c_str(), copy, "-", "-");
    struct Case {
      const char* name;
      std::function<Tensor(const Tensor&)> op;
    };
    const Case cases[] = {
        {"relu", [](const Tensor& x) { return deja::layers::relu(x); }},
        {"maxpool 3x3/2 p1", [&](const Tensor& x) { return deja::layers::max_pool2d(x, pool); }},
        {"lrn 9", [&](const Tensor& x) { return deja::layers::local_response_norm(x, lrn); }},
    };
    for (const Case& c : cases) {
      const Timing t = time_op(c.op, shape, repeats);
      std::printf("%-18s %-22s %9.2f %9.2f %9.2f\n", c.name, s.c_str(), t.forward_ms, t.backward_ms,
                  t.forward_ms + t.backward_ms);
    }
  }
  return 0;
}
