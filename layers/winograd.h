// Winograd F(2x2, 3x3): the dense 3x3 / stride 1 / padding 1 convolution
// (every VGG layer but the first, AlexNet's conv3-5) with 16 multiplications
// per 2x2 output tile instead of 36 (Lavin & Gray 2016). Each 4x4 input tile d
// becomes V = B^T d B, each 3x3 kernel g becomes U = G g G^T, the 16 positions
// xi of the tile are 16 independent GEMMs over channels, M_xi = U_xi . V_xi,
// and Y = A^T M A gives the 2x2 outputs. The backward passes are the exact
// gradients of that computation (equal to the convolution's in exact
// arithmetic): dX is the same transform run on dY with the kernels rotated by
// 180 degrees and in/out swapped, dW = G^T (sum over tiles of (A dY A^T) (.) V) G.
// Tiles are processed a chunk of whole images at a time (up to 64 MB of
// transformed tensors, 16 x channels x tiles: the GEMMs need thousands of
// columns to run fast), each tile transform on all images of the chunk at once
// (vectorised across images); the 16 GEMMs of a chunk are split over our
// threads (each runs single-threaded BLAS), so a big layer's U (16 x out x in
// floats) is read once per chunk and dW needs no per-thread partials. Results
// depend only on the input, not on the thread count.
#pragma once

#include <cstdint>

#include "layers/im2col.h"

namespace deja::layers {

// True for the geometry the transforms handle (3x3 kernel, stride 1, padding
// 1) when both channel counts are big enough for the GEMMs to pay (a layer with
// 1 or 3 input channels is all transform and no product).
bool winograd_applies(const ConvGeometry& g, int64_t out_channels);

// y[N, M, H, W] = conv(x[N, C, H, W], w[M, C, 3, 3]) + bias (bias may be null).
void winograd_forward(const float* x, int64_t batch, const ConvGeometry& g, const float* w,
                      int64_t out_channels, const float* bias, float* y);

// From dy[N, M, H, W]: dx = beta_dx * dx + dL/dx when dx is not null, and
// dw = beta_dw * dw + dL/dw when dw is not null (the bias gradient is the
// caller's: a plane sum of dy).
void winograd_backward(const float* x, const float* dy, int64_t batch, const ConvGeometry& g,
                       const float* w, int64_t out_channels, float* dx, float beta_dx, float* dw,
                       float beta_dw);

// The pieces, exposed for the tests that pin them against their definitions.
namespace winograd {

constexpr int kTile = 16;  // 4x4 positions of a transformed tile

// Distance between the 16 positions' matrices of n floats each: one cache
// line more than n, so that the 16 streams a tile transform writes do not
// fall on the same cache sets when n is a power of two (they thrashed L1/L2).
constexpr int64_t position_stride(int64_t n) { return n + 16; }

// u[xi * position_stride(m * c) + mi * c + ci] = (G g G^T)[xi] of g = w[mi, ci]
// (rotated by 180 degrees and stored [c, m] when for_input_grad: the kernels of
// dX's convolution).
void transform_weights(const float* w, int64_t m, int64_t c, bool for_input_grad, float* u);

// dw[mi, ci] = beta * dw + G^T du[.. mi, ci] G, du laid out as transform_weights' u.
void weight_grad_from_transformed(const float* du, int64_t m, int64_t c, float beta, float* dw);

}  // namespace winograd

}  // namespace deja::layers
