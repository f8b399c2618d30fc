// ConvPatchRows / ConvPatchGradSink (see conv_rows.h). Both walk a tile
// tap by tap (K-major): for tap (c, ky, kx) and the tile's pixels of one
// output row, the input pixels are one strided run of a line of plane c, so
// each run is a branch-free copy (or add) with the padded ends cut off
// once; the tile is transposed to or from rows in L1/L2.
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

namespace {

// One input plane with zero borders wide enough for every tap of every
// output pixel. The borders are zeroed when the geometry changes and, for
// reading, never touched again.
struct PaddedPlane {
  std::vector<float> data;
  int64_t rows = -1, cols = -1, pad_h = -1, pad_w = -1, height = -1, width = -1;
  int64_t prepare(const ConvGeometry& g) {  // returns the row length
    const int64_t r = std::max(g.height + 2 * g.pad_h, (g.out_h() - 1) * g.stride_h + g.kernel_h);
    const int64_t c = std::max(g.width + 2 * g.pad_w, (g.out_w() - 1) * g.stride_w + g.kernel_w);
    if (rows != r || cols != c || pad_h != g.pad_h || pad_w != g.pad_w || height != g.height ||
        width != g.width) {
      data.assign(static_cast<size_t>(r * c), 0.0f);
      rows = r, cols = c, pad_h = g.pad_h, pad_w = g.pad_w, height = g.height, width = g.width;
    }
    return cols;
  }
};

// The fast case of a tile: whole output rows [oy0, oy1) of one image. Each
// channel the columns touch is copied once into a zero-bordered plane, so
// every (tap, output row) run is a plain copy of out_w floats with no
// bounds to cut (the borders are written when the geometry changes and never
// touched again).
void fill_kmajor_rows(const float* image, const ConvGeometry& g, int64_t oy0, int64_t oy1, int64_t c0,
                      int64_t c1, float* dst, int64_t ld) {
  thread_local PaddedPlane pp;
  const int64_t cols = pp.prepare(g);
  const int64_t taps = g.kernel_h * g.kernel_w, ow = g.out_w(), sh = g.stride_h, sw = g.stride_w;
  const int64_t plane = g.height * g.width;
  float* padded = pp.data.data();
  for (int64_t c = c0 / taps; c * taps < c1; ++c) {
    const float* src_plane = image + c * plane;
    for (int64_t y = 0; y < g.height; ++y)
      std::copy(src_plane + y * g.width, src_plane + (y + 1) * g.width, padded + (y + g.pad_h) * cols + g.pad_w);
    for (int64_t j = std::max(c0, c * taps); j < std::min(c1, (c + 1) * taps); ++j) {
      const int64_t ky = (j - c * taps) / g.kernel_w, kx = (j - c * taps) % g.kernel_w;
      float* d = dst + (j - c0) * ld;
      const float* src = padded + ky * cols + kx;
      for (int64_t oy = oy0; oy < oy1; ++oy, d += ow) {
        const float* line = src + oy * sh * cols;
        if (sw == 1) {
          for (int64_t ox = 0; ox < ow; ++ox) d[ox] = line[ox];
        } else {
          for (int64_t ox = 0; ox < ow; ++ox) d[ox] = line[ox * sw];
        }
      }
    }
  }
}

// The adjoint of fill_kmajor_rows over all columns: per channel, the runs
// are added into the padded plane's rows that output rows [oy0, oy1) touch
// (zeroed first), which are then added into the image without their borders.
void add_kmajor_rows(const float* src, int64_t ld, const ConvGeometry& g, int64_t oy0, int64_t oy1,
                     float* image) {
  thread_local PaddedPlane pp;
  const int64_t cols = pp.prepare(g);
  const int64_t ow = g.out_w(), sh = g.stride_h, sw = g.stride_w, plane = g.height * g.width;
  const int64_t y0 = oy0 * sh, y1 = (oy1 - 1) * sh + g.kernel_h;  // padded rows touched
  float* padded = pp.data.data();
  for (int64_t c = 0; c < g.channels; ++c) {
    std::fill(padded + y0 * cols, padded + y1 * cols, 0.0f);
    for (int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const float* s = src + ((c * g.kernel_h + ky) * g.kernel_w + kx) * ld;
        float* dst = padded + ky * cols + kx;
        for (int64_t oy = oy0; oy < oy1; ++oy, s += ow) {
          float* line = dst + oy * sh * cols;
          if (sw == 1) {
            for (int64_t ox = 0; ox < ow; ++ox) line[ox] += s[ox];
          } else {
            for (int64_t ox = 0; ox < ow; ++ox) line[ox * sw] += s[ox];
          }
        }
      }
    float* image_plane = image + c * plane;
    for (int64_t y = std::max(y0, g.pad_h); y < std::min(y1, g.pad_h + g.height); ++y) {
      const float* from = padded + y * cols + g.pad_w;
      float* to = image_plane + (y - g.pad_h) * g.width;
      for (int64_t x = 0; x < g.width; ++x) to[x] += from[x];
    }
  }
}

}  // namespace

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
      fill_kmajor_rows(images_ + n * image_size, g_, p0 / ow, (p0 + cnt + ow - 1) / ow, c0, c1,
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
    add_kmajor_rows(kmajor.data(), count, g_, p0 / ow, (p0 + count + ow - 1) / ow, grads_ + n * image_size);
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

void ConvPatchGradSink::add_kmajor(int64_t r0, int64_t count, int64_t k, const float* cols, int64_t ld) {
  const int64_t ow = g_.out_w(), n = r0 / pixels_, p0 = r0 % pixels_;
  if (k == g_.patch_size() && p0 % ow == 0 && (count % ow == 0 || p0 + count == pixels_)) {
    add_kmajor_rows(cols, ld, g_, p0 / ow, (p0 + count + ow - 1) / ow,
                    grads_ + n * g_.channels * g_.height * g_.width);
    return;
  }
  RowSink::add_kmajor(r0, count, k, cols, ld);
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
