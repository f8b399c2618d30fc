#include "layers/module.h"

#include <stdexcept>

namespace deja::layers {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

void Module::set_product(std::shared_ptr<core::Product>) {
  throw std::invalid_argument("layer type '" + type() + "' has no weight product (no reuse path)");
}

void Module::train(bool on) {
  training_ = on;
  on_train_changed();
  for (auto& [name, child] : children_) child->train(on);
}

std::vector<core::NamedParameter> Module::named_parameters(const std::string& prefix) {
  std::vector<core::NamedParameter> out;
  for (auto& [name, t] : parameters_) out.push_back({join(prefix, name), t});
  for (auto& [name, child] : children_)
    for (auto& p : child->named_parameters(join(prefix, name))) out.push_back(p);
  return out;
}

std::vector<core::NamedParameter> Module::named_buffers(const std::string& prefix) {
  std::vector<core::NamedParameter> out;
  for (auto& [name, t] : buffers_) out.push_back({join(prefix, name), t});
  for (auto& [name, child] : children_)
    for (auto& p : child->named_buffers(join(prefix, name))) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [name, child] : children_)
    for (auto& m : child->named_modules(join(prefix, name))) out.push_back(m);
  return out;
}

void Module::register_parameter(std::string name, Tensor* tensor) {
  parameters_.emplace_back(std::move(name), tensor);
}

void Module::register_buffer(std::string name, Tensor* tensor) {
  buffers_.emplace_back(std::move(name), tensor);
}

Module& Module::register_module(std::string name, std::unique_ptr<Module> module) {
  for (auto& [existing, child] : children_)
    if (existing == name) throw std::invalid_argument("duplicate module name '" + name + "'");
  children_.emplace_back(std::move(name), std::move(module));
  return *children_.back().second;
}

}  // namespace deja::layers
