#include "core/parameters.h"

#include <stdexcept>
#include <unordered_set>

#include "core/autograd.h"

namespace deja::core {

void ParameterArena::bind(const std::vector<NamedParameter>& params) {
  int64_t total = 0;
  std::unordered_set<std::string> names;
  entries_.clear();
  for (const auto& p : params) {
    if (!names.insert(p.name).second) throw std::logic_error("duplicate parameter name " + p.name);
    if (!p.tensor->defined()) throw std::logic_error("parameter " + p.name + " is undefined");
    // Keep every parameter 16-float (64-byte) aligned.
    total = (total + 15) / 16 * 16;
    entries_.push_back({p.name, p.tensor->shape(), total});
    total += p.tensor->numel();
  }
  auto value_storage = std::make_shared<Storage>(total);
  auto grad_storage = std::make_shared<Storage>(total);
  values_ = Tensor::view_of(value_storage, 0, {total});
  grads_ = Tensor::view_of(grad_storage, 0, {total});
  values_.fill(0.0f);
  grads_.fill(0.0f);
  for (size_t i = 0; i < params.size(); ++i) {
    const ParameterEntry& e = entries_[i];
    Tensor view = Tensor::view_of(value_storage, e.offset, e.shape);
    view.copy_from(*params[i].tensor);
    view.set_node(std::make_shared<LeafNode>(Tensor::view_of(grad_storage, e.offset, e.shape)));
    *params[i].tensor = view;
  }
}

const ParameterEntry* ParameterArena::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

void ParameterArena::zero_grad() {
  if (grads_.defined()) grads_.fill(0.0f);
}

}  // namespace deja::core
