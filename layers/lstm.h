// Multi-layer LSTM, batch-first: [B, T, in] -> [B, T, hidden] (the last
// layer's hidden states). PyTorch's gate order (i, f, g, o) and parameter names
// per layer k: weight_ih_l{k} [4H, in], weight_hh_l{k} [4H, H], bias_ih_l{k}
// [4H], bias_hh_l{k} [4H], all initialised U(-1/sqrt(H), 1/sqrt(H)).
//
// Each layer is ONE coarse autograd op with a hand-written backward through
// time. Forward: the input projection X.W_ih^T for all B*T rows is one call of
// the layer's core::Product (dense or reuse: the reuse engine clusters these
// rows like a linear layer's), then a loop over steps with one sgemm per step
// (h_{t-1}.W_hh^T, accumulated onto the projection) and one fused pass of gate
// nonlinearities and cell update. Backward runs the loop in reverse (one sgemm
// per step for dh_{t-1}), then dW_hh by a single GEMM over all steps, and ONE
// product backward for dW_ih and dX.
//
// State: h and c per layer carried from one forward to the next (truncated
// BPTT). A forward stores its final h, c as plain values, so no graph ever
// spans two windows; the state that goes into a forward is an input of the
// layer node, so a caller-installed state that requires grad (set_state, used
// by gradient checks) receives its gradient. detach_state() drops such a link.
// A forward whose batch differs from the stored state's starts from zeros.
// Dropout (train mode only) is applied to the input of every layer but the
// first, fused into that layer's op (the mask is saved for backward).
// Limits: no bidirectional, no projection (proj_size), no peepholes, batch-first only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/product.h"
#include "core/rng.h"
#include "layers/module.h"

namespace deja::layers {

struct LstmOptions {
  int64_t input_size = 0, hidden_size = 0, num_layers = 1;
  double dropout = 0.0;  // between layers, train mode only; in [0, 1)
  void validate() const;  // throws std::invalid_argument naming the field and value
};

class Lstm final : public Module {
 public:
  Lstm(const LstmOptions& options, core::Rng& init_rng, core::Rng dropout_rng);
  std::string type() const override { return "lstm"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override;
  int64_t forward_flops(const Shape& input) const override;

  void reset_state();   // zero h, c (next forward sizes them to its batch)
  void detach_state();  // keep values, cut the graph (between truncated-BPTT windows)
  // Installs the state of one layer ([B, H] each); it may require grad.
  void set_state(int64_t layer, const Tensor& h, const Tensor& c);
  const Tensor& h_state(int64_t layer) const { return layers_.at(layer).h; }
  const Tensor& c_state(int64_t layer) const { return layers_.at(layer).c; }
  core::Rng& dropout_rng() { return dropout_rng_; }

  // The input projection of each layer goes through its own product (dense by default).
  core::Product* product() override;                                 // layer 0's product
  void set_product(std::shared_ptr<core::Product> product) override;  // every layer's (shared)
  std::vector<core::Product*> products();                            // one per layer
  // Sets one layer's product (separate statistics per layer).
  void set_layer_product(int64_t layer, std::shared_ptr<core::Product> product);

  const LstmOptions& options() const { return options_; }
  Tensor& weight_ih(int64_t layer) { return layers_.at(layer).w_ih; }
  Tensor& weight_hh(int64_t layer) { return layers_.at(layer).w_hh; }
  Tensor& bias_ih(int64_t layer) { return layers_.at(layer).b_ih; }
  Tensor& bias_hh(int64_t layer) { return layers_.at(layer).b_hh; }

 private:
  struct Layer {
    Tensor w_ih, w_hh, b_ih, b_hh;
    Tensor h, c;  // carried state [B, H]; undefined until the first forward
    std::shared_ptr<core::Product> product;
  };
  LstmOptions options_;
  std::vector<Layer> layers_;
  core::Rng dropout_rng_;
};

}  // namespace deja::layers
