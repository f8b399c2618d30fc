#include "layers/pool2d.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Geometry of one pooling call, shared by forward and backward.
struct Geometry {
  int64_t planes, h, w, oh, ow, k, s, p;
  // Length of a padded input row: padding on both sides plus any ceil_mode
  // overhang of the last window.
  int64_t padded_row() const { return std::max(w + 2 * p, (ow - 1) * s + k); }
  // Input rows [first, last) covered by output row o.
  int64_t first_row(int64_t o) const { return std::max<int64_t>(o * s - p, 0); }
  int64_t last_row(int64_t o) const { return std::min(o * s - p + k, h); }
};

Geometry geometry(const char* layer, const Tensor& x, const Pool2dOptions& opt) {
  Shape out = pool2d_output_shape(layer, x.shape(), opt);
  return {x.size(0) * x.size(1), x.size(2), x.size(3), out[2], out[3],
          opt.kernel, opt.effective_stride(), opt.padding};
}

// Scratch buffers for each pool thread, sized once per call (no allocation in
// the plane loop).
template <class T>
std::vector<std::vector<T>> per_thread(int64_t count) {
  return std::vector<std::vector<T>>(core::num_threads(), std::vector<T>(count));
}

// Strided window max: hb[o] = max_kw row[o*S + kw], ha[o] the position
// o*S + kw of the first maximum. kw-outer so the o-loop vectorises; the
// stride is a template constant for the common 1 and 2 (strided loads become
// permutes instead of gathers). `!(v <= best)` also lets NaN win, as PyTorch.
template <int64_t kS>
void row_max(const float* __restrict row, int64_t ow, int64_t k, int64_t stride, float* __restrict hb,
             int32_t* __restrict ha) {
  const int64_t s = kS > 0 ? kS : stride;
  for (int64_t o = 0; o < ow; ++o) {
    hb[o] = row[o * s];
    ha[o] = static_cast<int32_t>(o * s);
  }
  for (int64_t kw = 1; kw < k; ++kw)
    for (int64_t o = 0; o < ow; ++o) {
      const float v = row[o * s + kw];
      const bool m = !(v <= hb[o]);
      hb[o] = m ? v : hb[o];
      ha[o] = m ? static_cast<int32_t>(o * s + kw) : ha[o];
    }
}

// Per-thread buffers of the max-pool forward (see max_plane).
struct MaxScratch {
  std::vector<float> v;      // [OH][row] vertical maxima in -inf padded rows (+ k slack)
  std::vector<int32_t> va;   // [OH][W] input row of each vertical maximum
  std::vector<float> hb;     // [OH * row/s] horizontal maxima, all columns
  std::vector<int32_t> hc;   // their flat positions in v
};

// Padded row length of the vertical-max buffer: a multiple of the stride, so
// that all output rows form one evenly strided sequence (see max_plane).
int64_t strided_row(const Geometry& g) { return (g.padded_row() + g.s - 1) / g.s * g.s; }

MaxScratch make_max_scratch(const Geometry& g) {
  const int64_t row = strided_row(g);
  return {std::vector<float>(g.oh * row + g.k, -std::numeric_limits<float>::infinity()),
          std::vector<int32_t>(g.oh * g.w), std::vector<float>(g.oh * row / g.s),
          std::vector<int32_t>(g.oh * row / g.s)};
}

// Separable max over one plane, vertical first: stage 1 takes, per output row,
// the element-wise max of its k input rows (contiguous rows of W: full vector
// width even for 8x8 maps) into a -inf padded row; stage 2 takes horizontal
// maxima over all output rows at once: with rows of length row = owx * s the
// window starts are one arithmetic sequence q * s (columns >= OW are junk and
// dropped), so the loop runs OH * owx long instead of OW long per row. Only the
// padding columns of `v` are never written, so they stay -inf.
void max_plane(const Geometry& g, const float* __restrict in, float* __restrict out, int32_t* __restrict arg,
               MaxScratch& sc) {
  const int64_t row = strided_row(g), owx = row / g.s;
  float* __restrict v = sc.v.data();
  int32_t* __restrict va = sc.va.data();
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    float* __restrict vr = v + oh * row + g.p;
    int32_t* __restrict ar = va + oh * g.w;
    const int64_t r0 = g.first_row(oh), r1 = g.last_row(oh);
    std::copy(in + r0 * g.w, in + (r0 + 1) * g.w, vr);
    std::fill(ar, ar + g.w, static_cast<int32_t>(r0));
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const float* __restrict x = in + r * g.w;
      const int32_t ri = static_cast<int32_t>(r);
      for (int64_t i = 0; i < g.w; ++i) {
        const bool m = !(x[i] <= vr[i]);  // also lets NaN win, as PyTorch
        vr[i] = m ? x[i] : vr[i];
        ar[i] = m ? ri : ar[i];
      }
    }
  }
  const int64_t n = g.oh * owx;
  if (g.s == 2)
    row_max<2>(v, n, g.k, g.s, sc.hb.data(), sc.hc.data());
  else if (g.s == 1)
    row_max<1>(v, n, g.k, g.s, sc.hb.data(), sc.hc.data());
  else
    row_max<0>(v, n, g.k, g.s, sc.hb.data(), sc.hc.data());
  const int32_t last = static_cast<int32_t>(g.w - 1);
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const float* hb = sc.hb.data() + oh * owx;
    const int32_t* hc = sc.hc.data() + oh * owx;
    const int32_t base = static_cast<int32_t>(oh * row + g.p);
    for (int64_t o = 0; o < g.ow; ++o) {
      out[oh * g.ow + o] = hb[o];
      // A window whose valid inputs are all -inf ties with its padding;
      // clamping then names its first valid input.
      const int32_t col = std::clamp(hc[o] - base, 0, last);
      arg[oh * g.ow + o] = va[oh * g.w + col] * static_cast<int32_t>(g.w) + col;
    }
  }
}

class MaxPoolNode final : public core::Node {
 public:
  MaxPoolNode(Geometry g, std::unique_ptr<int32_t[]> arg) : g_(g), arg_(std::move(arg)) {}
  const char* op_name() const override { return "maxpool2d"; }
  void backward(const Tensor& grad_output) override {
    float beta = 0.0f;
    float* dx = input_grad(0, &beta);
    const bool accumulate = beta != 0.0f;
    const float* gy = grad_output.data();
    const int32_t* arg = arg_.get();
    const int64_t in_plane = g_.h * g_.w, out_plane = g_.oh * g_.ow;
    core::parallel_for(g_.planes, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        float* d = dx + pl * in_plane;
        if (!accumulate) std::fill(d, d + in_plane, 0.0f);
        const float* gp = gy + pl * out_plane;
        const int32_t* ap = arg + pl * out_plane;
        for (int64_t o = 0; o < out_plane; ++o) d[ap[o]] += gp[o];
      }
    });
  }
  void release() override { arg_.reset(); }

 private:
  Geometry g_;
  std::unique_ptr<int32_t[]> arg_;  // per output: index of its maximum within the input plane
};

// Divisor of an average window: padding counts, the ceil_mode overhang past
// the padding does not (PyTorch's count_include_pad = true).
int64_t window_extent(int64_t o, int64_t s, int64_t p, int64_t k, int64_t n) {
  const int64_t start = o * s - p;
  return std::min(start + k, n + p) - start;
}

void avg_plane(const Geometry& g, const float* __restrict in, float* __restrict out, float* __restrict row,
               float* __restrict hs, const float* __restrict col_extent) {
  const int64_t lp = g.padded_row();
  std::fill(row, row + lp, 0.0f);
  for (int64_t ih = 0; ih < g.h; ++ih) {
    std::copy(in + ih * g.w, in + (ih + 1) * g.w, row + g.p);
    float* hsum = hs + ih * g.ow;
    for (int64_t o = 0; o < g.ow; ++o) hsum[o] = row[o * g.s];
    for (int64_t kw = 1; kw < g.k; ++kw)
      for (int64_t o = 0; o < g.ow; ++o) hsum[o] += row[o * g.s + kw];
  }
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    float* y = out + oh * g.ow;
    const int64_t r0 = g.first_row(oh), r1 = g.last_row(oh);
    std::copy(hs + r0 * g.ow, hs + (r0 + 1) * g.ow, y);
    for (int64_t r = r0 + 1; r < r1; ++r)
      for (int64_t o = 0; o < g.ow; ++o) y[o] += hs[r * g.ow + o];
    const float rows = static_cast<float>(window_extent(oh, g.s, g.p, g.k, g.h));
    for (int64_t o = 0; o < g.ow; ++o) y[o] /= rows * col_extent[o];
  }
}

std::vector<float> column_extents(const Geometry& g) {
  std::vector<float> ext(g.ow);
  for (int64_t o = 0; o < g.ow; ++o) ext[o] = static_cast<float>(window_extent(o, g.s, g.p, g.k, g.w));
  return ext;
}

class AvgPoolNode final : public core::Node {
 public:
  explicit AvgPoolNode(Geometry g) : g_(g) {}
  const char* op_name() const override { return "avgpool2d"; }
  // dx[ih][iw] = sum over windows (oh, ow) containing it of g[oh][ow] / div:
  // scatter each scaled output row into the input rows it covers, then spread
  // every such row over its kernel columns through a padded row buffer.
  void backward(const Tensor& grad_output) override {
    float beta = 0.0f;
    float* dx = input_grad(0, &beta);
    const bool accumulate = beta != 0.0f;
    const float* gy = grad_output.data();
    const Geometry g = g_;
    const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow, lp = g.padded_row();
    const std::vector<float> cols = column_extents(g);
    auto vt = per_thread<float>(g.h * g.ow);
    auto rows = per_thread<float>(lp);
    core::parallel_for_indexed(g.planes, [&](int t, int64_t b, int64_t e) {
      float* v = vt[t].data();
      float* row = rows[t].data();
      for (int64_t pl = b; pl < e; ++pl) {
        std::fill(v, v + g.h * g.ow, 0.0f);
        const float* gp = gy + pl * out_plane;
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const float rdiv = static_cast<float>(window_extent(oh, g.s, g.p, g.k, g.h));
          for (int64_t r = g.first_row(oh); r < g.last_row(oh); ++r)
            for (int64_t o = 0; o < g.ow; ++o) v[r * g.ow + o] += gp[oh * g.ow + o] / (rdiv * cols[o]);
        }
        float* d = dx + pl * in_plane;
        for (int64_t ih = 0; ih < g.h; ++ih) {
          std::fill(row, row + lp, 0.0f);
          const float* vr = v + ih * g.ow;
          for (int64_t kw = 0; kw < g.k; ++kw)
            for (int64_t o = 0; o < g.ow; ++o) row[o * g.s + kw] += vr[o];
          float* dr = d + ih * g.w;
          if (accumulate) {
            for (int64_t iw = 0; iw < g.w; ++iw) dr[iw] += row[iw + g.p];
          } else {
            std::copy(row + g.p, row + g.p + g.w, dr);
          }
        }
      }
    });
  }

 private:
  Geometry g_;
};

}  // namespace

void Pool2dOptions::validate() const { validate("pool2d"); }

void Pool2dOptions::validate(const char* layer) const {
  const std::string name(layer);
  if (kernel < 1) throw std::invalid_argument(name + ": kernel must be >= 1, got " + str(kernel));
  if (stride < 0)
    throw std::invalid_argument(name + ": stride must be >= 1 (or 0 for = kernel), got " + str(stride));
  if (padding < 0) throw std::invalid_argument(name + ": padding must be >= 0, got " + str(padding));
  if (padding > kernel / 2)
    throw std::invalid_argument(name + ": padding must be <= kernel/2, got " + str(padding));
}

int64_t pool_output_size(int64_t input, const Pool2dOptions& opt) {
  const int64_t s = opt.effective_stride();
  const int64_t span = input + 2 * opt.padding - opt.kernel;
  if (span < 0) return 0;
  if (!opt.ceil_mode) return span / s + 1;
  int64_t out = (span + s - 1) / s + 1;
  // The last window must start inside the input or its left padding.
  if ((out - 1) * s >= input + opt.padding) --out;
  return out;
}

Shape pool2d_output_shape(const char* layer, const Shape& input, const Pool2dOptions& opt) {
  const std::string name(layer);
  if (input.size() != 4)
    throw std::invalid_argument(name + ": expected input [N, C, H, W], got " + core::shape_to_string(input));
  const int64_t oh = pool_output_size(input[2], opt), ow = pool_output_size(input[3], opt);
  const Shape out{input[0], input[1], oh, ow};
  if (oh < 1 || ow < 1)
    throw std::invalid_argument(name + ": input " + core::shape_to_string(input) + " is too small for kernel " +
                                str(opt.kernel) + " (stride " + str(opt.effective_stride()) + ", padding " +
                                str(opt.padding) + "): output would be " + core::shape_to_string(out));
  return out;
}

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  opt.validate("maxpool2d");
  const Geometry g = geometry("maxpool2d", x, opt);
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.oh, g.ow});
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  if (in_plane > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("maxpool2d: input plane " + core::shape_to_string(x.shape()) +
                                " too large for int32 argmax indices");
  auto arg = std::make_unique_for_overwrite<int32_t[]>(g.planes * out_plane);
  std::vector<MaxScratch> scratch;
  for (int t = 0; t < core::num_threads(); ++t) scratch.push_back(make_max_scratch(g));
  const float* in = x.data();
  float* out = y.data();
  int32_t* a = arg.get();
  core::parallel_for_indexed(g.planes, [&](int t, int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) max_plane(g, in + pl * in_plane, out + pl * out_plane, a + pl * out_plane, scratch[t]);
  });
  if (core::needs_grad({&x})) core::attach(y, std::make_shared<MaxPoolNode>(g, std::move(arg)), {&x});
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  opt.validate("avgpool2d");
  const Geometry g = geometry("avgpool2d", x, opt);
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.oh, g.ow});
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  const std::vector<float> cols = column_extents(g);
  auto rows = per_thread<float>(g.padded_row());
  auto hs = per_thread<float>(g.h * g.ow);
  const float* in = x.data();
  float* out = y.data();
  core::parallel_for_indexed(g.planes, [&](int t, int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl)
      avg_plane(g, in + pl * in_plane, out + pl * out_plane, rows[t].data(), hs[t].data(), cols.data());
  });
  if (core::needs_grad({&x})) core::attach(y, std::make_shared<AvgPoolNode>(g), {&x});
  return y;
}

MaxPool2d::MaxPool2d(const Pool2dOptions& options) : options_(options) { options_.validate("maxpool2d"); }

Shape MaxPool2d::output_shape(const Shape& input) const {
  return pool2d_output_shape("maxpool2d", input, options_);
}

int64_t MaxPool2d::forward_flops(const Shape& input) const {
  return core::shape_numel(output_shape(input)) * options_.kernel * options_.kernel;
}

AvgPool2d::AvgPool2d(const Pool2dOptions& options) : options_(options) { options_.validate("avgpool2d"); }

Shape AvgPool2d::output_shape(const Shape& input) const {
  return pool2d_output_shape("avgpool2d", input, options_);
}

int64_t AvgPool2d::forward_flops(const Shape& input) const {
  return core::shape_numel(output_shape(input)) * options_.kernel * options_.kernel;
}

}  // namespace deja::layers
