// A product that forwards to another one but is not it, and keeps the base
// class's RowSource / RowSink calls (which materialise the patch matrix and
// its gradient): with it conv2d takes its general path over a materialised
// patch matrix, the reference its other paths are tested against.
#pragma once

#include <memory>
#include <string>

#include "core/product.h"

namespace deja::testing {

class ForwardingProduct final : public core::Product {
 public:
  explicit ForwardingProduct(std::shared_ptr<core::Product> inner = core::make_dense_product())
      : inner_(std::move(inner)) {}
  std::string describe() const override { return "forwarding"; }
  std::unique_ptr<core::ProductSaved> forward(const core::Tensor& x, const core::Tensor& w, core::Tensor& y,
                                              bool for_backward) override {
    return inner_->forward(x, w, y, for_backward);
  }
  void backward(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w, float* dw, float* dx,
                float dx_beta) override {
    inner_->backward(saved, dy, w, dw, dx, dx_beta);
  }

 private:
  std::shared_ptr<core::Product> inner_;
};

}  // namespace deja::testing
