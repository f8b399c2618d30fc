// SGD with momentum, dampening, Nesterov and L2 weight decay, as PyTorch's
// torch.optim.SGD: g = grad + wd * p; b = g on the first step, else
// b = mu * b + (1 - dampening) * g; g = nesterov ? g + mu * b : b; p -= lr * g.
// One elementwise pass over the arena, split across threads.
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "core/optimizer.h"
#include "core/parallel.h"

namespace deja::core {

namespace {

constexpr int64_t kMinChunk = 1 << 14;  // below this, threading costs more than it saves

void check_step(const char* who, int64_t arena_size, const ParameterArena& params, double lr) {
  if (params.size() != arena_size)
    throw std::invalid_argument(fmt::format("{}: parameter arena has {} values, optimizer was made for {}", who,
                                            params.size(), arena_size));
  if (!std::isfinite(lr) || lr <= 0) throw std::invalid_argument(fmt::format("{}: lr must be positive, got {}", who, lr));
}

class Sgd final : public Optimizer {
 public:
  Sgd(const SgdOptions& o, int64_t arena_size) : o_(o), arena_size_(arena_size) {
    o_.validate();
    if (arena_size < 0) throw std::invalid_argument("sgd: negative arena size");
    if (o_.momentum != 0) momentum_ = Tensor::zeros({arena_size});
  }

  std::string describe() const override {
    std::string s = fmt::format("sgd(lr={}, momentum={}, nesterov={}, weight_decay={}", o_.lr, o_.momentum,
                                o_.nesterov, o_.weight_decay);
    if (o_.dampening != 0) s += fmt::format(", dampening={}", o_.dampening);
    return s + ")";
  }

  void step(ParameterArena& params, double lr) override {
    check_step("sgd", arena_size_, params, lr);
    float* __restrict p = params.values().data();
    const float* __restrict g = params.grads().data();
    const float flr = static_cast<float>(lr), wd = static_cast<float>(o_.weight_decay);
    if (o_.momentum == 0) {
      parallel_for(arena_size_, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) p[i] -= flr * (g[i] + wd * p[i]);
      }, kMinChunk);
    } else {
      float* __restrict b = momentum_.data();
      const float mu = static_cast<float>(o_.momentum);
      // The first step sets b = g (PyTorch): the same loop with mu = 0, keep = 1.
      const float mu_b = steps_ == 0 ? 0.0f : mu;
      const float keep = steps_ == 0 ? 1.0f : static_cast<float>(1.0 - o_.dampening);
      // Nesterov: p -= lr * (d + mu * b); plain momentum: p -= lr * b.
      const float use_d = o_.nesterov ? 1.0f : 0.0f, use_b = o_.nesterov ? mu : 1.0f;
      parallel_for(arena_size_, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const float d = g[i] + wd * p[i];
          const float buf = mu_b * b[i] + keep * d;
          b[i] = buf;
          p[i] -= flr * (use_d * d + use_b * buf);
        }
      }, kMinChunk);
    }
    ++steps_;
  }

  int64_t steps_taken() const override { return steps_; }

  std::vector<std::pair<std::string, Tensor*>> state_tensors() override {
    if (!momentum_.defined()) return {};
    return {{"sgd.momentum", &momentum_}};
  }
  Json state_json() const override { return {{"type", "sgd"}, {"steps", steps_}}; }
  void load_state_json(const Json& j) override {
    if (!j.is_object() || j.value("type", "") != "sgd")
      throw std::invalid_argument("sgd: optimizer state is not an sgd state: " + j.dump());
    const int64_t steps = read_int(j, "steps", -1, "sgd state");
    if (steps < 0) throw std::invalid_argument("sgd state: key 'steps' must be a non-negative integer");
    steps_ = steps;
  }

 private:
  SgdOptions o_;
  int64_t arena_size_;
  Tensor momentum_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options, int64_t arena_size) {
  return std::make_unique<Sgd>(options, arena_size);
}

}  // namespace deja::core
