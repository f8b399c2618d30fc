// The dense weight product: three sgemm calls, X kept for the weight gradient.
#include <chrono>
#include <stdexcept>

#include "core/blas.h"
#include "core/product.h"

namespace deja::core {

namespace {

struct DenseSaved final : ProductSaved {
  Tensor x;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class DenseProduct final : public Product {
 public:
  std::string describe() const override { return "dense"; }
  bool is_plain_dense() const override { return true; }

  std::unique_ptr<ProductSaved> forward(const Tensor& x, const Tensor& w, Tensor& y,
                                        bool for_backward) override {
    auto t0 = std::chrono::steady_clock::now();
    const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
    if (w.size(1) != k || y.numel() != n * m)
      throw std::invalid_argument("dense product: X " + shape_to_string(x.shape()) + ", W " +
                                  shape_to_string(w.shape()) + ", Y " + shape_to_string(y.shape()));
    gemm(Trans::No, Trans::Yes, n, m, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y.data(), m);
    ++stats_.forward_calls;
    stats_.remaining_ratio_sum += 1.0;
    stats_.forward_s += seconds_since(t0);
    if (!for_backward) return nullptr;
    auto saved = std::make_unique<DenseSaved>();
    saved->x = x.detached();
    return saved;
  }

  void backward(ProductSaved& saved_base, const Tensor& dy, const Tensor& w, float* dw, float* dx,
                float dx_beta) override {
    auto t0 = std::chrono::steady_clock::now();
    auto& saved = static_cast<DenseSaved&>(saved_base);
    const Tensor& x = saved.x;
    const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
    if (dw) gemm(Trans::Yes, Trans::No, m, k, n, 1.0f, dy.data(), m, x.data(), k, 1.0f, dw, k);
    if (dx) gemm(Trans::No, Trans::No, n, k, m, 1.0f, dy.data(), m, w.data(), k, dx_beta, dx, k);
    stats_.backward_s += seconds_since(t0);
  }
};

}  // namespace

std::shared_ptr<Product> make_dense_product() { return std::make_shared<DenseProduct>(); }

}  // namespace deja::core
