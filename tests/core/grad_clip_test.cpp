#include <doctest/doctest.h>

#include <cmath>

#include "core/grad_clip.h"
#include "core/parallel.h"

using namespace deja::core;

namespace {
struct Params {
  Tensor a = Tensor::zeros({3}), b = Tensor::zeros({50000});
  ParameterArena arena;
  Params() {
    arena.bind({{"a", &a}, {"b", &b}});
    Tensor ga = a.grad(), gb = b.grad();
    ga[0] = 3.0f, ga[1] = -4.0f, ga[2] = 1.0f;
    for (int64_t i = 0; i < gb.numel(); ++i) gb[i] = 0.01f * std::sin(static_cast<float>(i));
  }
  double naive_norm() const {
    double s = 0;
    for (float x : a.grad().to_vector()) s += double(x) * x;
    for (float x : b.grad().to_vector()) s += double(x) * x;
    return std::sqrt(s);
  }
};
}  // namespace

TEST_CASE("global grad norm matches a naive sum and does not depend on the thread count") {
  Params p;
  const double naive = p.naive_norm();
  set_num_threads(1);
  const double one = global_grad_norm(p.arena);
  set_num_threads(2);
  const double two = global_grad_norm(p.arena);
  set_num_threads(1);
  CHECK(one == doctest::Approx(naive).epsilon(1e-12));
  CHECK(one == two);  // bitwise
  CHECK(one > 5.0);
}

TEST_CASE("clip_grad_norm scales only when the norm exceeds the limit") {
  Params p;
  const double before = p.naive_norm();
  const auto ga = p.a.grad().to_vector();
  CHECK(clip_grad_norm(p.arena, 1000.0) == doctest::Approx(before));
  CHECK(p.a.grad().to_vector() == ga);  // untouched
  CHECK(clip_grad_norm(p.arena, 2.0) == doctest::Approx(before));
  CHECK(p.naive_norm() == doctest::Approx(2.0).epsilon(1e-5));
  CHECK(p.a.grad()[1] == doctest::Approx(-4.0 * 2.0 / before).epsilon(1e-5));
  CHECK_THROWS_WITH(clip_grad_norm(p.arena, 0.0), "clip_grad_norm: max_norm must be a positive number, got 0");
  p.a.grad()[0] = NAN;
  CHECK(std::isnan(clip_grad_norm(p.arena, 1.0)));
  CHECK(p.a.grad()[1] == doctest::Approx(-4.0 * 2.0 / before).epsilon(1e-5));  // left alone
}
