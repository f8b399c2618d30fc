// im2col / col2im for one NCHW image: the patch matrix that turns a 2-D
// convolution into a GEMM. Row p = oy * out_w + ox holds the receptive field of
// output pixel (oy, ox), its K = channels * kernel_h * kernel_w entries ordered
// (c, ky, kx) like PyTorch's conv weight [out, in, kh, kw], so the layer's
// weight reshaped to [out, K] multiplies the rows directly. Zero padding is
// implicit (out-of-image taps read 0 / drop their gradient). No dilation, no
// groups (design.md section 3 does not need them).
#pragma once

#include <cstdint>

namespace deja::layers {

struct ConvGeometry {
  int64_t channels = 0, height = 0, width = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;

  int64_t out_h() const { return (height + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }
  int64_t patch_size() const { return channels * kernel_h * kernel_w; }  // K
};

// rows[out_h * out_w, K] = the patches of image_chw[channels, height, width].
void im2col(const float* image_chw, const ConvGeometry& g, float* rows);

// The adjoint of im2col: image_chw += scatter-add of rows (overlapping patches
// sum). The caller zeroes the image first when it wants a plain col2im.
void col2im_add(const float* rows, const ConvGeometry& g, float* image_chw);

// The same patches transposed ("K-major"): row r = (c, ky, kx) of `cols` holds
// tap r of every output pixel, out_h * out_w floats at cols + r * ld (ld >=
// out_h * out_w lets several images sit side by side in one [K, images * P]
// matrix). Each row is a shifted copy of an input plane, so both directions
// are contiguous runs of out_w floats (stride 1): what conv2d's direct path
// uses.
void im2col_kmajor(const float* image_chw, const ConvGeometry& g, float* cols, int64_t ld);
// image_chw += the adjoint of im2col_kmajor of `cols` (same layout).
void col2im_kmajor_add(const float* cols, int64_t ld, const ConvGeometry& g, float* image_chw);

// The same for output rows [oy0, oy1) and patch columns [c0, c1) only (a
// tile of conv2d's patch rows for the reuse engine): column j's run of
// output pixel (oy, ox) at cols[(j - c0) * ld + (oy - oy0) * out_w + ox].
void im2col_kmajor(const float* image_chw, const ConvGeometry& g, int64_t oy0, int64_t oy1,
                   int64_t c0, int64_t c1, float* cols, int64_t ld);
void col2im_kmajor_add(const float* cols, int64_t ld, const ConvGeometry& g, int64_t oy0,
                       int64_t oy1, int64_t c0, int64_t c1, float* image_chw);

}  // namespace deja::layers
