// Gradient check shared by every op test: analytic gradients of f against
// central differences of the scalar <g, f(params)>, accumulated in double,
// with a random upstream gradient g (seeded), a tolerance per op, and a check
// that the analytic gradient is not all zeros (a check that passes because both
// sides are zero proves nothing).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/parameters.h"
#include "core/rng.h"

namespace deja::testing {

struct GradCheckOptions {
  float eps = 1e-2f;      // perturbation (float32 forward: not too small)
  double rtol = 2e-2;     // relative tolerance
  double atol = 2e-3;     // absolute tolerance
  int max_checks = 150;   // elements checked per parameter (a seeded random subset)
  uint64_t seed = 1;
};

// `params` are bound into a fresh arena (so they become leaves with gradients);
// `f` must be deterministic and use them.
inline void check_gradients(const std::function<core::Tensor()>& f,
                            std::vector<core::NamedParameter> params,
                            GradCheckOptions opt = GradCheckOptions()) {
  using core::Tensor;
  core::ParameterArena arena;
  arena.bind(params);
  Tensor y = f();
  REQUIRE(y.requires_grad());
  core::Rng rng(opt.seed, 99);
  Tensor g = Tensor::empty(y.shape());
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = rng.normal();
  core::backward(y, g);

  auto projected = [&] {
    core::NoGradGuard no_grad;
    Tensor out = f();
    double s = 0.0;
    for (int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(out[i]) * g[i];
    return s;
  };
  for (const auto& p : params) {
    Tensor value = *p.tensor;
    Tensor grad = p.tensor->grad();
    double grad_abs = 0.0;
    for (int64_t i = 0; i < grad.numel(); ++i) grad_abs += std::fabs(grad[i]);
    INFO("parameter ", p.name);
    CHECK_MESSAGE(grad_abs > 0.0, "analytic gradient of ", p.name, " is all zeros");
    std::vector<int64_t> picks;
    if (value.numel() <= opt.max_checks) {
      for (int64_t i = 0; i < value.numel(); ++i) picks.push_back(i);
    } else {
      for (int k = 0; k < opt.max_checks; ++k)
        picks.push_back(rng.below(static_cast<uint32_t>(value.numel())));
    }
    int failures = 0;
    for (int64_t i : picks) {
      float saved = value[i];
      value[i] = saved + opt.eps;
      double plus = projected();
      value[i] = saved - opt.eps;
      double minus = projected();
      value[i] = saved;
      double numeric = (plus - minus) / (2.0 * opt.eps);
      double analytic = grad[i];
      double tol = opt.atol + opt.rtol * std::max(std::fabs(numeric), std::fabs(analytic));
      if (std::fabs(numeric - analytic) > tol && failures++ < 5)
        FAIL_CHECK(p.name << "[" << i << "]: analytic " << analytic << " vs numeric " << numeric);
    }
    CHECK_MESSAGE(failures == 0, p.name, ": ", failures, " of ", picks.size(), " elements off");
  }
}

}  // namespace deja::testing
