// Factories for every layer type a config can name. Each reads its options
// struct from JSON with the shared typed readers (errors name the layer index
// and key), then lets the options struct validate itself.
#include "layers/registry.h"

#include <cmath>
#include <stdexcept>

#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/lrn.h"
#include "layers/pool2d.h"
#include "layers/relu.h"

namespace deja::layers {
namespace {

// Runs an options struct's validate() so its message gets the layer's place.
template <typename Options>
void validate_at(const Options& options, const std::string& where) {
  try {
    options.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

int64_t channels_of(const Shape& input, const std::string& type, const std::string& where,
                    size_t rank) {
  if (input.size() != rank)
    throw std::invalid_argument(where + ": " + type + " expects an input of " +
                                std::to_string(rank) + " dimensions per example, got " +
                                core::shape_to_string(input));
  return input[0];
}

std::unique_ptr<Module> make_conv2d(const core::Json& spec, const Shape& input, LayerContext& ctx) {
  Conv2dOptions o;
  o.in_channels = channels_of(input, "conv2d", ctx.where, 3);
  o.out_channels = core::read_int(spec, "out_channels", 0, ctx.where);
  auto kernel = core::read_pair(spec, "kernel", {0, 0}, ctx.where);
  o.kernel_h = kernel.first;
  o.kernel_w = kernel.second;
  o.stride = core::read_int(spec, "stride", 1, ctx.where);
  o.padding = core::read_int(spec, "padding", 0, ctx.where);
  o.bias = core::read_bool(spec, "bias", true, ctx.where);
  validate_at(o, ctx.where);
  auto conv = std::make_unique<Conv2d>(o, *ctx.init_rng);
  if (ctx.init == "kaiming_normal") {
    // He et al. (fan_out, ReLU gain), as torchvision's VGG: deep plain conv
    // stacks do not train from PyTorch's default uniform init, whose variance
    // shrinks the signal ~6x per layer.
    const float stddev = std::sqrt(2.0f / static_cast<float>(o.out_channels * o.kernel_h * o.kernel_w));
    Tensor& w = conv->weight();
    for (int64_t i = 0; i < w.numel(); ++i) w[i] = ctx.init_rng->normal(0.0f, stddev);
    if (o.bias) conv->bias().fill(0.0f);
  }
  return conv;
}

std::unique_ptr<Module> make_linear(const core::Json& spec, const Shape& input, LayerContext& ctx) {
  LinearOptions o;
  if (input.empty())
    throw std::invalid_argument(ctx.where + ": linear needs an input with features, got []");
  o.in_features = input.back();
  o.out_features = core::read_int(spec, "out_features", 0, ctx.where);
  o.bias = core::read_bool(spec, "bias", true, ctx.where);
  validate_at(o, ctx.where);
  return std::make_unique<Linear>(o, *ctx.init_rng);
}

Pool2dOptions read_pool(const core::Json& spec, const LayerContext& ctx) {
  Pool2dOptions o;
  o.kernel = core::read_int(spec, "kernel", 2, ctx.where);
  o.stride = core::read_int(spec, "stride", 0, ctx.where);
  o.padding = core::read_int(spec, "padding", 0, ctx.where);
  o.ceil_mode = core::read_bool(spec, "ceil_mode", false, ctx.where);
  validate_at(o, ctx.where);
  return o;
}

std::unique_ptr<Module> make_lrn(const core::Json& spec, const Shape&, LayerContext& ctx) {
  LrnOptions o;
  o.size = core::read_int(spec, "size", o.size, ctx.where);
  o.alpha = core::read_number(spec, "alpha", o.alpha, ctx.where);
  o.beta = core::read_number(spec, "beta", o.beta, ctx.where);
  o.k = core::read_number(spec, "k", o.k, ctx.where);
  validate_at(o, ctx.where);
  return std::make_unique<LRN>(o);
}

std::unique_ptr<Module> make_dropout(const core::Json& spec, const Shape&, LayerContext& ctx) {
  DropoutOptions o;
  o.p = core::read_number(spec, "p", o.p, ctx.where);
  validate_at(o, ctx.where);
  return std::make_unique<Dropout>(
      o, core::make_rng(ctx.seed, core::RngPurpose::Dropout, static_cast<uint64_t>(ctx.index)));
}

std::unique_ptr<Module> make_batchnorm(const core::Json& spec, const Shape& input, LayerContext& ctx,
                                       bool spatial) {
  BatchNormOptions o;
  o.num_features = channels_of(input, spatial ? "batchnorm2d" : "batchnorm1d", ctx.where,
                               spatial ? 3 : 1);
  o.eps = core::read_number(spec, "eps", o.eps, ctx.where);
  o.momentum = core::read_number(spec, "momentum", o.momentum, ctx.where);
  validate_at(o, ctx.where);
  return std::make_unique<BatchNorm>(o, spatial);
}

std::vector<LayerType> build_registry() {
  std::vector<LayerType> r;
  r.push_back({"conv2d", {"out_channels", "kernel", "stride", "padding", "bias"}, "conv", true,
               make_conv2d});
  r.push_back({"linear", {"out_features", "bias"}, "fc", true, make_linear});
  r.push_back({"relu", {}, "relu", false,
               [](const core::Json&, const Shape&, LayerContext&) -> std::unique_ptr<Module> {
                 return std::make_unique<ReLU>();
               }});
  r.push_back({"maxpool2d", {"kernel", "stride", "padding", "ceil_mode"}, "pool", false,
               [](const core::Json& s, const Shape&, LayerContext& c) -> std::unique_ptr<Module> {
                 return std::make_unique<MaxPool2d>(read_pool(s, c));
               }});
  r.push_back({"avgpool2d", {"kernel", "stride", "padding", "ceil_mode"}, "pool", false,
               [](const core::Json& s, const Shape&, LayerContext& c) -> std::unique_ptr<Module> {
                 return std::make_unique<AvgPool2d>(read_pool(s, c));
               }});
  r.push_back({"lrn", {"size", "alpha", "beta", "k"}, "lrn", false, make_lrn});
  r.push_back({"dropout", {"p"}, "dropout", false, make_dropout});
  r.push_back({"batchnorm2d", {"eps", "momentum"}, "bn", false,
               [](const core::Json& s, const Shape& in, LayerContext& c) {
                 return make_batchnorm(s, in, c, true);
               }});
  r.push_back({"batchnorm1d", {"eps", "momentum"}, "bn", false,
               [](const core::Json& s, const Shape& in, LayerContext& c) {
                 return make_batchnorm(s, in, c, false);
               }});
  r.push_back({"flatten", {}, "flatten", false,
               [](const core::Json&, const Shape&, LayerContext&) -> std::unique_ptr<Module> {
                 return std::make_unique<Flatten>();
               }});
  return r;
}

}  // namespace

const std::vector<LayerType>& layer_registry() {
  static const std::vector<LayerType> registry = build_registry();
  return registry;
}

const LayerType* find_layer_type(const std::string& type) {
  for (const auto& t : layer_registry())
    if (t.type == type) return &t;
  return nullptr;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (const auto& t : layer_registry()) names.push_back(t.type);
  return names;
}

}  // namespace deja::layers
