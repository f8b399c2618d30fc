#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"
#include "layers/conv2d.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/pool2d.h"
#include "layers/relu.h"
#include "layers/sequential.h"
#include "tests/gradcheck.h"

using deja::core::Rng;
using deja::core::Shape;
using deja::core::Tensor;
using namespace deja::layers;

namespace {
std::unique_ptr<Sequential> small_cnn(Rng& init) {
  Conv2dOptions c;
  c.in_channels = 2;
  c.out_channels = 3;
  c.kernel_h = c.kernel_w = 3;
  c.stride = 2;
  c.padding = 1;
  LinearOptions l;
  l.in_features = 3 * 3 * 3;
  l.out_features = 4;
  auto net = std::make_unique<Sequential>();
  net->add("conv1", std::make_unique<Conv2d>(c, init));
  net->add("flat", std::make_unique<Flatten>());
  net->add("fc", std::make_unique<Linear>(l, init));
  return net;
}
}  // namespace

TEST_CASE("sequential: names, indexing and errors") {
  Rng init(1);
  auto net = small_cnn(init);
  CHECK(net->type() == "sequential");
  CHECK(net->size() == 3);
  CHECK(net->name_at(0) == "conv1");
  CHECK(net->at(2).type() == "linear");
  auto params = net->named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].name == "conv1.weight");
  CHECK(params[1].name == "conv1.bias");
  CHECK(params[2].name == "fc.weight");
  CHECK(params[3].name == "fc.bias");
  CHECK(net->named_parameters("model")[0].name == "model.conv1.weight");
  CHECK_THROWS_WITH_AS(net->at(3), "sequential: index 3 out of range (size 3)", std::out_of_range);
  CHECK_THROWS_WITH_AS(net->name_at(-1), "sequential: index -1 out of range (size 3)",
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(net->add("fc", std::make_unique<Flatten>()), "duplicate module name 'fc'",
                       std::invalid_argument);
  CHECK_THROWS_AS(net->add("x", nullptr), std::invalid_argument);
}

TEST_CASE("sequential: train/eval reaches nested children") {
  Rng init(1);
  Sequential outer;
  Sequential& inner = static_cast<Sequential&>(outer.add("block", small_cnn(init)));
  CHECK(inner.at(0).is_training());
  outer.eval();
  CHECK_FALSE(outer.is_training());
  CHECK_FALSE(inner.is_training());
  CHECK_FALSE(inner.at(0).is_training());
  CHECK_FALSE(inner.at(2).is_training());
  outer.train();
  CHECK(inner.at(2).is_training());
  CHECK(outer.named_parameters()[2].name == "block.fc.weight");
}

TEST_CASE("sequential: shapes and flops chain, forward equals the children in order") {
  Rng init(2);
  auto net = small_cnn(init);
  CHECK(net->output_shape({5, 2, 6, 6}) == Shape{5, 4});
  CHECK(net->forward_flops({5, 2, 6, 6}) ==
        net->at(0).forward_flops({5, 2, 6, 6}) + net->at(2).forward_flops({5, 27}));
  CHECK_THROWS_WITH_AS(net->output_shape({5, 3, 6, 6}),
                       "conv2d: input [5, 3, 6, 6] does not fit: expected [N, 2, H, W]",
                       std::invalid_argument);
  Rng data(3);
  Tensor x = Tensor::empty({5, 2, 6, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = data.normal();
  Tensor y = net->forward(x);
  Tensor manual = net->at(2).forward(net->at(1).forward(net->at(0).forward(x)));
  CHECK(y.shape() == Shape{5, 4});
  CHECK(y.to_vector() == manual.to_vector());
}

TEST_CASE("sequential: gradients through conv, flatten and linear") {
  Rng init(4);
  auto net = small_cnn(init);
  Rng data(5);
  Tensor x = Tensor::empty({2, 2, 6, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = data.normal();
  auto params = net->named_parameters();
  params.push_back({"x", &x});
  deja::testing::check_gradients([&] { return net->forward(x); }, params);
}

TEST_CASE("sequential: relu then max pool runs pooled first with the same output and input gradient") {
  // Small integers in [-3, 2]: many tied maxima, windows whose maximum is
  // zero or negative, and padding (kernel 3, stride 2, pad 1, ceil_mode).
  Pool2dOptions pool;
  pool.kernel = 3;
  pool.stride = 2;
  pool.padding = 1;
  pool.ceil_mode = true;
  Sequential net;
  net.add("relu", std::make_unique<ReLU>());
  net.add("pool", std::make_unique<MaxPool2d>(pool));
  Rng data(6);
  Tensor x = Tensor::empty({2, 3, 8, 7});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(static_cast<int>(data.uniform() * 6.0f) - 3);
  Tensor x_ref = x.clone();
  deja::core::ParameterArena arena, arena_ref;
  arena.bind({{"x", &x}});
  arena_ref.bind({{"x", &x_ref}});
  Tensor y = net.forward(x);
  Tensor want = max_pool2d(relu(x_ref), pool);  // the order as written
  REQUIRE(y.shape() == want.shape());
  CHECK(y.to_vector() == want.to_vector());
  Tensor g = Tensor::empty(y.shape());
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = static_cast<float>(i % 7) + 1.0f;
  deja::core::backward(y, g);
  deja::core::backward(want, g);
  CHECK(x.grad().to_vector() == x_ref.grad().to_vector());
  int64_t non_positive_windows = 0;  // the case where neither order passes a gradient is covered
  for (float v : want.to_vector()) non_positive_windows += v == 0.0f;
  CHECK(non_positive_windows > 0);
}
