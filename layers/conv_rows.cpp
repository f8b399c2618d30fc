// ConvPatchRows / ConvPatchGradSink (see conv_rows.h). Both walk a tile
// tap by tap (K-major): for tap (c, ky, kx) and the tile's pixels of one
// output row, the input pixels are one strided run of a line of plane c.
// Tiles of whole output rows go through im2col.h's padded-plane K-major
// kernels (branch-free runs); others cut each run's padded ends here. The
// tile is transposed to or from rows in L1/L2.
#include "layers/conv_rows.h"

#include <algorithm>
#include <vector>

#include "core/transpose.h"

namespace deja::layers {

namespace {

struct Tap {
  int64_t c, ky, kx;
};

Tap tap_of(const ConvGeometry& g, int64_t col) {
  const int64_t taps = g.kernel_h * g.kernel_w, t = col % taps;
  return {col / taps, t / g.kernel_w, t % g.kernel_w};
}

// For output row oy's pixels [ox0, ox1) and tap (ky, kx): the input line
// (null when it lies in the padding) and the ox range [lo, hi) whose input
// column ix = ox * sw - pw + kx falls inside the image.
struct Run {
  int64_t iy, lo, hi;
};

Run run_of(const ConvGeometry& g, int64_t oy, int64_t ox0, int64_t ox1, const Tap& t) {
  Run r;
  r.iy = oy * g.stride_h - g.pad_h + t.ky;
  const int64_t first = g.pad_w - t.kx;  // ox * sw >= first
  const int64_t last = g.width - 1 + g.pad_w - t.kx;  // ox * sw <= last
  const int64_t lo = first <= 0 ? 0 : (first + g.stride_w - 1) / g.stride_w;
  const int64_t hi = last < 0 ? 0 : last / g.stride_w + 1;
  r.lo = std::clamp(lo, ox0, ox1);
  r.hi = std::clamp(hi, r.lo, ox1);
  return r;
}

}  // namespace

ConvPatchRows::ConvPatchRows(const float* images, int64_t batch, const ConvGeometry& g)
    : images_(images), batch_(batch), pixels_(g.out_h() * g.out_w()), g_(g) {}

void ConvPatchRows::fill(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                         int64_t ld) const {
  thread_local std::vector<float> kmajor;
  kmajor.resize(static_cast<size_t>((c1 - c0) * count));
  fill_kmajor(r0, count, c0, c1, kmajor.data(), count);
  core::transpose(kmajor.data(), c1 - c0, count, count, out, ld);
}

void ConvPatchRows::fill_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                                int64_t ld) const {
  const int64_t ow = g_.out_w(), sw = g_.stride_w;
  const int64_t plane = g_.height * g_.width, image_size = g_.channels * plane;
  for (int64_t r = r0; r < r0 + count;) {
    const int64_t n = r / pixels_, p0 = r % pixels_;
    const int64_t cnt = std::min(pixels_ - p0, r0 + count - r);
    if (p0 % ow == 0 && (cnt % ow == 0 || p0 + cnt == pixels_)) {
      im2col_kmajor(images_ + n * image_size, g_, p0 / ow, (p0 + cnt + ow - 1) / ow, c0, c1,
                    out + (r - r0), ld);
      r += cnt;
      continue;
    }
    for (int64_t j = c0; j < c1; ++j) {
      const Tap t = tap_of(g_, j);
      const float* src_plane = images_ + n * image_size + t.c * plane;
      float* dst = out + (j - c0) * ld + (r - r0);  // pixel p at dst[p - p0]
      for (int64_t p = p0; p < p0 + cnt;) {
        const int64_t oy = p / ow, ox0 = p - oy * ow, ox1 = std::min(ow, ox0 + (p0 + cnt - p));
        float* d = dst + (p - p0);  // output pixel (oy, ox) at d[ox - ox0]
        const Run run = run_of(g_, oy, ox0, ox1, t);
        if (run.iy < 0 || run.iy >= g_.height) {
          std::fill(d, d + (ox1 - ox0), 0.0f);
        } else {
          // Input pixel of ox: src_plane[at + ox * sw] (in the image for ox in [lo, hi)).
          const int64_t at = run.iy * g_.width - g_.pad_w + t.kx;
          std::fill(d, d + (run.lo - ox0), 0.0f);
          float* in = d + (run.lo - ox0);
          const int64_t len = run.hi - run.lo;
          if (sw == 1) {
            const float* line = src_plane + at + run.lo;
            for (int64_t q = 0; q < len; ++q) in[q] = line[q];
          } else {
            for (int64_t q = 0; q < len; ++q) in[q] = src_plane[at + (run.lo + q) * sw];
          }
          std::fill(d + (run.hi - ox0), d + (ox1 - ox0), 0.0f);
        }
        p += ox1 - ox0;
      }
    }
    r += cnt;
  }
}

void ConvPatchRows::prefetch(int64_t r0, int64_t count, int64_t c0, int64_t c1) const {
  if (count <= 0 || c1 <= c0) return;
  const int64_t ow = g_.out_w(), taps = g_.kernel_h * g_.kernel_w;
  const int64_t plane = g_.height * g_.width, image_size = g_.channels * plane;
  constexpr int64_t kLine = 64 / sizeof(float);
  for (int64_t r = r0; r < r0 + count;) {  // per image: its output rows' input lines
    const int64_t n = r / pixels_, p0 = r % pixels_, cnt = std::min(pixels_ - p0, r0 + count - r);
    const int64_t oy0 = p0 / ow, oy1 = (p0 + cnt - 1) / ow + 1;
    const int64_t y0 = std::max<int64_t>(0, oy0 * g_.stride_h - g_.pad_h);
    const int64_t y1 = std::min(g_.height, (oy1 - 1) * g_.stride_h - g_.pad_h + g_.kernel_h);
    const int64_t span = (y1 - y0) * g_.width;  // the lines' floats, contiguous in a plane
    for (int64_t c = c0 / taps; c * taps < c1 && span > 0; ++c) {
      const float* begin = images_ + n * image_size + c * plane + y0 * g_.width;
      for (int64_t at = 0; at < span; at += kLine) __builtin_prefetch(begin + at);
      __builtin_prefetch(begin + span - 1);  // the last line when begin is not line-aligned
    }
    r += cnt;
  }
}

ConvPatchGradSink::ConvPatchGradSink(float* image_grads, const ConvGeometry& g)
    : grads_(image_grads), pixels_(g.out_h() * g.out_w()), g_(g) {}

void ConvPatchGradSink::add(int64_t r0, int64_t count, const float* rows, int64_t ld) {
  thread_local std::vector<float> kmajor;
  const int64_t k = g_.patch_size(), ow = g_.out_w(), sw = g_.stride_w;
  const int64_t plane = g_.height * g_.width, image_size = g_.channels * plane;
  const int64_t n = r0 / pixels_, p0 = r0 % pixels_;
  kmajor.resize(static_cast<size_t>(k * count));
  core::transpose(rows, count, k, ld, kmajor.data(), count);
  if (p0 % ow == 0 && (count % ow == 0 || p0 + count == pixels_)) {
    col2im_kmajor_add(kmajor.data(), count, g_, p0 / ow, (p0 + count + ow - 1) / ow, 0, k,
                      grads_ + n * image_size);
    return;
  }
  for (int64_t j = 0; j < k; ++j) {
    const Tap t = tap_of(g_, j);
    float* dst_plane = grads_ + n * image_size + t.c * plane;
    const float* src = kmajor.data() + j * count;  // pixel p at src[p - p0]
    for (int64_t p = p0; p < p0 + count;) {
      const int64_t oy = p / ow, ox0 = p - oy * ow, ox1 = std::min(ow, ox0 + (p0 + count - p));
      const Run run = run_of(g_, oy, ox0, ox1, t);
      if (run.iy >= 0 && run.iy < g_.height) {
        const float* in = src + (p - p0) + (run.lo - ox0);  // pixel (oy, lo) onwards
        const int64_t at = run.iy * g_.width - g_.pad_w + t.kx;  // input pixel of ox: at + ox * sw
        const int64_t len = run.hi - run.lo;
        if (sw == 1) {
          float* line = dst_plane + at + run.lo;
          for (int64_t q = 0; q < len; ++q) line[q] += in[q];
        } else {
          for (int64_t q = 0; q < len; ++q) dst_plane[at + (run.lo + q) * sw] += in[q];
        }
      }
      p += ox1 - ox0;
    }
  }
}

void ConvPatchGradSink::add_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1,
                                   const float* cols, int64_t ld) {
  const int64_t ow = g_.out_w(), n = r0 / pixels_, p0 = r0 % pixels_;
  if (p0 % ow == 0 && (count % ow == 0 || p0 + count == pixels_)) {
    col2im_kmajor_add(cols, ld, g_, p0 / ow, (p0 + count + ow - 1) / ow, c0, c1,
                      grads_ + n * g_.channels * g_.height * g_.width);
    return;
  }
  RowSink::add_kmajor(r0, count, c0, c1, cols, ld);
}

float conv_patch_value(const float* images, const ConvGeometry& g, int64_t row, int64_t col) {
  const int64_t pixels = g.out_h() * g.out_w(), n = row / pixels, p = row % pixels;
  const int64_t oy = p / g.out_w(), ox = p % g.out_w();
  const Tap t = tap_of(g, col);
  const int64_t iy = oy * g.stride_h - g.pad_h + t.ky, ix = ox * g.stride_w - g.pad_w + t.kx;
  if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) return 0.0f;
  return images[((n * g.channels + t.c) * g.height + iy) * g.width + ix];
}

}  // namespace deja::layers
