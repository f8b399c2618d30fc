// The ConvGeometry of a test case in one call (the struct has nine fields).
#pragma once

#include <cstdint>

#include "layers/im2col.h"

namespace deja::testing {

inline layers::ConvGeometry conv_geometry(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride_h,
                                          int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  layers::ConvGeometry g;
  g.channels = c, g.height = h, g.width = w, g.kernel_h = kh, g.kernel_w = kw;
  g.stride_h = stride_h, g.stride_w = stride_w;
  g.pad_h = pad_h, g.pad_w = pad_w;
  return g;
}

// Square stride and padding.
inline layers::ConvGeometry conv_geometry(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride,
                                          int64_t pad) {
  return conv_geometry(c, h, w, kh, kw, stride, stride, pad, pad);
}

}  // namespace deja::testing
