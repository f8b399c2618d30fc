// reuse_sweep: error against remaining ratio per hash family, per conv layer,
// on real activations. Builds the model of a run config (default
// configs/cifarnet.json), runs one training batch forward with recording
// products that keep each conv layer's X (im2col rows) and W, then for each
// family x (L, H, width) grid point runs the reuse product on that X and W
// with a random dY and writes one CSV row: family,layer,L,H,width,r_c,
// err_y,err_dw,err_dx; the log (stderr) adds ms per phase. Limits: the weights
// are freshly initialised from the config's seed (no checkpoint loading yet), so
// the activations are those of an untrained network.
#include <cxxopts.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <fstream>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"
#include "core/json_util.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/loader.h"
#include "data/pipeline.h"
#include "layers/builder.h"
#include "reuse/compare.h"
#include "reuse/reuse_product.h"

using namespace deja;
using core::Tensor;

namespace {

// Delegates to the dense product and keeps a copy of the last X and W.
class RecordingProduct final : public core::Product {
 public:
  std::string describe() const override { return "recording(dense)"; }
  std::unique_ptr<core::ProductSaved> forward(const Tensor& x, const Tensor& w, Tensor& y,
                                              bool for_backward) override {
    x_ = x.clone();
    w_ = w.clone();
    return dense_->forward(x, w, y, for_backward);
  }
  void backward(core::ProductSaved& saved, const Tensor& dy, const Tensor& w, float* dw, float* dx,
                float dx_beta) override {
    dense_->backward(saved, dy, w, dw, dx, dx_beta);
  }
  const Tensor& x() const { return x_; }
  const Tensor& w() const { return w_; }

 private:
  std::shared_ptr<core::Product> dense_ = core::make_dense_product();
  Tensor x_, w_;
};

struct GridPoint {
  std::string family;
  int64_t l, h;
  double width;
};

// "qproj:20:8:1.0,sign:10:16:0" -> grid points (family:L:H:width).
std::vector<GridPoint> parse_points(const std::string& text) {
  std::vector<GridPoint> g;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(pos, end - pos);
    GridPoint p;
    char family[32] = {};
    long long l = 0, h = 0;
    if (std::sscanf(item.c_str(), "%31[a-z]:%lld:%lld:%lf", family, &l, &h, &p.width) != 4)
      throw std::invalid_argument("--points: expected family:L:H:width, got '" + item + "'");
    p.family = family;
    p.l = l;
    p.h = h;
    g.push_back(p);
    pos = end + 1;
  }
  return g;
}

std::vector<GridPoint> grid() {
  std::vector<GridPoint> g;
  for (int64_t l : {10, 20}) {
    for (int64_t h : {4, 8, 12, 16, 20, 24}) g.push_back({"sign", l, h, 0.0});
    for (double w : {0.125, 0.25, 0.5, 1.0, 2.0}) g.push_back({"qproj", l, 8, w});
    for (double w : {0.25, 0.5, 1.0}) g.push_back({"qproj", l, 4, w});
    for (int64_t h : {4, 8, 16})
      for (double w : {0.5, 1.0, 2.0}) g.push_back({"signnorm", l, h, w});
    for (double w : {0.25, 0.5, 1.0, 2.0}) g.push_back({"pca", l, 8, w});
  }
  // The shipped sub-vector length (two input channels of a 5x5 kernel).
  for (double w : {0.2, 0.25, 0.35, 0.5, 0.7}) g.push_back({"qproj", 50, 8, w});
  for (double w : {0.35, 0.5, 0.7, 1.0}) g.push_back({"pca", 50, 8, w});
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options opts("reuse_sweep", "reuse error against r_c per hash family on real activations");
  opts.add_options()("config", "run config", cxxopts::value<std::string>()->default_value("configs/cifarnet.json"))(
      "out", "CSV path", cxxopts::value<std::string>()->default_value("reuse_sweep.csv"))(
      "threads", "threads", cxxopts::value<int>()->default_value("2"))(
      "points", "grid points family:L:H:width,... instead of the built-in grid", cxxopts::value<std::string>())(
      "layer", "only this layer", cxxopts::value<std::string>())(
      "repeats", "timed repeats per point (the log shows the median-of-repeats time)",
      cxxopts::value<int>()->default_value("1"))("h,help", "help");
  auto a = opts.parse(argc, argv);
  if (a.count("help")) {
    std::puts(opts.help().c_str());
    return 0;
  }
  try {
    core::set_num_threads(a["threads"].as<int>());
    const core::Json cfg = core::load_json_file(a["config"].as<std::string>());
    const uint64_t seed = cfg.value("seed", 1);
    auto model = layers::build_model(cfg.at("model"), seed);
    auto pipeline = data::make_data_pipeline(cfg.at("data"), seed);
    data::Loader loader(pipeline.train, pipeline.train_transform, pipeline.train_options);
    loader.start_epoch(0);
    data::Batch batch;
    if (!loader.next(batch)) throw std::runtime_error("the training set gave no batch");

    std::vector<std::pair<std::string, std::shared_ptr<RecordingProduct>>> recorders;
    for (auto& layer : model->reuse_layers()) {
      if (layer.module->type() != "conv2d") continue;
      auto rec = std::make_shared<RecordingProduct>();
      layer.module->set_product(rec);
      recorders.emplace_back(layer.name, rec);
    }
    model->eval();
    {
      core::NoGradGuard no_grad;
      model->forward(batch.images);
    }
    std::ofstream out(a["out"].as<std::string>());
    out << "family,layer,L,H,width,r_c,err_y,err_dw,err_dx\n";
    const auto points = a.count("points") ? parse_points(a["points"].as<std::string>()) : grid();
    const int repeats = std::max(1, a["repeats"].as<int>());
    // Median over repeats of one product's forward + backward wall time.
    auto timed = [&](core::Product& product, const Tensor& x, const Tensor& w, const Tensor& dy) {
      std::vector<double> t;
      for (int r = 0; r < repeats; ++r) {
        product.reset_stats();
        reuse::compare_to_dense(product, x, w, dy);
        t.push_back((product.stats().forward_s + product.stats().backward_s) * 1e3);
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    for (auto& [name, rec] : recorders) {
      if (a.count("layer") && name != a["layer"].as<std::string>()) continue;
      const Tensor& x = rec->x();
      const Tensor& w = rec->w();
      std::fprintf(stderr, "%s: X [%lld, %lld], W [%lld, %lld]\n", name.c_str(),
                   (long long)x.size(0), (long long)x.size(1), (long long)w.size(0),
                   (long long)w.size(1));
      core::Rng rng(seed, 77);
      Tensor dy = Tensor::empty({x.size(0), w.size(0)});
      for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = rng.normal();
      // Wall time of one dense forward+backward (dW and dX), for the log.
      auto dense = core::make_dense_product();
      double dense_ms = timed(*dense, x, w, dy);
      for (const auto& p : points) {
        if (p.l > x.size(1)) continue;
        reuse::ReuseSettings s;
        s.enabled = true;
        s.hash = p.family;
        s.L = p.l;
        s.H = p.h;
        s.width = p.width;
        s.seed = seed;
        reuse::ReuseProduct product(s);
        auto e = reuse::compare_to_dense(product, x, w, dy);
        if (repeats > 1) {
          dense_ms = timed(*dense, x, w, dy);  // side by side: the machine is shared
          timed(product, x, w, dy);
        }
        out << p.family << ',' << name << ',' << p.l << ',' << p.h << ',' << p.width << ','
            << e.remaining_ratio << ',' << e.err_y << ',' << e.err_dw << ',' << e.err_dx << '\n';
        const auto& st = product.stats();
        std::fprintf(stderr,
                     "  %-8s L=%2lld H=%2lld w=%5.3f  r_c %.4f  err_y %.3f err_dw %.3f err_dx %.3f"
                     "  fwd+bwd ms: dense %.1f reuse %.1f (hash %.1f cluster %.1f products %.1f "
                     "scatter %.1f)\n",
                     p.family.c_str(), (long long)p.l, (long long)p.h, p.width, e.remaining_ratio,
                     e.err_y, e.err_dw, e.err_dx, dense_ms, (st.forward_s + st.backward_s) * 1e3,
                     st.hash_s * 1e3, st.cluster_s * 1e3, st.gemm_s * 1e3, st.scatter_s * 1e3);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reuse_sweep: %s\n", e.what());
    return 1;
  }
  return 0;
}
