#include "core/autograd.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

#include "core/parallel.h"

namespace deja::core {

namespace {
thread_local bool g_grad_enabled = true;

void add_into(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->requires_grad()) return true;
  return false;
}

void attach(Tensor& output, std::shared_ptr<Node> node,
            std::initializer_list<const Tensor*> inputs) {
  node->inputs_.clear();
  for (const Tensor* t : inputs) node->inputs_.push_back(t ? t->node() : nullptr);
  node->output_shape_ = output.shape();
  output.set_node(std::move(node));
}

float* Node::output_grad_buffer(float* beta) {
  if (is_leaf()) {
    *beta = 1.0f;
    return static_cast<LeafNode*>(this)->grad_data();
  }
  if (grad_.defined()) {
    *beta = 1.0f;
  } else {
    grad_ = Tensor::empty(output_shape_);
    *beta = 0.0f;
  }
  return grad_.data();
}

float* Node::input_grad(size_t i, float* beta) {
  if (!input_needs_grad(i)) throw std::logic_error("input_grad: input needs no gradient");
  return inputs_[i]->output_grad_buffer(beta);
}

void Node::add_input_grad(size_t i, const Tensor& grad) {
  if (!input_needs_grad(i)) return;
  Node& in = *inputs_[i];
  if (grad.numel() != shape_numel(in.output_shape_))
    throw std::logic_error(std::string(op_name()) + ": gradient of shape " +
                           shape_to_string(grad.shape()) + " for input of shape " +
                           shape_to_string(in.output_shape_));
  if (!in.is_leaf() && !in.grad_.defined() && grad.storage().use_count() == 1) {
    in.grad_ = grad.reshaped(in.output_shape_);  // take the buffer, no copy
    return;
  }
  float beta = 0.0f;
  float* dst = in.output_grad_buffer(&beta);
  if (beta == 0.0f)
    std::copy(grad.data(), grad.data() + grad.numel(), dst);
  else
    add_into(dst, grad.data(), grad.numel());
}

void backward(const Tensor& root, const Tensor& grad_root) {
  if (!root.requires_grad()) throw std::logic_error("backward: tensor does not require grad");
  // Reverse topological order by iterative post-order DFS.
  // `order` owns its nodes so that clearing a node's inputs after its backward
  // cannot free a node that is still to be visited.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root.node(), 0}};
  seen.insert(root.node().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs_.size()) {
      std::shared_ptr<Node> child = node->inputs_[next++];
      if (child && seen.insert(child.get()).second) stack.push_back({std::move(child), 0});
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  Node& top = *root.node();
  if (grad_root.defined()) {
    if (grad_root.numel() != root.numel())
      throw std::invalid_argument("backward: grad_root shape " + shape_to_string(grad_root.shape()) +
                                  " for root " + shape_to_string(root.shape()));
    float beta;
    float* g = top.output_grad_buffer(&beta);
    // Raw pointers and our pool: benches seed 30 MB layer outputs this way, and
    // an element-by-element Tensor::operator[] copy cost more than the layer.
    const float* src = grad_root.data();
    parallel_for(root.numel(), [&](int64_t b, int64_t e) {
      if (beta != 0.0f)
        for (int64_t i = b; i < e; ++i) g[i] += src[i];
      else
        std::copy(src + b, src + e, g + b);
    }, int64_t{1} << 16);
  } else {
    if (root.numel() != 1) throw std::invalid_argument("backward: root is not a scalar");
    float beta;
    float* g = top.output_grad_buffer(&beta);
    g[0] = (beta ? g[0] : 0.0f) + 1.0f;
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    if (node->is_leaf()) continue;
    if (node->grad_.defined()) {
      Tensor grad = std::move(node->grad_);
      node->grad_ = Tensor();
      node->backward(grad);
    }
    node->release();
    node->inputs_.clear();  // frees the graph behind us as we go
  }
}

}  // namespace deja::core
