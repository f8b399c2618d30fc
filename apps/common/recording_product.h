// A product that runs another product and keeps copies of the last X and W it
// saw: how benches, calibration and the reuse sweep get a layer's real
// im2col rows without reaching into the layer.
#pragma once
#include <memory>
#include <string>

#include "core/product.h"

namespace deja::apps {

class RecordingProduct final : public core::Product {
 public:
  explicit RecordingProduct(std::shared_ptr<core::Product> inner) : inner_(std::move(inner)) {}
  std::string describe() const override { return inner_->describe(); }
  bool is_reuse() const override { return inner_->is_reuse(); }
  std::unique_ptr<core::ProductSaved> forward(const core::Tensor& x, const core::Tensor& w,
                                              core::Tensor& y, bool for_backward) override {
    last_x_ = x.clone();
    last_w_ = w.clone();
    return inner_->forward(x, w, y, for_backward);
  }
  void backward(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w, float* dw,
                float* dx, float dx_beta) override {
    last_dy_ = dy.clone();
    inner_->backward(saved, dy, w, dw, dx, dx_beta);
  }
  const core::Tensor& last_x() const { return last_x_; }
  const core::Tensor& last_w() const { return last_w_; }
  const core::Tensor& last_dy() const { return last_dy_; }
  const std::shared_ptr<core::Product>& inner() const { return inner_; }

 private:
  std::shared_ptr<core::Product> inner_;
  core::Tensor last_x_, last_w_, last_dy_;
};

}  // namespace deja::apps
