#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/product.h"
#include "core/rng.h"
#include "layers/conv2d.h"
#include "tests/gradcheck.h"
#include "tests/layers/forwarding_product.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using deja::layers::Conv2d;
using deja::layers::Conv2dOptions;

namespace {

Tensor random_tensor(Shape shape, uint64_t seed) {
  Rng rng(seed, 5);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.normal();
  return t;
}

Conv2dOptions options(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t stride,
                      int64_t padding, bool bias = true) {
  Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel_h = kh;
  o.kernel_w = kw;
  o.stride = stride;
  o.padding = padding;
  o.bias = bias;
  return o;
}

// The definition of a cross-correlation with zero padding, loop by loop.
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t stride,
                  int64_t pad) {
  const int64_t n_count = x.size(0), c_count = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t m_count = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (wd + 2 * pad - kw) / stride + 1;
  Tensor y = Tensor::zeros({n_count, m_count, oh, ow});
  for (int64_t n = 0; n < n_count; ++n)
    for (int64_t m = 0; m < m_count; ++m)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = b ? (*b)[m] : 0.0;
          for (int64_t c = 0; c < c_count; ++c)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += static_cast<double>(x[((n * c_count + c) * h + iy) * wd + ix]) *
                     w[((m * c_count + c) * kh + ky) * kw + kx];
              }
          y[((n * m_count + m) * oh + oy) * ow + ox] = static_cast<float>(s);
        }
  return y;
}

std::string validation_message(const Conv2dOptions& o) {
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

std::string shape_message(Conv2d& conv, const Shape& s) {
  try {
    conv.output_shape(s);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("conv2d: forward matches a naive convolution") {
  struct Case {
    Conv2dOptions o;
    Shape input;
  };
  const Case cases[] = {
      {options(3, 4, 3, 3, 1, 1), {2, 3, 7, 6}},
      {options(2, 5, 3, 2, 2, 1), {3, 2, 9, 7}},     // stride 2, non-square kernel, odd sizes
      {options(4, 3, 1, 1, 1, 0, false), {2, 4, 5, 5}},  // 1x1, no bias
      {options(1, 2, 5, 5, 3, 2), {1, 1, 8, 11}},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    Rng init(seed, 1);
    Conv2d conv(c.o, init);
    Tensor x = random_tensor(c.input, ++seed);
    Tensor y = conv.forward(x);
    Tensor expected =
        naive_conv(x, conv.weight(), c.o.bias ? &conv.bias() : nullptr, c.o.stride, c.o.padding);
    REQUIRE(y.shape() == expected.shape());
    CHECK(y.shape() == conv.output_shape(c.input));
    int bad = 0;
    for (int64_t i = 0; i < y.numel(); ++i)
      if (std::fabs(y[i] - expected[i]) > 1e-4f * (1.0f + std::fabs(expected[i]))) ++bad;
    CHECK(bad == 0);
    CHECK_FALSE(y.requires_grad());  // nothing bound: no graph
  }
}

TEST_CASE("conv2d: gradients w.r.t. input, weight and bias (stride 2, padding, odd sizes)") {
  Rng init(3, 1);
  Conv2d conv(options(3, 4, 3, 2, 2, 1), init);
  Tensor x = random_tensor({2, 3, 7, 5}, 11);
  deja::testing::check_gradients([&] { return conv.forward(x); },
                                 {{"x", &x}, {"weight", &conv.weight()}, {"bias", &conv.bias()}});
}

TEST_CASE("conv2d: gradients with stride 1, 5x5 kernel, padding 2") {
  Rng init(4, 1);
  Conv2d conv(options(2, 3, 5, 5, 1, 2), init);
  Tensor x = random_tensor({2, 2, 6, 5}, 12);
  deja::testing::check_gradients([&] { return conv.forward(x); },
                                 {{"x", &x}, {"weight", &conv.weight()}, {"bias", &conv.bias()}});
}

TEST_CASE("conv2d: first layer (input needs no gradient) still trains weight and bias") {
  Rng init(5, 1);
  Conv2d conv(options(2, 3, 3, 3, 2, 0), init);
  Tensor x = random_tensor({3, 2, 7, 7}, 13);
  deja::testing::check_gradients([&] { return conv.forward(x); },
                                 {{"weight", &conv.weight()}, {"bias", &conv.bias()}});
}

TEST_CASE("conv2d: the whole batch goes through one product call") {
  Rng init(6, 1);
  Conv2d conv(options(2, 3, 3, 3, 1, 1), init);
  Tensor x = random_tensor({4, 2, 5, 5}, 14);
  conv.product()->reset_stats();
  conv.forward(x);
  CHECK(conv.product()->stats().forward_calls == 1);
  CHECK(conv.product()->describe() == "dense");
  auto replacement = deja::core::make_dense_product();
  conv.set_product(replacement);
  CHECK(conv.product() == replacement.get());
  CHECK_THROWS_WITH_AS(conv.set_product(nullptr), "conv2d: set_product needs a product, got null",
                       std::invalid_argument);
}

TEST_CASE("conv2d: parameters, init bounds and flops") {
  Rng init(7, 1);
  Conv2d conv(options(3, 8, 3, 3, 1, 1), init);
  auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "weight");
  CHECK(params[1].name == "bias");
  CHECK(conv.weight().shape() == Shape{8, 3, 3, 3});
  CHECK(conv.bias().shape() == Shape{8});
  const float bound = 1.0f / std::sqrt(27.0f);
  float max_abs = 0.0f;
  for (int64_t i = 0; i < conv.weight().numel(); ++i)
    max_abs = std::max(max_abs, std::fabs(conv.weight()[i]));
  CHECK(max_abs <= bound);
  CHECK(max_abs > 0.5f * bound);
  CHECK(conv.type() == "conv2d");
  // 2 * N * M * oh * ow * K
  CHECK(conv.forward_flops({2, 3, 10, 10}) == 2LL * 2 * 8 * 10 * 10 * 27);
  Rng init2(7, 1);
  Conv2d no_bias(options(3, 8, 3, 3, 1, 1, false), init2);
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK_FALSE(no_bias.bias().defined());
}

TEST_CASE("conv2d: option validation messages") {
  CHECK(validation_message(options(0, 4, 3, 3, 1, 0)) == "conv2d: in_channels must be >= 1, got 0");
  CHECK(validation_message(options(3, 0, 3, 3, 1, 0)) ==
        "conv2d: out_channels must be >= 1, got 0");
  CHECK(validation_message(options(3, 4, 0, 3, 1, 0)) == "conv2d: kernel_h must be >= 1, got 0");
  CHECK(validation_message(options(3, 4, 3, -2, 1, 0)) == "conv2d: kernel_w must be >= 1, got -2");
  CHECK(validation_message(options(3, 4, 3, 3, 0, 0)) == "conv2d: stride must be >= 1, got 0");
  CHECK(validation_message(options(3, 4, 3, 3, 1, -1)) == "conv2d: padding must be >= 0, got -1");
  CHECK(validation_message(options(3, 4, 3, 3, 1, 0)).empty());
  Rng init(1);
  CHECK_THROWS_WITH_AS(Conv2d(options(3, 0, 3, 3, 1, 0), init),
                       "conv2d: out_channels must be >= 1, got 0", std::invalid_argument);
}

TEST_CASE("conv2d: output_shape errors name both shapes") {
  Rng init(1);
  Conv2d conv(options(1, 4, 5, 5, 1, 1), init);
  CHECK(conv.output_shape({2, 1, 28, 28}) == Shape{2, 4, 26, 26});
  CHECK(shape_message(conv, {1, 3, 32, 32}) ==
        "conv2d: input [1, 3, 32, 32] does not fit: expected [N, 1, H, W]");
  CHECK(shape_message(conv, {3, 32, 32}) ==
        "conv2d: input [3, 32, 32] does not fit: expected [N, 1, H, W]");
  CHECK(shape_message(conv, {1, 1, 2, 9}) ==
        "conv2d: input [1, 1, 2, 9] does not fit: expected [N, 1, H, W] with H + 2*padding >= 5 "
        "and W + 2*padding >= 5 (padding 1)");
  Tensor bad = Tensor::zeros({1, 3, 8, 8});
  CHECK_THROWS_AS(conv.forward(bad), std::invalid_argument);
}

namespace {

struct ConvRun {
  Tensor y, dx, dw, db;
};

ConvRun run_conv(const Conv2dOptions& o, const Tensor& x_in, const Tensor& g, bool general) {
  Rng init(21, 1);
  Conv2d conv(o, init);
  if (general) conv.set_product(std::make_shared<deja::testing::ForwardingProduct>());  // general path
  deja::core::ParameterArena arena;
  arena.bind(conv.named_parameters());
  Tensor x = x_in.clone();
  x.set_node(std::make_shared<deja::core::LeafNode>(Tensor::zeros(x.shape())));
  Tensor y = conv.forward(x);
  deja::core::backward(y, g);
  return {y.detached().clone(), x.grad().clone(), conv.weight().grad().clone(), conv.bias().grad().clone()};
}

int count_mismatches(const Tensor& a, const Tensor& b, float tol) {
  REQUIRE(a.numel() == b.numel());
  int bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::fabs(a[i] - b[i]) > tol * (1.0f + std::fabs(b[i]))) ++bad;
  return bad;
}

}  // namespace

TEST_CASE("conv2d: the direct paths (im2col chunks, Winograd) equal the whole-batch product path") {
  struct Case {
    Conv2dOptions o;
    Shape input;
  };
  const Case cases[] = {
      {options(64, 16, 5, 5, 1, 2), {5, 64, 16, 16}},  // a few MB per image: several chunks, a short last one
      {options(3, 4, 3, 2, 2, 1), {3, 3, 9, 7}},       // stride 2, non-square kernel, odd sizes
      {options(1, 8, 5, 5, 1, 2), {4, 1, 32, 32}},     // CifarNet conv1 (C = 1, out_w 32)
      {options(16, 24, 3, 3, 1, 1), {3, 16, 9, 7}},    // 3x3 / pad 1 / 16+ channels: Winograd, odd sizes
      {options(32, 16, 3, 3, 1, 1), {5, 32, 2, 2}},    // Winograd, one tile per image (VGG conv5)
  };
  uint64_t seed = 30;
  for (const Case& c : cases) {
    Tensor x = random_tensor(c.input, ++seed);
    Rng shape_rng(1, 1);
    Conv2d probe(c.o, shape_rng);
    Tensor g = random_tensor(probe.output_shape(c.input), ++seed);
    ConvRun direct = run_conv(c.o, x, g, false);
    ConvRun general = run_conv(c.o, x, g, true);
    CHECK(count_mismatches(direct.y, general.y, 1e-4f) == 0);
    CHECK(count_mismatches(direct.dx, general.dx, 1e-4f) == 0);
    CHECK(count_mismatches(direct.dw, general.dw, 1e-3f) == 0);
    CHECK(count_mismatches(direct.db, general.db, 1e-4f) == 0);
  }
}

TEST_CASE("conv2d: dense_algorithm names the path its shape takes") {
  Rng init(3, 1);
  Conv2d same3(options(16, 16, 3, 3, 1, 1), init);
  CHECK(same3.dense_algorithm({2, 16, 8, 8}) == "winograd");
  Conv2d five(options(16, 16, 5, 5, 1, 2), init);
  CHECK(five.dense_algorithm({2, 16, 8, 8}) == "im2col");
  Conv2d few_inputs(options(3, 16, 3, 3, 1, 1), init);
  CHECK(few_inputs.dense_algorithm({2, 3, 8, 8}) == "im2col");
  Conv2d strided(options(16, 16, 3, 3, 2, 1), init);
  CHECK(strided.dense_algorithm({2, 16, 8, 8}) == "im2col");
  same3.set_product(std::make_shared<deja::testing::ForwardingProduct>());  // general path: im2col rows
  CHECK(same3.dense_algorithm({2, 16, 8, 8}).empty());
}
