#include <doctest/doctest.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/parameters.h"

using namespace deja::core;

namespace {
// y = sum(x * x) as a tiny coarse op, to exercise the engine.
class SquareSumNode final : public Node {
 public:
  explicit SquareSumNode(Tensor x) : x_(std::move(x)) {}
  const char* op_name() const override { return "square_sum"; }
  void backward(const Tensor& g) override {
    float beta;
    float* dx = input_grad(0, &beta);
    for (int64_t i = 0; i < x_.numel(); ++i) dx[i] = beta * dx[i] + 2.0f * x_[i] * g[0];
  }
  void release() override { x_ = Tensor(); }

 private:
  Tensor x_;
};

Tensor square_sum(const Tensor& x) {
  Tensor y = Tensor::empty({1});
  y[0] = 0;
  for (int64_t i = 0; i < x.numel(); ++i) y[0] += x[i] * x[i];
  if (needs_grad({&x})) attach(y, std::make_shared<SquareSumNode>(x.detached()), {&x});
  return y;
}
}  // namespace

TEST_CASE("parameters bind into arenas and leaves accumulate gradients") {
  Tensor a = Tensor::from({2}, {1.0f, 2.0f});
  Tensor b = Tensor::from({3}, {3.0f, 4.0f, 5.0f});
  ParameterArena arena;
  arena.bind({{"a", &a}, {"b", &b}});
  CHECK(arena.entries().size() == 2);
  CHECK(arena.entries()[1].offset % 16 == 0);
  CHECK(a.storage() == arena.values().storage());
  CHECK(a.requires_grad());

  Tensor loss = square_sum(reshape(b, {3, 1}));
  backward(loss);
  CHECK(b.grad()[0] == doctest::Approx(6.0f));
  CHECK(b.grad()[2] == doctest::Approx(10.0f));
  CHECK(a.grad()[0] == 0.0f);
  // A second backward accumulates until zero_grad.
  backward(square_sum(b));
  CHECK(b.grad()[1] == doctest::Approx(16.0f));
  arena.zero_grad();
  CHECK(b.grad()[1] == 0.0f);
}

TEST_CASE("a tensor used twice receives the sum of both gradients") {
  Tensor a = Tensor::from({2}, {1.0f, -3.0f});
  ParameterArena arena;
  arena.bind({{"a", &a}});
  Tensor s1 = square_sum(a);
  Tensor s2 = square_sum(reshape(a, {1, 2}));
  Tensor both = Tensor::from({2}, {s1[0], s2[0]});
  // Backward from each root separately accumulates into the same leaf.
  backward(s1);
  backward(s2);
  CHECK(a.grad()[1] == doctest::Approx(-12.0f));
}

TEST_CASE("no-grad mode records nothing") {
  Tensor a = Tensor::from({1}, {2.0f});
  ParameterArena arena;
  arena.bind({{"a", &a}});
  NoGradGuard guard;
  CHECK_FALSE(square_sum(a).requires_grad());
}

TEST_CASE("tensor views share storage and reshape checks sizes") {
  Tensor t = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor row = t.slice_rows(1, 2);
  CHECK(row.shape() == Shape{1, 3});
  CHECK(row[0] == 3.0f);
  row[0] = 9.0f;
  CHECK(t[3] == 9.0f);
  CHECK(t.reshaped({3, -1}).shape() == Shape{3, 2});
  CHECK_THROWS_WITH(t.reshaped({4, 2}), "reshape: cannot view [2, 3] as [4, 2]");
  CHECK(reinterpret_cast<uintptr_t>(Tensor::empty({5}).data()) % 64 == 0);
}
