// Adam and AdamW, as PyTorch's torch.optim.Adam / AdamW: with t the step
// number, m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) (eps outside the
// square root). Weight decay: Adam adds wd * p to g; AdamW multiplies p by
// (1 - lr * wd) before the update. One elementwise pass over the arena.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "core/optimizer.h"
#include "core/parallel.h"

namespace deja::core {

namespace {

constexpr int64_t kMinChunk = 1 << 14;

struct AdamScalars {
  float b1, b2, eps, l2, shrink, step_size, inv_sqrt_bc2;
};

// The elementwise update over [begin, end), in tiles of kTile: GCC cannot
// vectorise a loop that calls sqrt (errno semantics), so the square roots get a
// pass of their own (AVX when compiled for it) between two vectorised passes.
// Each element sees the same operations in the same order as the one-loop
// formula, so results do not depend on tile or thread boundaries.
constexpr int64_t kTile = 512;

void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t begin, int64_t end, const AdamScalars k) {
  alignas(64) float denom[kTile];
  for (int64_t t0 = begin; t0 < end; t0 += kTile) {
    const int64_t n = std::min(kTile, end - t0);
    float* __restrict pt = p + t0;
    const float* __restrict gt = g + t0;
    float* __restrict mt = m + t0;
    float* __restrict vt = v + t0;
    for (int64_t i = 0; i < n; ++i) {
      const float d = gt[i] + k.l2 * pt[i];
      mt[i] = k.b1 * mt[i] + (1.0f - k.b1) * d;
      vt[i] = k.b2 * vt[i] + (1.0f - k.b2) * d * d;
    }
    int64_t i = 0;
#if defined(__AVX__)
    // vsqrtps is correctly rounded, so this equals std::sqrt element for element.
    for (; i + 8 <= n; i += 8) _mm256_store_ps(denom + i, _mm256_sqrt_ps(_mm256_loadu_ps(vt + i)));
#endif
    for (; i < n; ++i) denom[i] = std::sqrt(vt[i]);
    for (int64_t i = 0; i < n; ++i)
      pt[i] = pt[i] * k.shrink - k.step_size * mt[i] / (denom[i] * k.inv_sqrt_bc2 + k.eps);
  }
}

class Adam final : public Optimizer {
 public:
  Adam(const AdamOptions& o, int64_t arena_size) : o_(o), arena_size_(arena_size) {
    o_.validate();
    if (arena_size < 0) throw std::invalid_argument("adam: negative arena size");
    m_ = Tensor::zeros({arena_size});
    v_ = Tensor::zeros({arena_size});
  }

  const char* name() const { return o_.decoupled ? "adamw" : "adam"; }

  std::string describe() const override {
    return fmt::format("{}(lr={}, betas=({}, {}), eps={}, weight_decay={})", name(), o_.lr, o_.beta1, o_.beta2,
                       o_.eps, o_.weight_decay);
  }

  void step(ParameterArena& params, double lr) override {
    if (params.size() != arena_size_)
      throw std::invalid_argument(fmt::format("{}: parameter arena has {} values, optimizer was made for {}",
                                              name(), params.size(), arena_size_));
    if (!std::isfinite(lr) || lr <= 0)
      throw std::invalid_argument(fmt::format("{}: lr must be positive, got {}", name(), lr));
    const int64_t t = steps_ + 1;
    const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t));
    AdamScalars k;
    k.step_size = static_cast<float>(lr / bc1);
    k.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    k.b1 = static_cast<float>(o_.beta1);
    k.b2 = static_cast<float>(o_.beta2);
    k.eps = static_cast<float>(o_.eps);
    k.l2 = o_.decoupled ? 0.0f : static_cast<float>(o_.weight_decay);
    k.shrink = o_.decoupled ? static_cast<float>(1.0 - lr * o_.weight_decay) : 1.0f;
    float* p = params.values().data();
    const float* g = params.grads().data();
    float* m = m_.data();
    float* v = v_.data();
    parallel_for(arena_size_, [=](int64_t begin, int64_t end) { adam_update(p, g, m, v, begin, end, k); },
                 kMinChunk);
    steps_ = t;
  }

  int64_t steps_taken() const override { return steps_; }
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override {
    return {{"adam.m", &m_}, {"adam.v", &v_}};
  }
  Json state_json() const override { return {{"type", name()}, {"steps", steps_}}; }
  void load_state_json(const Json& j) override {
    if (!j.is_object() || j.value("type", "") != name())
      throw std::invalid_argument(std::string(name()) + ": optimizer state is not an " + name() +
                                  " state: " + j.dump());
    const int64_t steps = read_int(j, "steps", -1, std::string(name()) + " state");
    if (steps < 0) throw std::invalid_argument(std::string(name()) + " state: key 'steps' must be a non-negative integer");
    steps_ = steps;
  }

 private:
  AdamOptions o_;
  int64_t arena_size_;
  Tensor m_, v_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_adam(const AdamOptions& options, int64_t arena_size) {
  return std::make_unique<Adam>(options, arena_size);
}

}  // namespace deja::core
