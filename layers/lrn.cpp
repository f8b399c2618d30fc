#include "layers/lrn.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/autograd.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {

// Pixels per work unit: a strip of every channel fits in L2 with its scratch.
constexpr int64_t kStrip = 256;

// s^-beta. 0.75 (AlexNet, CifarNet) and 0.5 are exact sqrt chains the compiler
// vectorises; the general case calls std::pow per element.
enum class PowMode { Beta075, Beta05, Beta1, General };

PowMode pow_mode(double beta) {
  if (beta == 0.75) return PowMode::Beta075;
  if (beta == 0.5) return PowMode::Beta05;
  if (beta == 1.0) return PowMode::Beta1;
  return PowMode::General;
}

template <PowMode kMode>
inline float neg_pow(float s, float beta) {
  if constexpr (kMode == PowMode::Beta075) {
    const float r = std::sqrt(s);
    return 1.0f / (r * std::sqrt(r));
  } else if constexpr (kMode == PowMode::Beta05) {
    return 1.0f / std::sqrt(s);
  } else if constexpr (kMode == PowMode::Beta1) {
    return 1.0f / s;
  } else {
    return std::pow(s, -beta);
  }
}

struct Layout {
  int64_t n, c, pixels;  // [N, C, pixels]
  int64_t strips() const { return (pixels + kStrip - 1) / kStrip; }
};

struct Window {
  int64_t lo, hi;  // window(c) = [c - lo, c + hi]
};

// Slides the window sum of a^2 over the channels of one (image, pixel strip):
// visit(c, acc) sees acc[i] = sum of a^2 over window(c) at pixel i (visitors
// copy what they capture into locals, so their stores cannot alias it). One
// add and one subtract per channel step, so the cost does not grow with
// `size`. Forward and backward both walk it (the backward recomputes s from
// the input instead of reading a saved copy: the strip is in cache, a saved
// scale tensor is one more activation-sized stream each way).
template <class Visit>
inline void slide_window_sums(const float* __restrict a, int64_t channels, int64_t stride, int64_t w, Window win,
                              float* __restrict acc, Visit&& visit) {
  std::fill(acc, acc + w, 0.0f);
  for (int64_t c = 0; c <= std::min(win.hi, channels - 1); ++c) {
    const float* ac = a + c * stride;
    for (int64_t i = 0; i < w; ++i) acc[i] += ac[i] * ac[i];
  }
  for (int64_t c = 0; c < channels; ++c) {
    visit(c, static_cast<const float*>(acc));
    const int64_t enter = c + 1 + win.hi, leave = c - win.lo;
    if (enter < channels && leave >= 0) {
      const float* ae = a + enter * stride;
      const float* al = a + leave * stride;
      for (int64_t i = 0; i < w; ++i) acc[i] += ae[i] * ae[i] - al[i] * al[i];
    } else if (enter < channels) {
      const float* ae = a + enter * stride;
      for (int64_t i = 0; i < w; ++i) acc[i] += ae[i] * ae[i];
    } else if (leave >= 0) {
      const float* al = a + leave * stride;
      for (int64_t i = 0; i < w; ++i) acc[i] -= al[i] * al[i];
    }
  }
}

template <PowMode kMode>
void lrn_forward_strip(const float* __restrict a, float* __restrict y, int64_t channels, int64_t stride, int64_t w,
                       Window win, float k, float coef, float beta, float* __restrict acc) {
  slide_window_sums(a, channels, stride, w, win, acc, [=](int64_t c, const float* __restrict sums) {
    const float* __restrict ac = a + c * stride;
    float* __restrict yc = y + c * stride;
    const float kk = k, cf = coef, b = beta;
    for (int64_t i = 0; i < w; ++i) yc[i] = ac[i] * neg_pow<kMode>(kk + cf * sums[i], b);
  });
}

// dx_j = g_j s_j^-beta - (2 alpha beta / size) a_j * sum_{c : j in window(c)} t_c,
// t_c = g_c a_c s_c^(-beta-1). j in window(c) iff c in [j - hi, j + lo] (the
// mirrored window), summed with the same sliding trick. Pass 1 recomputes s
// with the forward's slide and stores t and s^-beta per channel (scratch),
// pass 2 slides over t and writes dx.
template <PowMode kMode>
void lrn_backward_strip(const float* __restrict a, const float* __restrict g, float* __restrict dx, bool accumulate,
                        int64_t channels, int64_t stride, int64_t w, Window win, float k, float coef, float beta,
                        float coef2, float* __restrict t, float* __restrict pw, float* __restrict acc) {
  slide_window_sums(a, channels, stride, w, win, acc, [=](int64_t c, const float* __restrict sums) {
    const float* __restrict ac = a + c * stride;
    const float* __restrict gc = g + c * stride;
    float* __restrict tc = t + c * w;
    float* __restrict pc = pw + c * w;
    const float kk = k, cf = coef, b = beta;
    for (int64_t i = 0; i < w; ++i) {
      const float s = kk + cf * sums[i];
      const float p = neg_pow<kMode>(s, b);
      pc[i] = p;
      tc[i] = gc[i] * ac[i] * p / s;
    }
  });
  std::fill(acc, acc + w, 0.0f);
  for (int64_t c = 0; c <= std::min(win.lo, channels - 1); ++c) {
    const float* tc = t + c * w;
    for (int64_t i = 0; i < w; ++i) acc[i] += tc[i];
  }
  for (int64_t j = 0; j < channels; ++j) {
    const float* aj = a + j * stride;
    const float* gj = g + j * stride;
    const float* pj = pw + j * w;
    float* dj = dx + j * stride;
    if (accumulate) {
      for (int64_t i = 0; i < w; ++i) dj[i] += gj[i] * pj[i] - coef2 * aj[i] * acc[i];
    } else {
      for (int64_t i = 0; i < w; ++i) dj[i] = gj[i] * pj[i] - coef2 * aj[i] * acc[i];
    }
    const int64_t enter = j + 1 + win.lo, leave = j - win.hi;
    if (enter < channels) {
      const float* te = t + enter * w;
      for (int64_t i = 0; i < w; ++i) acc[i] += te[i];
    }
    if (leave >= 0) {
      const float* tl = t + leave * w;
      for (int64_t i = 0; i < w; ++i) acc[i] -= tl[i];
    }
  }
}

template <class Fn>
void dispatch(PowMode mode, Fn&& fn) {
  switch (mode) {
    case PowMode::Beta075: fn.template operator()<PowMode::Beta075>(); break;
    case PowMode::Beta05: fn.template operator()<PowMode::Beta05>(); break;
    case PowMode::Beta1: fn.template operator()<PowMode::Beta1>(); break;
    case PowMode::General: fn.template operator()<PowMode::General>(); break;
  }
}

Layout layout_of(const Tensor& x) {
  return {x.size(0), x.size(1), x.numel() / (x.size(0) * x.size(1))};
}

class LrnNode final : public core::Node {
 public:
  LrnNode(Tensor x, LrnOptions opt) : x_(std::move(x)), opt_(opt) {}
  const char* op_name() const override { return "lrn"; }
  void backward(const Tensor& grad_output) override {
    float beta_acc = 0.0f;
    float* dx = input_grad(0, &beta_acc);
    const bool accumulate = beta_acc != 0.0f;
    const Layout l = layout_of(x_);
    const Window win{opt_.size / 2, (opt_.size - 1) / 2};
    const float k = static_cast<float>(opt_.k), beta = static_cast<float>(opt_.beta);
    const float coef = static_cast<float>(opt_.alpha / static_cast<double>(opt_.size));
    const float coef2 = static_cast<float>(2.0 * opt_.alpha * opt_.beta / static_cast<double>(opt_.size));
    const int64_t strips = l.strips(), sw = std::min(kStrip, l.pixels);
    auto scratch = std::vector<std::vector<float>>(core::num_threads(), std::vector<float>((2 * l.c + 1) * sw));
    const float* a = x_.data();
    const float* g = grad_output.data();
    dispatch(pow_mode(opt_.beta), [&]<PowMode kMode>() {
      core::parallel_for_indexed(l.n * strips, [&](int th, int64_t b, int64_t e) {
        float* t = scratch[th].data();
        for (int64_t u = b; u < e; ++u) {
          const int64_t img = u / strips, p0 = (u % strips) * kStrip;
          const int64_t w = std::min(kStrip, l.pixels - p0), off = img * l.c * l.pixels + p0;
          lrn_backward_strip<kMode>(a + off, g + off, dx + off, accumulate, l.c, l.pixels, w, win, k, coef,
                                    beta, coef2, t, t + l.c * w, t + 2 * l.c * w);
        }
      });
    });
  }
  void release() override { x_ = Tensor(); }

 private:
  Tensor x_;  // the input (alive anyway: the previous layer's output)
  LrnOptions opt_;
};

}  // namespace

void LrnOptions::validate() const {
  if (size < 1) throw std::invalid_argument("lrn: size must be >= 1, got " + std::to_string(size));
  if (!(alpha >= 0.0)) throw std::invalid_argument("lrn: alpha must be >= 0, got " + fmt::format("{}", alpha));
  if (!(beta >= 0.0)) throw std::invalid_argument("lrn: beta must be >= 0, got " + fmt::format("{}", beta));
  if (!(k > 0.0)) throw std::invalid_argument("lrn: k must be > 0, got " + fmt::format("{}", k));
}

Tensor local_response_norm(const Tensor& x, const LrnOptions& opt) {
  opt.validate();
  if (x.dim() < 3)
    throw std::invalid_argument("lrn: expected input [N, C, ...] with at least 3 dims, got " +
                                core::shape_to_string(x.shape()));
  const Layout l = layout_of(x);
  Tensor y = Tensor::empty(x.shape());
  const Window win{opt.size / 2, (opt.size - 1) / 2};
  const float k = static_cast<float>(opt.k), beta = static_cast<float>(opt.beta);
  const float coef = static_cast<float>(opt.alpha / static_cast<double>(opt.size));
  const int64_t strips = l.strips(), sw = std::min(kStrip, l.pixels);
  auto acc = std::vector<std::vector<float>>(core::num_threads(), std::vector<float>(sw));
  const float* a = x.data();
  float* out = y.data();
  dispatch(pow_mode(opt.beta), [&]<PowMode kMode>() {
    core::parallel_for_indexed(l.n * strips, [&](int th, int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u) {
        const int64_t img = u / strips, p0 = (u % strips) * kStrip;
        const int64_t w = std::min(kStrip, l.pixels - p0), off = img * l.c * l.pixels + p0;
        lrn_forward_strip<kMode>(a + off, out + off, l.c, l.pixels, w, win, k, coef, beta, acc[th].data());
      }
    });
  });
  if (core::needs_grad({&x}))
    core::attach(y, std::make_shared<LrnNode>(x.detached(), opt), {&x});
  return y;
}

LRN::LRN(const LrnOptions& options) : options_(options) { options_.validate(); }

Shape LRN::output_shape(const Shape& input) const {
  if (input.size() < 3)
    throw std::invalid_argument("lrn: expected input [N, C, ...] with at least 3 dims, got " +
                                core::shape_to_string(input));
  return input;
}

int64_t LRN::forward_flops(const Shape& input) const { return core::shape_numel(output_shape(input)) * 8; }

}  // namespace deja::layers
