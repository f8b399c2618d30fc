#include "layers/batchnorm.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/autograd.h"
#include "core/parallel.h"
#include "core/plane_sum.h"

namespace deja::layers {

namespace {

// [N, C, inner]: inner = H*W for 2d, L (or 1) for 1d.
struct Layout {
  int64_t n, c, inner;
  int64_t count() const { return n * inner; }  // values per channel
};

// Per-channel statistics the backward needs: the mean and 1/sqrt(var + eps)
// that normalised the input, and the weight that scaled it.
struct Stats {
  std::vector<float> mean, invstd, weight;
};

class BatchNormNode final : public core::Node {
 public:
  BatchNormNode(Tensor x, Layout l, Stats st, bool batch_stats)
      : x_(std::move(x)), l_(l), st_(std::move(st)), batch_stats_(batch_stats) {}
  const char* op_name() const override { return "batchnorm"; }
  // With xhat = (x - mean) * invstd, db = sum g, dw = sum g * xhat and, when the
  // statistics came from this batch,
  //   dx = w * invstd * (g - db/m - xhat * dw/m)      (m values per channel);
  // with running statistics (eval) they are constants and dx = w * invstd * g.
  void backward(const Tensor& grad_output) override {
    float beta_x = 0.0f, beta_w = 0.0f, beta_b = 0.0f;
    float* dx = input_needs_grad(0) ? input_grad(0, &beta_x) : nullptr;
    float* dw = input_needs_grad(1) ? input_grad(1, &beta_w) : nullptr;
    float* db = input_needs_grad(2) ? input_grad(2, &beta_b) : nullptr;
    const float* g = grad_output.data();
    const float* x = x_.data();
    const Layout l = l_;
    const float inv_m = 1.0f / static_cast<float>(l.count());
    core::parallel_for(l.c, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const float mean = st_.mean[c], invstd = st_.invstd[c];
        double sum_g = 0.0, sum_gx = 0.0;
        for (int64_t i = 0; i < l.n; ++i) {
          const float* gr = g + (i * l.c + c) * l.inner;
          const float* xr = x + (i * l.c + c) * l.inner;
          sum_g += core::sum_run(gr, l.inner);
          sum_gx += core::lane_sum(l.inner, [gr, xr, mean](int64_t j) { return gr[j] * (xr[j] - mean); });
        }
        const float gb = static_cast<float>(sum_g), gw = static_cast<float>(sum_gx) * invstd;
        if (db) db[c] = (beta_b != 0.0f ? db[c] : 0.0f) + gb;
        if (dw) dw[c] = (beta_w != 0.0f ? dw[c] : 0.0f) + gw;
        if (!dx) continue;
        const float a = st_.weight[c] * invstd;
        // dx = a * g + (shift_g + xcoef * (x - mean)), both terms zero in eval.
        const float shift_g = batch_stats_ ? -a * gb * inv_m : 0.0f;
        const float xcoef = batch_stats_ ? -a * gw * inv_m * invstd : 0.0f;
        for (int64_t i = 0; i < l.n; ++i) {
          const float* gr = g + (i * l.c + c) * l.inner;
          const float* xr = x + (i * l.c + c) * l.inner;
          float* dr = dx + (i * l.c + c) * l.inner;
          if (beta_x != 0.0f) {
            for (int64_t j = 0; j < l.inner; ++j) dr[j] += a * gr[j] + shift_g + xcoef * (xr[j] - mean);
          } else {
            for (int64_t j = 0; j < l.inner; ++j) dr[j] = a * gr[j] + shift_g + xcoef * (xr[j] - mean);
          }
        }
      }
    });
  }
  void release() override {
    x_ = Tensor();
    st_ = Stats();
  }

 private:
  Tensor x_;
  Layout l_;
  Stats st_;
  bool batch_stats_;
};

}  // namespace

void BatchNormOptions::validate() const {
  if (num_features < 1)
    throw std::invalid_argument("batchnorm: num_features must be >= 1, got " + std::to_string(num_features));
  if (!(eps > 0.0)) throw std::invalid_argument(fmt::format("batchnorm: eps must be > 0, got {}", eps));
  if (!(momentum >= 0.0 && momentum <= 1.0))
    throw std::invalid_argument(fmt::format("batchnorm: momentum must be in [0, 1], got {}", momentum));
}

BatchNorm::BatchNorm(const BatchNormOptions& options, bool spatial) : options_(options), spatial_(spatial) {
  options_.validate();
  const int64_t c = options_.num_features;
  weight_ = Tensor::full({c}, 1.0f);
  bias_ = Tensor::zeros({c});
  running_mean_ = Tensor::zeros({c});
  running_var_ = Tensor::full({c}, 1.0f);
  register_parameter("weight", &weight_);
  register_parameter("bias", &bias_);
  register_buffer("running_mean", &running_mean_);
  register_buffer("running_var", &running_var_);
}

Shape BatchNorm::output_shape(const Shape& input) const {
  const bool rank_ok = spatial_ ? input.size() == 4 : (input.size() == 2 || input.size() == 3);
  if (!rank_ok || input[1] != options_.num_features) {
    const std::string c = std::to_string(options_.num_features);
    throw std::invalid_argument(type() + ": expected input " +
                                (spatial_ ? "[N, " + c + ", H, W]" : "[N, " + c + "] or [N, " + c + ", L]") +
                                ", got " + core::shape_to_string(input));
  }
  return input;
}

int64_t BatchNorm::forward_flops(const Shape& input) const {
  return 2 * core::shape_numel(output_shape(input));
}

Tensor BatchNorm::forward(const Tensor& x) {
  output_shape(x.shape());
  const Layout l{x.size(0), x.size(1), x.dim() > 2 ? x.numel() / (x.size(0) * x.size(1)) : 1};
  const bool batch_stats = is_training();
  if (batch_stats && l.count() < 2)
    throw std::invalid_argument(type() + ": expected more than 1 value per channel when training, got input " +
                                core::shape_to_string(x.shape()));
  Stats st{std::vector<float>(l.c), std::vector<float>(l.c), std::vector<float>(weight_.data(), weight_.data() + l.c)};
  const float* in = x.data();
  const float* bias = bias_.data();
  float* rm = running_mean_.data();
  float* rv = running_var_.data();
  const double eps = options_.eps, mom = options_.momentum;
  Tensor y = Tensor::empty(x.shape());
  float* out = y.data();
  core::parallel_for(l.c, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double mean, var_biased = 0.0;
      if (batch_stats) {
        // Two passes (mean, then squared deviations): no cancellation.
        double sum = 0.0;
        for (int64_t i = 0; i < l.n; ++i) {
          const float* r = in + (i * l.c + c) * l.inner;
          sum += core::sum_run(r, l.inner);
        }
        mean = sum / static_cast<double>(l.count());
        const float fm = static_cast<float>(mean);
        double sq = 0.0;
        for (int64_t i = 0; i < l.n; ++i) {
          const float* r = in + (i * l.c + c) * l.inner;
          sq += core::lane_sum(l.inner, [r, fm](int64_t j) { return (r[j] - fm) * (r[j] - fm); });
        }
        var_biased = sq / static_cast<double>(l.count());
        const double unbiased = sq / static_cast<double>(l.count() - 1);
        rm[c] = static_cast<float>((1.0 - mom) * rm[c] + mom * mean);
        rv[c] = static_cast<float>((1.0 - mom) * rv[c] + mom * unbiased);
      } else {
        mean = rm[c];
        var_biased = rv[c];
      }
      const float invstd = static_cast<float>(1.0 / std::sqrt(var_biased + eps));
      st.mean[c] = static_cast<float>(mean);
      st.invstd[c] = invstd;
      // y = x * scale + shift, scale = w * invstd, shift = b - mean * scale.
      const float scale = st.weight[c] * invstd;
      const float shift = bias[c] - st.mean[c] * scale;
      for (int64_t i = 0; i < l.n; ++i) {
        const float* r = in + (i * l.c + c) * l.inner;
        float* o = out + (i * l.c + c) * l.inner;
        for (int64_t j = 0; j < l.inner; ++j) o[j] = r[j] * scale + shift;
      }
    }
  });
  if (core::needs_grad({&x, &weight_, &bias_}))
    core::attach(y, std::make_shared<BatchNormNode>(x.detached(), l, std::move(st), batch_stats),
                 {&x, &weight_, &bias_});
  return y;
}

}  // namespace deja::layers
