// conv2d's patch matrix as a RowSource and its gradient as a RowSink, for
// products that take rows tile by tile (the reuse engine): row n * P + p is
// the im2col row of output pixel p of image n (P = out_h * out_w pixels per
// image, K = channels * kh * kw columns, layers/im2col.h's order), but it is
// only ever made a tile at a time, in cache, from the images.
#pragma once

#include "core/row_source.h"
#include "layers/im2col.h"

namespace deja::layers {

class ConvPatchRows final : public core::RowSource {
 public:
  // images: [batch, channels, height, width], kept alive by the caller.
  ConvPatchRows(const float* images, int64_t batch, const ConvGeometry& g);
  int64_t rows() const override { return batch_ * pixels_; }
  int64_t cols() const override { return g_.patch_size(); }
  // Made as K-major runs (each a shifted copy of an input line); fill then
  // transposes them into rows.
  void fill(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out, int64_t ld) const override;
  void fill_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                   int64_t ld) const override;
  // Prefetches the input lines those patches read (every cache line of
  // them; the taps' runs overlap).
  void prefetch(int64_t r0, int64_t count, int64_t c0, int64_t c1) const override;

 private:
  const float* images_;
  int64_t batch_, pixels_;
  ConvGeometry g_;
};

// The adjoint: rows of patch gradient are added into the images' gradient
// (col2im). One granule is one image. The caller zeroes the gradient first
// when it is not accumulating.
class ConvPatchGradSink final : public core::RowSink {
 public:
  ConvPatchGradSink(float* image_grads, const ConvGeometry& g);
  int64_t granule() const override { return pixels_; }
  int64_t cols() const override { return g_.patch_size(); }
  void add(int64_t r0, int64_t count, const float* rows, int64_t ld) override;
  void add_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, const float* cols,
                  int64_t ld) override;

 private:
  float* grads_;
  int64_t pixels_;
  ConvGeometry g_;
};

// Plain references for the tests: X[r, c] of the patch matrix by its
// definition, one element at a time.
float conv_patch_value(const float* images, const ConvGeometry& g, int64_t row, int64_t col);

}  // namespace deja::layers
