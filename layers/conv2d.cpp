// Conv2d forward/backward, two paths.
// Direct path (the plain dense product): per chunk of images (a few MB of
// patches, so they stay in L2/L3), K-major im2col into colsT [K, c*P] (rows
// are shifted input planes: contiguous copies), one GEMM W[M,K] . colsT =
// [M, c*P] (channel-major: each image's planes are contiguous runs, copied to
// NCHW with the bias added); in backward the same patches recomputed,
// dW += dY.colsT^T and dcolsT = W^T.dY per chunk, followed at once by the
// K-major col2im (contiguous adds). Nothing of batch size
// goes through DRAM except the input and output (the whole-batch patch matrix
// is 210 MB at CifarNet conv2), and there is no [P, M] <-> [M, P] transpose.
// 3x3 / stride 1 / padding 1 layers with 16+ channels each way take
// Winograd F(2x2, 3x3) instead (layers/winograd.h: 2.25x fewer multiplies,
// and no work on the padding taps that im2col multiplies by zero).
// General path (reuse engine, wrappers): ONE product call over the whole
// batch's patch rows (the reuse engine clusters over the batch), given as a
// ConvPatchRows source that makes tiles on demand (a wrapper may materialise
// them), then a per-image transpose [P, M] -> [M, P] with the bias added;
// backward: the reverse transpose of dY, the bias gradient, one product
// backward (dW and, when the input wants it, the patch gradient handed to a
// ConvPatchGradSink, which col2im's it tile by tile).
// BLAS runs outside our parallel regions (design.md section 2: the two pools
// must not fight for two cores).
#include "layers/conv2d.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/autograd.h"
#include "core/blas.h"
#include "core/parallel.h"
#include "core/plane_sum.h"
#include "core/serial_blas.h"
#include "core/transpose.h"
#include "layers/conv_rows.h"
#include "layers/winograd.h"

namespace deja::layers {

namespace {

std::string dim_error(const char* key, int64_t min, int64_t got) {
  return std::string("conv2d: ") + key + " must be >= " + std::to_string(min) + ", got " +
         std::to_string(got);
}

// A view of `shape` over `cache` when nobody else holds it and it is big
// enough, else over a fresh buffer that becomes the cache. Big buffers come
// from mmap, and faulting 200 MB in costs as much as a third of the GEMMs.
Tensor reuse_or_allocate(std::shared_ptr<core::Storage>& cache, const Shape& shape) {
  const int64_t n = core::shape_numel(shape);
  if (!cache || cache.use_count() != 1 || cache->size() < n) cache = Tensor::empty({n}).storage();
  return Tensor::view_of(cache, 0, shape);
}

// Per-thread scratch for buffers that live within one forward or backward
// (the output rows, dY rows, the patch gradient), shared by all conv layers.
enum Scratch { kOutRows = 0, kDyRows = 1, kChunkCols = 2, kChunkPlanes = 3, kChunkGrad = 4 };
Tensor scratch(Scratch slot, const Shape& shape) {
  thread_local std::shared_ptr<core::Storage> buffers[5];
  return reuse_or_allocate(buffers[slot], shape);
}

// out[M, P] = transpose(rows[P, M]) + bias (bias may be null).
void rows_to_planes(const float* rows, int64_t pixels, int64_t m_count, const float* bias,
                    float* out) {
  core::transpose(rows, pixels, m_count, m_count, out, pixels);
  if (!bias) return;
  for (int64_t m = 0; m < m_count; ++m) {
    const float b = bias[m];
    float* plane = out + m * pixels;
    for (int64_t p = 0; p < pixels; ++p) plane[p] += b;
  }
}

// rows[P, M] = transpose(planes[M, P]).
void planes_to_rows(const float* planes, int64_t pixels, int64_t m_count, float* rows) {
  core::transpose(planes, m_count, pixels, pixels, rows, m_count);
}

// db[m] = beta * db[m] + the sum of dY's planes of channel m, per output
// channel (disjoint writes, order fixed: reproducible for any thread count).
void bias_grad(const float* dy, int64_t batch, int64_t m_count, int64_t pixels, float beta, float* db) {
  core::parallel_for(m_count, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      double s = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        s += core::sum_run(dy + (n * m_count + m) * pixels, pixels);
      }
      db[m] = static_cast<float>(s) + (beta != 0.0f ? beta * db[m] : 0.0f);
    }
  });
}

class Conv2dNode final : public core::Node {
 public:
  Conv2dNode(const ConvGeometry& g, int64_t batch, std::shared_ptr<core::Product> product,
             std::unique_ptr<core::ProductSaved> saved, Tensor weight_rows)
      : g_(g),
        batch_(batch),
        product_(std::move(product)),
        saved_(std::move(saved)),
        w_(std::move(weight_rows)) {}

  const char* op_name() const override { return "conv2d"; }

  void backward(const Tensor& grad_output) override {
    const int64_t pixels = g_.out_h() * g_.out_w(), m_count = w_.size(0), k = w_.size(1);
    const float* go = grad_output.data();

    Tensor dy = scratch(kDyRows, {batch_ * pixels, m_count});
    core::parallel_for(batch_, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n)
        planes_to_rows(go + n * m_count * pixels, pixels, m_count, dy.data() + n * pixels * m_count);
    });

    if (input_needs_grad(2)) {
      float beta;
      float* db = input_grad(2, &beta);
      bias_grad(go, batch_, m_count, pixels, beta, db);
    }

    float* dw = nullptr;
    if (input_needs_grad(1)) {
      float beta;
      dw = input_grad(1, &beta);
      if (beta == 0.0f) std::fill(dw, dw + m_count * k, 0.0f);  // the product accumulates
    }

    if (!input_needs_grad(0)) {  // first layer: no patch gradient at all
      product_->backward_rows(*saved_, dy, w_, dw, nullptr);
      return;
    }
    float beta;
    float* dx = input_grad(0, &beta);
    const int64_t image_size = g_.channels * g_.height * g_.width;
    if (beta == 0.0f) {
      core::parallel_for(batch_ * image_size, [&](int64_t b, int64_t e) { std::fill(dx + b, dx + e, 0.0f); },
                         1 << 16);
    }
    ConvPatchGradSink sink(dx, g_);  // col2im of each tile of patch gradient
    product_->backward_rows(*saved_, dy, w_, dw, &sink);
  }

  void release() override {
    saved_.reset();
    product_.reset();
    w_ = Tensor();
  }

 private:
  ConvGeometry g_;
  int64_t batch_;
  std::shared_ptr<core::Product> product_;
  std::unique_ptr<core::ProductSaved> saved_;
  Tensor w_;  // the weight as [M, K], sharing the parameter's storage
};


// ---- Direct path -----------------------------------------------------------

// Each thread of our pool takes a contiguous range of images and walks it in
// chunks small enough to stay in its own cache between im2col, the GEMM and
// the copy / col2im; its GEMMs are single-threaded (one OpenBLAS call per
// chunk would otherwise wake, spin for and wait on OpenBLAS's workers: on two
// cores that synchronisation cost a fifth of the step). The image ranges are
// fixed by the thread count, so results repeat for a given thread count.
constexpr int64_t kChunkBytesPerThread = int64_t{2} << 20;

int64_t chunk_images(int64_t pixels, int64_t k, int64_t m_count) {
  const int64_t per_image = pixels * (k + m_count) * static_cast<int64_t>(sizeof(float));
  return std::max<int64_t>(1, kChunkBytesPerThread / per_image);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class DirectConvNode final : public core::Node {
 public:
  DirectConvNode(const ConvGeometry& g, Tensor x, Tensor weight_rows, std::shared_ptr<core::Product> product,
                 bool winograd)
      : g_(g), x_(std::move(x)), w_(std::move(weight_rows)), product_(std::move(product)), winograd_(winograd) {}

  const char* op_name() const override { return "conv2d"; }

  void backward(const Tensor& grad_output) override {
    const auto t0 = std::chrono::steady_clock::now();
    if (winograd_) {
      backward_winograd(grad_output);
      product_->record_direct_call(0.0, seconds_since(t0));
      return;
    }
    const int64_t batch = x_.size(0), pixels = g_.out_h() * g_.out_w();
    const int64_t m_count = w_.size(0), k = w_.size(1);
    const int64_t image_size = g_.channels * g_.height * g_.width;
    const int64_t chunk = chunk_images(pixels, k, m_count);
    const bool want_dx = input_needs_grad(0), want_dw = input_needs_grad(1), want_db = input_needs_grad(2);

    float dx_beta = 0.0f;
    float* dx = want_dx ? input_grad(0, &dx_beta) : nullptr;
    // Per (image, channel) sums of dY and per-thread dW partials, reduced in a
    // fixed order below.
    std::vector<double> plane_sums(want_db ? batch * m_count : 0);
    const int threads = core::num_threads();
    std::vector<Tensor> dw_parts(want_dw ? threads : 0);

    const float* go = grad_output.data();
    const float* xd = x_.data();
    const float* wd = w_.data();
    {
      core::SerialBlasScope serial;
      core::parallel_for_indexed(batch, [&](int t, int64_t b, int64_t e) {
        Tensor cols = scratch(kChunkCols, {chunk * pixels, k});
        Tensor dyt = scratch(kChunkPlanes, {m_count, chunk * pixels});
        Tensor dcols = want_dx ? scratch(kChunkGrad, {chunk * pixels, k}) : Tensor();
        float* dw_part = nullptr;
        if (want_dw) {
          dw_parts[t] = Tensor::zeros({m_count, k});
          dw_part = dw_parts[t].data();
        }
        for (int64_t n0 = b; n0 < e; n0 += chunk) {
          const int64_t c = std::min(chunk, e - n0), cp = c * pixels;
          float* cd = cols.data();
          float* td = dyt.data();
          for (int64_t i = 0; i < c; ++i) {
            const int64_t n = n0 + i;
            if (want_dw) im2col_kmajor(xd + n * image_size, g_, cd + i * pixels, cp);
            for (int64_t m = 0; m < m_count; ++m) {
              const float* src = go + (n * m_count + m) * pixels;
              float* dst = td + m * cp + i * pixels;
              const float part = core::copy_and_sum_run(src, dst, pixels);
              if (want_db) plane_sums[n * m_count + m] = part;
            }
          }
          if (want_dw)
            core::gemm(core::Trans::No, core::Trans::Yes, m_count, k, cp, 1.0f, td, cp, cd, cp, 1.0f, dw_part, k);
          if (want_dx) {
            float* dc = dcols.data();
            core::gemm(core::Trans::Yes, core::Trans::No, k, cp, m_count, 1.0f, wd, k, td, cp, 0.0f, dc, cp);
            for (int64_t i = 0; i < c; ++i) {
              float* image = dx + (n0 + i) * image_size;
              if (dx_beta == 0.0f) std::fill(image, image + image_size, 0.0f);
              col2im_kmajor_add(dc + i * pixels, cp, g_, image);
            }
          }
        }
      });
    }
    if (want_dw) {
      float beta;
      float* dw = input_grad(1, &beta);
      const int64_t count = m_count * k;
      core::parallel_for(count, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          float sum = beta != 0.0f ? dw[j] : 0.0f;
          for (const Tensor& part : dw_parts)
            if (part.numel()) sum += part.data()[j];
          dw[j] = sum;
        }
      }, 4096);
    }
    if (want_db) {
      float beta;
      float* db = input_grad(2, &beta);
      for (int64_t m = 0; m < m_count; ++m) {
        double s = 0.0;
        for (int64_t n = 0; n < batch; ++n) s += plane_sums[n * m_count + m];
        db[m] = static_cast<float>(s) + (beta != 0.0f ? db[m] : 0.0f);
      }
    }
    product_->record_direct_call(0.0, seconds_since(t0));
  }

  void release() override {
    x_ = Tensor();
    w_ = Tensor();
    product_.reset();
  }

 private:
  void backward_winograd(const Tensor& grad_output) {
    const int64_t batch = x_.size(0), m_count = w_.size(0);
    float beta_db = 0.0f, beta_dx = 0.0f, beta_dw = 0.0f;
    float* db = input_needs_grad(2) ? input_grad(2, &beta_db) : nullptr;
    if (db) bias_grad(grad_output.data(), batch, m_count, g_.out_h() * g_.out_w(), beta_db, db);
    float* dx = input_needs_grad(0) ? input_grad(0, &beta_dx) : nullptr;
    float* dw = input_needs_grad(1) ? input_grad(1, &beta_dw) : nullptr;
    winograd_backward(x_.data(), grad_output.data(), batch, g_, w_.data(), m_count, dx, beta_dx, dw, beta_dw);
  }

  ConvGeometry g_;
  Tensor x_;  // the input, detached: patches are recomputed per chunk
  Tensor w_;  // the weight as [M, K], sharing the parameter's storage
  std::shared_ptr<core::Product> product_;  // only for its statistics
  bool winograd_;  // 3x3 / stride 1 / pad 1: layers/winograd.h instead of im2col
};

// out (NCHW) = conv(x) + bias, chunk by chunk per thread (see above).
void direct_forward(const Tensor& x, const ConvGeometry& g, const Tensor& w_rows, const float* bias, Tensor& out) {
  const int64_t batch = x.size(0), pixels = g.out_h() * g.out_w();
  const int64_t m_count = w_rows.size(0), k = w_rows.size(1);
  const int64_t image_size = g.channels * g.height * g.width;
  const int64_t chunk = chunk_images(pixels, k, m_count);
  const float* xd = x.data();
  const float* wd = w_rows.data();
  float* od = out.data();
  core::SerialBlasScope serial;
  core::parallel_for(batch, [&](int64_t b, int64_t e) {
    Tensor cols = scratch(kChunkCols, {chunk * pixels, k});
    Tensor yt = scratch(kChunkPlanes, {m_count, chunk * pixels});
    float* cd = cols.data();
    float* yd = yt.data();
    for (int64_t n0 = b; n0 < e; n0 += chunk) {
      const int64_t c = std::min(chunk, e - n0), cp = c * pixels;
      for (int64_t i = 0; i < c; ++i) im2col_kmajor(xd + (n0 + i) * image_size, g, cd + i * pixels, cp);
      core::gemm(core::Trans::No, core::Trans::No, m_count, cp, k, 1.0f, wd, k, cd, cp, 0.0f, yd, cp);
      for (int64_t i = 0; i < c; ++i)
        for (int64_t m = 0; m < m_count; ++m) {
          const float bm = bias ? bias[m] : 0.0f;
          const float* src = yd + m * cp + i * pixels;
          float* dst = od + ((n0 + i) * m_count + m) * pixels;
          for (int64_t p = 0; p < pixels; ++p) dst[p] = src[p] + bm;
        }
    }
  });
}

}  // namespace

void Conv2dOptions::validate() const {
  if (in_channels < 1) throw std::invalid_argument(dim_error("in_channels", 1, in_channels));
  if (out_channels < 1) throw std::invalid_argument(dim_error("out_channels", 1, out_channels));
  if (kernel_h < 1) throw std::invalid_argument(dim_error("kernel_h", 1, kernel_h));
  if (kernel_w < 1) throw std::invalid_argument(dim_error("kernel_w", 1, kernel_w));
  if (stride < 1) throw std::invalid_argument(dim_error("stride", 1, stride));
  if (padding < 0) throw std::invalid_argument(dim_error("padding", 0, padding));
}

Conv2d::Conv2d(const Conv2dOptions& options, core::Rng& init_rng)
    : options_(options), product_(core::make_dense_product()) {
  options_.validate();
  const int64_t fan_in = options_.in_channels * options_.kernel_h * options_.kernel_w;
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  weight_ = Tensor::empty(
      {options_.out_channels, options_.in_channels, options_.kernel_h, options_.kernel_w});
  for (int64_t i = 0; i < weight_.numel(); ++i) weight_[i] = init_rng.uniform(-bound, bound);
  register_parameter("weight", &weight_);
  if (options_.bias) {
    bias_ = Tensor::empty({options_.out_channels});
    for (int64_t i = 0; i < bias_.numel(); ++i) bias_[i] = init_rng.uniform(-bound, bound);
    register_parameter("bias", &bias_);
  }
}

void Conv2d::set_product(std::shared_ptr<core::Product> product) {
  if (!product) throw std::invalid_argument("conv2d: set_product needs a product, got null");
  product_ = std::move(product);
}

Shape Conv2d::output_shape(const Shape& input) const {
  const auto& o = options_;
  const std::string expected = "[N, " + std::to_string(o.in_channels) + ", H, W]";
  if (input.size() != 4 || input[1] != o.in_channels || input[0] < 1)
    throw std::invalid_argument("conv2d: input " + core::shape_to_string(input) +
                                " does not fit: expected " + expected);
  if (input[2] + 2 * o.padding < o.kernel_h || input[3] + 2 * o.padding < o.kernel_w)
    throw std::invalid_argument(
        "conv2d: input " + core::shape_to_string(input) + " does not fit: expected " + expected +
        " with H + 2*padding >= " + std::to_string(o.kernel_h) + " and W + 2*padding >= " +
        std::to_string(o.kernel_w) + " (padding " + std::to_string(o.padding) + ")");
  ConvGeometry g = geometry(input);
  return {input[0], o.out_channels, g.out_h(), g.out_w()};
}

ConvGeometry Conv2d::geometry(const Shape& input) const {
  ConvGeometry g;
  g.channels = options_.in_channels;
  g.height = input.size() == 4 ? input[2] : 0;
  g.width = input.size() == 4 ? input[3] : 0;
  g.kernel_h = options_.kernel_h;
  g.kernel_w = options_.kernel_w;
  g.stride_h = g.stride_w = options_.stride;
  g.pad_h = g.pad_w = options_.padding;
  return g;
}

int64_t Conv2d::forward_flops(const Shape& input) const {
  Shape out = output_shape(input);
  const int64_t k = options_.in_channels * options_.kernel_h * options_.kernel_w;
  return 2 * core::shape_numel(out) * k;
}

std::string Conv2d::dense_algorithm(const Shape& input) const {
  if (!product_->is_plain_dense()) return "";
  return winograd_applies(geometry(input), options_.out_channels) ? "winograd" : "im2col";
}

Tensor Conv2d::forward(const Tensor& x) {
  Shape out_shape = output_shape(x.shape());
  const ConvGeometry g = geometry(x.shape());
  const int64_t batch = out_shape[0], m_count = out_shape[1];
  const int64_t pixels = g.out_h() * g.out_w(), k = g.patch_size();

  const bool grad = core::needs_grad({&x, &weight_, &bias_});
  // Members are read here, not at construction: the arena rebinds them.
  Tensor w_rows = weight_.detached().reshaped({m_count, k});
  const float* bias = options_.bias ? bias_.data() : nullptr;

  if (product_->is_plain_dense()) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = Tensor::empty(out_shape);
    const bool winograd = winograd_applies(g, m_count);
    if (winograd)
      winograd_forward(x.data(), batch, g, w_rows.data(), m_count, bias, out.data());
    else
      direct_forward(x, g, w_rows, bias, out);
    product_->record_direct_call(seconds_since(t0), 0.0);
    if (grad)
      core::attach(out, std::make_shared<DirectConvNode>(g, x.detached(), w_rows, product_, winograd),
                   {&x, &weight_, &bias_});
    return out;
  }

  // The patch rows are made tile by tile by whoever reads them (the reuse
  // engine clusters them in cache; a wrapper may materialise them).
  const ConvPatchRows patches(x.data(), batch, g);
  Tensor y_rows = scratch(kOutRows, {batch * pixels, m_count});
  std::unique_ptr<core::ProductSaved> saved = product_->forward_rows(patches, w_rows, y_rows, grad);

  Tensor out = Tensor::empty(out_shape);
  core::parallel_for(batch, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      rows_to_planes(y_rows.data() + n * pixels * m_count, pixels, m_count, bias,
                     out.data() + n * m_count * pixels);
  });

  if (grad)
    core::attach(out,
                 std::make_shared<Conv2dNode>(g, batch, product_, std::move(saved), w_rows),
                 {&x, &weight_, &bias_});
  return out;
}

}  // namespace deja::layers
