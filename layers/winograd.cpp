// Winograd F(2x2, 3x3) convolution (see winograd.h for the scheme).
// 1-D matrices used below (Lavin & Gray's F(2, 3)):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   (input tile, 4 -> 4)
//   G   = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]         (kernel, 3 -> 4)
//   A^T = [1 1 1 0; 0 1 -1 -1]                        (output tile, 4 -> 2)
// Layout: a chunk of `lanes` images is processed together, and every tile
// transform works on all images of the chunk at once: one channel's plane is
// first transposed to [pixel][image] (in a per-thread scratch, in cache), so a
// tile's 16 inputs are 16 contiguous runs of `lanes` floats and the transform
// is plain vector arithmetic with no per-tile set-up (VGG's deep layers have
// 4x4 and 2x2 planes: one or four tiles per plane, where transforms per plane
// cost more than the GEMMs). Transformed tensors are [16][channel][tile *
// lanes + image]; the GEMMs do not care how the columns are ordered.
#include "layers/winograd.h"

#include <algorithm>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/serial_blas.h"
#include "core/transpose.h"

namespace deja::layers {

namespace {

// Buffers of the calling thread (the transformed kernels and tensors of one
// layer call), kept between calls: faulting fresh pages in every step costs
// more than the math. Pointers to them go to the pool's workers.
enum BufferSlot { kKernels = 0, kInput = 1, kProducts = 2, kForwardKernels = 3 };
float* buffer(BufferSlot slot, int64_t n) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(n);
  return b.data();
}

}  // namespace

namespace winograd {

namespace {

// G rot180(g) G^T = S (G g G^T) S^T with S the row permutation (3, 1, 2, 0):
// position (p, q) of a rotated kernel's transform is (S[p], S[q]) of the kernel's.
constexpr int kRotated[4] = {3, 1, 2, 0};

}  // namespace

void transform_weights(const float* w, int64_t m, int64_t c, bool for_input_grad, float* u) {
  const int64_t xi_stride = position_stride(m * c);
  if (for_input_grad) {  // the forward transform, then per position a [m, c] -> [c, m] transpose
    float* forward = buffer(kForwardKernels, kTile * xi_stride);
    transform_weights(w, m, c, false, forward);
    core::parallel_for(kTile, [&](int64_t b, int64_t e) {
      for (int64_t xi = b; xi < e; ++xi) {
        const int64_t source = 4 * kRotated[xi / 4] + kRotated[xi % 4];
        core::transpose(forward + source * xi_stride, m, c, c, u + xi * xi_stride, m);
      }
    });
    return;
  }
  core::parallel_for(m, [&](int64_t begin, int64_t end) {
    for (int64_t mi = begin; mi < end; ++mi)
      for (int64_t ci = 0; ci < c; ++ci) {
        const float* g = w + (mi * c + ci) * 9;
        float t[4][3];  // G g
        for (int s = 0; s < 3; ++s) {
          t[0][s] = g[s];
          t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
          t[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
          t[3][s] = g[6 + s];
        }
        float* out = u + mi * c + ci;
        for (int p = 0; p < 4; ++p) {  // (G g) G^T
          out[(4 * p + 0) * xi_stride] = t[p][0];
          out[(4 * p + 1) * xi_stride] = 0.5f * (t[p][0] + t[p][1] + t[p][2]);
          out[(4 * p + 2) * xi_stride] = 0.5f * (t[p][0] - t[p][1] + t[p][2]);
          out[(4 * p + 3) * xi_stride] = t[p][2];
        }
      }
  });
}

void weight_grad_from_transformed(const float* du, int64_t m, int64_t c, float beta, float* dw) {
  const int64_t xi_stride = position_stride(m * c);
  core::parallel_for(m, [&](int64_t begin, int64_t end) {
    for (int64_t mi = begin; mi < end; ++mi)
      for (int64_t ci = 0; ci < c; ++ci) {
        const float* d = du + mi * c + ci;
        float s[3][4];  // G^T dU
        for (int q = 0; q < 4; ++q) {
          const float d0 = d[(0 + q) * xi_stride], d1 = d[(4 + q) * xi_stride];
          const float d2 = d[(8 + q) * xi_stride], d3 = d[(12 + q) * xi_stride];
          s[0][q] = d0 + 0.5f * (d1 + d2);
          s[1][q] = 0.5f * (d1 - d2);
          s[2][q] = 0.5f * (d1 + d2) + d3;
        }
        float* g = dw + (mi * c + ci) * 9;
        for (int a = 0; a < 3; ++a) {  // (G^T dU) G
          const float v[3] = {s[a][0] + 0.5f * (s[a][1] + s[a][2]), 0.5f * (s[a][1] - s[a][2]),
                              0.5f * (s[a][1] + s[a][2]) + s[a][3]};
          for (int b = 0; b < 3; ++b) g[a * 3 + b] = (beta != 0.0f ? beta * g[a * 3 + b] : 0.0f) + v[b];
        }
      }
  });
}

}  // namespace winograd

namespace {

using winograd::kTile;
using winograd::position_stride;

// Floats of the transformed input and output one chunk of images may hold
// (64 MB): the GEMMs' n (tiles x images) must be in the thousands for OpenBLAS
// to run near its peak on the 64-128 channel layers; 16 MB chunks were 10-30%
// slower on VGG's layers, 4 MB ones up to 2x (docs/perf-notes.md, round 5).
constexpr int64_t kChunkFloats = int64_t{16} << 20;

// Per-thread scratch of the plane transforms: one plane of the chunk as
// [pixel][image], a run of zeros (the padding) and a run to discard into.
struct PlaneScratch {
  float *plane, *zeros, *discard;
};
PlaneScratch plane_scratch(int64_t pixels, int64_t lanes) {
  thread_local std::vector<float> buffer;
  const auto need = static_cast<size_t>((pixels + 2) * lanes);
  if (buffer.size() < need) buffer.assign(need, 0.0f);
  std::fill(buffer.begin() + pixels * lanes, buffer.begin() + (pixels + 1) * lanes, 0.0f);
  return {buffer.data(), buffer.data() + pixels * lanes, buffer.data() + (pixels + 1) * lanes};
}

struct Chunking {
  int64_t tiles_w, tiles_h, tiles, lanes;  // tiles per image; images per chunk

  // The chunk starting at image n0 (the last one may hold fewer images).
  Chunking at(int64_t n0, int64_t batch) const {
    Chunking c = *this;
    c.lanes = std::min(lanes, batch - n0);
    return c;
  }
  int64_t columns() const { return tiles * lanes; }  // the GEMMs' n
};

// Chunks of an [N, ., h, w] batch holding at most kChunkFloats of
// transformed tensors, floats_per_tile of them per tile.
Chunking chunking(int64_t h, int64_t w, int64_t batch, int64_t floats_per_tile) {
  Chunking k;
  k.tiles_h = (h + 1) / 2;
  k.tiles_w = (w + 1) / 2;
  k.tiles = k.tiles_h * k.tiles_w;
  k.lanes = std::clamp<int64_t>(kChunkFloats / std::max<int64_t>(1, floats_per_tile * k.tiles), 1, batch);
  return k;
}

// Channel `ch` of images n0 .. n0 + lanes of src[N, channels, h, w] as
// [pixel][image] in `plane`.
void gather_plane(const float* src, int64_t channels, int64_t ch, int64_t pixels, int64_t n0, int64_t lanes,
                  float* plane) {
  core::transpose(src + (n0 * channels + ch) * pixels, lanes, pixels, channels * pixels, plane, lanes);
}

// dst[n0 + i, ch] = beta * dst + (the [pixel][image] plane)^T + bias, via `rows` [lanes][pixels].
void scatter_plane(const float* plane, int64_t pixels, int64_t lanes, float bias, float beta, float* rows,
                   float* dst, int64_t channels, int64_t ch, int64_t n0) {
  core::transpose(plane, pixels, lanes, lanes, rows, pixels);
  for (int64_t i = 0; i < lanes; ++i) {
    const float* r = rows + i * pixels;
    float* out = dst + ((n0 + i) * channels + ch) * pixels;
    if (beta == 0.0f)
      for (int64_t p = 0; p < pixels; ++p) out[p] = r[p] + bias;
    else
      for (int64_t p = 0; p < pixels; ++p) out[p] = beta * out[p] + r[p] + bias;
  }
}

// v[xi * xi_stride + tile * lanes + image] = (B^T d B)[xi] of every tile of
// one channel, its plane given as [pixel][image].
void transform_input(const float* plane, const float* zeros, int64_t h, int64_t w, const Chunking& k,
                     float* v, int64_t xi_stride) {
  const int64_t lanes = k.lanes;
  for (int64_t i = 0; i < k.tiles_h; ++i)
    for (int64_t j = 0; j < k.tiles_w; ++j) {
      const float* d[4][4];  // the 4x4 window, padding read from `zeros`
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) {
          const int64_t y = 2 * i - 1 + r, x = 2 * j - 1 + s;
          d[r][s] = (y >= 0 && y < h && x >= 0 && x < w) ? plane + (y * w + x) * lanes : zeros;
        }
      float* o = v + (i * k.tiles_w + j) * lanes;
#pragma GCC ivdep
      for (int64_t n = 0; n < lanes; ++n) {
        float e[4][4];  // d B
        for (int r = 0; r < 4; ++r) {
          e[r][0] = d[r][0][n] - d[r][2][n];
          e[r][1] = d[r][1][n] + d[r][2][n];
          e[r][2] = d[r][2][n] - d[r][1][n];
          e[r][3] = d[r][1][n] - d[r][3][n];
        }
        for (int q = 0; q < 4; ++q) {  // B^T (d B)
          o[(0 + q) * xi_stride + n] = e[0][q] - e[2][q];
          o[(4 + q) * xi_stride + n] = e[1][q] + e[2][q];
          o[(8 + q) * xi_stride + n] = e[2][q] - e[1][q];
          o[(12 + q) * xi_stride + n] = e[1][q] - e[3][q];
        }
      }
    }
}

// v[xi * xi_stride + tile * lanes + image] = (A z A^T)[xi], z the 2x2 tile of
// one channel's output gradient (zero outside), its plane as [pixel][image].
void transform_output_grad(const float* plane, const float* zeros, int64_t h, int64_t w, const Chunking& k,
                           float* v, int64_t xi_stride) {
  const int64_t lanes = k.lanes;
  for (int64_t i = 0; i < k.tiles_h; ++i)
    for (int64_t j = 0; j < k.tiles_w; ++j) {
      const float* z[2][2];
      for (int r = 0; r < 2; ++r)
        for (int s = 0; s < 2; ++s) {
          const int64_t y = 2 * i + r, x = 2 * j + s;
          z[r][s] = (y < h && x < w) ? plane + (y * w + x) * lanes : zeros;
        }
      float* o = v + (i * k.tiles_w + j) * lanes;
#pragma GCC ivdep
      for (int64_t n = 0; n < lanes; ++n) {
        // z A^T per row: [z0, z0 + z1, z0 - z1, -z1]; then A over the two rows alike.
        const float a[4] = {z[0][0][n], z[0][0][n] + z[0][1][n], z[0][0][n] - z[0][1][n], -z[0][1][n]};
        const float b[4] = {z[1][0][n], z[1][0][n] + z[1][1][n], z[1][0][n] - z[1][1][n], -z[1][1][n]};
        for (int q = 0; q < 4; ++q) {
          o[(0 + q) * xi_stride + n] = a[q];
          o[(4 + q) * xi_stride + n] = a[q] + b[q];
          o[(8 + q) * xi_stride + n] = a[q] - b[q];
          o[(12 + q) * xi_stride + n] = -b[q];
        }
      }
    }
}

// One channel's plane as [pixel][image] = A^T M A of every tile, M read like
// transform_input's v (outputs past the plane's edge go to `discard`).
void transform_output(const float* m, int64_t xi_stride, int64_t h, int64_t w, const Chunking& k,
                      float* plane, float* discard) {
  const int64_t lanes = k.lanes;
  for (int64_t i = 0; i < k.tiles_h; ++i)
    for (int64_t j = 0; j < k.tiles_w; ++j) {
      float* y[2][2];
      for (int r = 0; r < 2; ++r)
        for (int s = 0; s < 2; ++s) {
          const int64_t yy = 2 * i + r, x = 2 * j + s;
          y[r][s] = (yy < h && x < w) ? plane + (yy * w + x) * lanes : discard;
        }
      const float* mt = m + (i * k.tiles_w + j) * lanes;
#pragma GCC ivdep
      for (int64_t n = 0; n < lanes; ++n) {
        float r0[4], r1[4];  // A^T M
        for (int q = 0; q < 4; ++q) {
          const float m0 = mt[(0 + q) * xi_stride + n], m1 = mt[(4 + q) * xi_stride + n];
          const float m2 = mt[(8 + q) * xi_stride + n], m3 = mt[(12 + q) * xi_stride + n];
          r0[q] = m0 + m1 + m2;
          r1[q] = m1 - m2 - m3;
        }
        y[0][0][n] = r0[0] + r0[1] + r0[2];
        y[0][1][n] = r0[1] - r0[2] - r0[3];
        y[1][0][n] = r1[0] + r1[1] + r1[2];
        y[1][1][n] = r1[1] - r1[2] - r1[3];
      }
    }
}

// out[N, out_ch, h, w] = beta * out + conv(in[N, in_ch, h, w]) + bias with the
// transformed kernels u [16][out_ch][in_ch]: the forward pass (u from the
// weights) and dX (u from the rotated, transposed weights, in = dY).
void winograd_conv(const float* in, int64_t batch, int64_t in_ch, int64_t out_ch, int64_t h, int64_t w,
                   const float* u, const float* bias, float beta, float* out) {
  const Chunking k = chunking(h, w, batch, kTile * (in_ch + out_ch));
  const int64_t pixels = h * w;
  const int64_t u_stride = position_stride(out_ch * in_ch);
  float* v = buffer(kInput, kTile * position_stride(in_ch * k.columns()));
  float* prod = buffer(kProducts, kTile * position_stride(out_ch * k.columns()));
  core::SerialBlasScope serial;
  for (int64_t n0 = 0; n0 < batch; n0 += k.lanes) {
    const Chunking c = k.at(n0, batch);
    const int64_t cols = c.columns();
    const int64_t v_stride = position_stride(in_ch * cols), prod_stride = position_stride(out_ch * cols);
    core::parallel_for(in_ch, [&](int64_t b, int64_t e) {
      const PlaneScratch s = plane_scratch(pixels, c.lanes);
      for (int64_t ch = b; ch < e; ++ch) {
        gather_plane(in, in_ch, ch, pixels, n0, c.lanes, s.plane);
        transform_input(s.plane, s.zeros, h, w, c, v + ch * cols, v_stride);
      }
    });
    core::parallel_for(kTile, [&](int64_t b, int64_t e) {
      for (int64_t xi = b; xi < e; ++xi)
        core::gemm(core::Trans::No, core::Trans::No, out_ch, cols, in_ch, 1.0f, u + xi * u_stride, in_ch,
                   v + xi * v_stride, cols, 0.0f, prod + xi * prod_stride, cols);
    });
    core::parallel_for(out_ch, [&](int64_t b, int64_t e) {
      const PlaneScratch s = plane_scratch(2 * pixels, c.lanes);  // the plane, then its transpose
      for (int64_t ch = b; ch < e; ++ch) {
        transform_output(prod + ch * cols, prod_stride, h, w, c, s.plane, s.discard);
        scatter_plane(s.plane, pixels, c.lanes, bias ? bias[ch] : 0.0f, beta, s.plane + pixels * c.lanes, out,
                      out_ch, ch, n0);
      }
    });
  }
}

}  // namespace

bool winograd_applies(const ConvGeometry& g, int64_t out_channels) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 1 &&
         g.pad_w == 1 && g.channels >= 16 && out_channels >= 16;
}

void winograd_forward(const float* x, int64_t batch, const ConvGeometry& g, const float* w,
                      int64_t out_channels, const float* bias, float* y) {
  float* u = buffer(kKernels, kTile * position_stride(out_channels * g.channels));
  winograd::transform_weights(w, out_channels, g.channels, false, u);
  winograd_conv(x, batch, g.channels, out_channels, g.height, g.width, u, bias, 0.0f, y);
}

void winograd_backward(const float* x, const float* dy, int64_t batch, const ConvGeometry& g,
                       const float* w, int64_t out_channels, float* dx, float beta_dx, float* dw,
                       float beta_dw) {
  const int64_t c = g.channels, m = out_channels, pixels = g.height * g.width;
  if (dx) {  // the convolution of dY with the rotated kernels, in and out swapped
    float* u = buffer(kKernels, kTile * position_stride(m * c));
    winograd::transform_weights(w, m, c, true, u);
    winograd_conv(dy, batch, m, c, g.height, g.width, u, nullptr, beta_dx, dx);
  }
  if (!dw) return;
  // dU_xi [m, c] = sum over tiles of (A dY A^T)_xi [m, tiles] . V_xi^T [tiles, c]
  const Chunking k = chunking(g.height, g.width, batch, kTile * (c + m));
  const int64_t du_stride = position_stride(m * c);
  float* du = buffer(kKernels, kTile * du_stride);
  float* vx = buffer(kInput, kTile * position_stride(c * k.columns()));
  float* gy = buffer(kProducts, kTile * position_stride(m * k.columns()));
  core::SerialBlasScope serial;
  for (int64_t n0 = 0; n0 < batch; n0 += k.lanes) {
    const Chunking ck = k.at(n0, batch);
    const int64_t cols = ck.columns();
    const int64_t vx_stride = position_stride(c * cols), gy_stride = position_stride(m * cols);
    core::parallel_for(c + m, [&](int64_t b, int64_t e) {
      const PlaneScratch s = plane_scratch(pixels, ck.lanes);
      for (int64_t ch = b; ch < e; ++ch) {
        if (ch < c) {
          gather_plane(x, c, ch, pixels, n0, ck.lanes, s.plane);
          transform_input(s.plane, s.zeros, g.height, g.width, ck, vx + ch * cols, vx_stride);
        } else {
          gather_plane(dy, m, ch - c, pixels, n0, ck.lanes, s.plane);
          transform_output_grad(s.plane, s.zeros, g.height, g.width, ck, gy + (ch - c) * cols, gy_stride);
        }
      }
    });
    const float accumulate = n0 == 0 ? 0.0f : 1.0f;
    core::parallel_for(kTile, [&](int64_t b, int64_t e) {
      for (int64_t xi = b; xi < e; ++xi)
        core::gemm(core::Trans::No, core::Trans::Yes, m, c, cols, 1.0f, gy + xi * gy_stride, cols,
                   vx + xi * vx_stride, cols, accumulate, du + xi * du_stride, c);
    });
  }
  winograd::weight_grad_from_transformed(du, m, c, beta_dw, dw);
}

}  // namespace deja::layers
