// conv_bench: dense conv2d forward+backward (im2col, the three GEMMs, col2im,
// NCHW transposes, bias, autograd) against the bare cblas_sgemm calls of the
// same shapes (Y = X.W^T, dW = dY^T.X, dX = dY.W), at CifarNet conv2 and VGG
// conv3 (issue 2 item 4: the layer must reach >= 60% of the bare GEMMs'
// throughput; VGG conv3's 3x3 / pad 1 shape runs Winograd on the direct path,
// fewer multiplies than the bare GEMMs, so its ratio passes 100%). Prints
// medians over repeats. Not a test: no assertions. Report
// figures taken with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.
// With --reuse JSON the conv runs that reuse product instead (CifarNet conv2
// only, on ReLU'd inputs): its forward / backward and the product's phases,
// for comparing builds of the engine without the rest of a model's noise.
#include <cxxopts.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/blas.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/parallel.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "core/stopwatch.h"
#include "layers/conv2d.h"
#include "reuse/settings.h"

using namespace deja;
using core::Tensor;

namespace {

struct Shape2d {
  const char* name;
  int64_t batch, in, size, out, kernel, pad;
};

// Forwards to the dense product without being it, so conv2d takes its general
// path (whole-batch patch matrix, one product call: what the reuse engine
// gets) instead of the chunked direct path: --general compares the two.
class ForwardingProduct final : public core::Product {
 public:
  std::string describe() const override { return "dense (general path)"; }
  std::unique_ptr<core::ProductSaved> forward(const Tensor& x, const Tensor& w, Tensor& y,
                                              bool for_backward) override {
    return inner_->forward(x, w, y, for_backward);
  }
  void backward(core::ProductSaved& saved, const Tensor& dy, const Tensor& w, float* dw, float* dx,
                float dx_beta) override {
    inner_->backward(saved, dy, w, dw, dx, dx_beta);
  }
  core::Product& inner() { return *inner_; }

 private:
  std::shared_ptr<core::Product> inner_ = core::make_dense_product();
};

Tensor random_tensor(core::Shape shape, core::Rng& rng) {
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

void run(const Shape2d& s, int repeats, bool general, const std::shared_ptr<core::Product>& reuse) {
  core::Rng rng(42, 7);
  layers::Conv2dOptions o;
  o.in_channels = s.in;
  o.out_channels = s.out;
  o.kernel_h = o.kernel_w = s.kernel;
  o.padding = s.pad;
  core::Rng init = core::make_rng(1, core::RngPurpose::Init);
  layers::Conv2d conv(o, init);
  auto forwarding = std::make_shared<ForwardingProduct>();
  if (general) conv.set_product(forwarding);
  if (reuse) conv.set_product(reuse);
  core::Product& timed = general ? forwarding->inner() : *conv.product();
  Tensor x = random_tensor({s.batch, s.in, s.size, s.size}, rng);
  if (reuse)  // a ReLU's output, as reuse layers see: about half the entries zero
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = std::max(x[i], 0.0f);
  // The input is bound as a parameter too, so the backward computes dX (a
  // middle layer, the expensive case).
  auto params = conv.named_parameters();
  params.push_back({"input", &x});
  core::ParameterArena arena;
  arena.bind(params);

  const core::Shape out_shape = conv.output_shape(x.shape());
  const int64_t rows = out_shape[0] * out_shape[2] * out_shape[3];
  const int64_t k = s.in * s.kernel * s.kernel, m = s.out;
  Tensor grad_out = random_tensor(out_shape, rng);

  Tensor bx = random_tensor({rows, k}, rng), bw = random_tensor({m, k}, rng);
  Tensor by = Tensor::zeros({rows, m}), bdy = random_tensor({rows, m}, rng);
  Tensor bdw = Tensor::zeros({m, k}), bdx = Tensor::zeros({rows, k});

  // Layer and bare GEMMs alternate within each repeat, so both see the same
  // machine load; repeat 0 warms up (buffers, thread pools).
  std::vector<double> fwd, bwd, total, bare;
  for (int r = 0; r <= repeats; ++r) {
    if (r == 1) timed.reset_stats();
    core::Stopwatch sw;
    Tensor y = conv.forward(x);
    double tf = sw.lap();
    core::backward(y, grad_out);
    double tb = sw.lap();
    arena.zero_grad();
    sw.restart();
    using core::Trans;
    core::gemm(Trans::No, Trans::Yes, rows, m, k, 1.0f, bx.data(), k, bw.data(), k, 0.0f,
               by.data(), m);
    core::gemm(Trans::Yes, Trans::No, m, k, rows, 1.0f, bdy.data(), m, bx.data(), k, 1.0f,
               bdw.data(), k);
    core::gemm(Trans::No, Trans::No, rows, k, m, 1.0f, bdy.data(), m, bw.data(), k, 0.0f,
               bdx.data(), k);
    double tg = sw.seconds();
    if (r > 0) {
      fwd.push_back(tf);
      bwd.push_back(tb);
      total.push_back(tf + tb);
      bare.push_back(tg);
    }
  }
  const core::ProductStats& st = timed.stats();
  const double product_ms = (st.forward_s + st.backward_s) / repeats * 1e3;

  const double gflop = 3.0 * 2.0 * rows * k * m * 1e-9;  // the im2col GEMMs' count (Winograd does fewer)
  const std::string path = reuse     ? timed.describe()
                           : general ? "general"
                                     : "direct, " + conv.dense_algorithm(x.shape());
  const double t_layer = core::median(total), t_bare = core::median(bare);
  std::printf("%-14s (%s path) N=%lld %lld->%lld %lldx%lld pad %lld, %lldx%lld: GEMM rows %lld K %lld M %lld\n",
              s.name, path.c_str(), (long long)s.batch, (long long)s.in, (long long)s.out, (long long)s.kernel,
              (long long)s.kernel, (long long)s.pad, (long long)s.size, (long long)s.size,
              (long long)rows, (long long)k, (long long)m);
  std::printf("  bare sgemm x3 : %8.2f ms  %6.1f GFLOP/s\n", t_bare * 1e3, gflop / t_bare);
  std::printf("  conv2d fwd+bwd: %8.2f ms  %6.1f GFLOP/s  (fwd %.2f ms, bwd %.2f ms)\n",
              t_layer * 1e3, gflop / t_layer, core::median(fwd) * 1e3, core::median(bwd) * 1e3);
  std::printf("  of which the product's GEMMs (mean): %.2f ms, the rest: %.2f ms\n", product_ms,
              t_layer * 1e3 - product_ms);
  if (reuse) {
    std::printf("  phases (mean ms): lowering %.2f, hash %.2f, cluster %.2f, gemm %.2f, scatter %.2f; min fwd %.2f, "
                "min bwd %.2f\n",
                st.lowering_s / repeats * 1e3, st.hash_s / repeats * 1e3, st.cluster_s / repeats * 1e3,
                st.gemm_s / repeats * 1e3, st.scatter_s / repeats * 1e3,
                *std::min_element(fwd.begin(), fwd.end()) * 1e3, *std::min_element(bwd.begin(), bwd.end()) * 1e3);
    std::printf("  speedup over bare sgemm x3: %.2fx\n", t_bare / t_layer);
    return;
  }
  std::printf("  ratio (bare time / layer time): %.1f%%  (target >= 60%%)\n",
              100.0 * t_bare / t_layer);
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options cli("conv_bench", "dense conv2d forward+backward vs bare sgemm");
  cli.add_options()("threads", "threads (ours and OpenBLAS)", cxxopts::value<int>()->default_value("2"))(
      "repeats", "timed repeats (median reported)", cxxopts::value<int>()->default_value("7"))(
      "general", "use conv2d's general path (whole-batch patch matrix, as under reuse)")(
      "reuse", "time this reuse product at CifarNet conv2 instead, e.g. '{\"hash\": \"pca\", \"L\": 50, "
               "\"H\": 8, \"lowrank\": true}'", cxxopts::value<std::string>())(
      "h,help", "this help");
  auto args = cli.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", cli.help().c_str());
    return 0;
  }
  core::set_num_threads(args["threads"].as<int>());
  std::printf("OpenBLAS core: %s, threads: %d\n", core::blas_core_name().c_str(),
              core::num_threads());
  if (std::string w = core::blas_core_warning(); !w.empty()) std::printf("warning: %s\n", w.c_str());
  const int repeats = args["repeats"].as<int>();
  const bool general = args.count("general") > 0;
  std::shared_ptr<core::Product> reuse;
  if (args.count("reuse")) {
    reuse::ReuseSettings defaults;
    defaults.enabled = true;
    try {
      reuse = reuse::make_product(
          reuse::settings_from_json(core::Json::parse(args["reuse"].as<std::string>()), defaults, "--reuse"));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "conv_bench: %s\n", e.what());
      return 2;
    }
  }
  run({"cifarnet conv2", 128, 64, 16, 64, 5, 2}, repeats, general, reuse);
  if (!reuse) run({"vgg conv3", 128, 256, 8, 256, 3, 1}, repeats, general, nullptr);
  return 0;
}
