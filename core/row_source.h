// A [rows, cols] row-major matrix that need not exist in memory, and the
// receiving end of one. conv2d's patch matrix (the im2col rows of a whole
// batch: 210 MB at CifarNet conv2) is produced tile by tile from the images
// while the reuse engine clusters it, and its gradient is scattered straight
// back into the images (col2im), so neither ever goes through DRAM.
#pragma once

#include <cstdint>

namespace deja::core {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  // The whole matrix when it is materialised (rows cols() floats apart), else null.
  virtual const float* data() const { return nullptr; }
  // out[i * ld + j] = X[r0 + i, c0 + j] for i < count, j < c1 - c0.
  // Safe to call from several threads at once.
  virtual void fill(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                    int64_t ld) const = 0;
  // The same tile column-major: out[(j - c0) * ld + i] = X[r0 + i, j]. The
  // default fills rows and transposes them.
  virtual void fill_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out,
                           int64_t ld) const;
  // A hint that rows [r0, r0 + count), columns [c0, c1) will be filled
  // soon: a source that reads scattered memory starts loading it. For
  // callers that visit short runs all over the batch (pca's fit sample),
  // whose reads otherwise wait on one cache miss after another.
  virtual void prefetch(int64_t /*r0*/, int64_t /*count*/, int64_t /*c0*/, int64_t /*c1*/) const {}
};

// A plain matrix in memory as a RowSource.
class MatrixRows final : public RowSource {
 public:
  // Rows ld floats apart (ld = cols when omitted).
  MatrixRows(const float* x, int64_t rows, int64_t cols, int64_t ld = -1)
      : x_(x), rows_(rows), cols_(cols), ld_(ld < 0 ? cols : ld) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  const float* data() const override { return ld_ == cols_ ? x_ : nullptr; }
  void fill(int64_t r0, int64_t count, int64_t c0, int64_t c1, float* out, int64_t ld) const override;

 private:
  const float* x_;
  int64_t rows_, cols_, ld_;
};

// Where a backward's input-gradient rows go. Rows come in groups of granule()
// consecutive rows (conv2d: one image's pixels); an add never spans two
// granules, adds for different granules may run at once on different
// threads, and those for one granule come from one thread. A sink only adds:
// whoever owns dX clears it first when it is not accumulating.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual int64_t granule() const = 0;
  virtual int64_t cols() const = 0;
  // dX[r0 + i, :] += rows[i * ld + :] for i < count.
  virtual void add(int64_t r0, int64_t count, const float* rows, int64_t ld) = 0;
  // A column-major tile of columns [c0, c1): dX[r0 + i, j] += cols[(j - c0) * ld + i]
  // (what a GEMM gives as W^T . dY^T without a transpose; the reuse engine
  // hands over one group of blocks at a time). The default transposes into
  // zero-padded whole rows and calls add.
  virtual void add_kmajor(int64_t r0, int64_t count, int64_t c0, int64_t c1, const float* cols,
                          int64_t ld);
};

}  // namespace deja::core
