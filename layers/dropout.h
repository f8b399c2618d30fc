// Inverted dropout: in training each element is kept with probability 1 - p
// and scaled by 1/(1-p), so evaluation is the identity (the input tensor itself
// is returned). The mask comes from the layer's own Rng (the Dropout purpose
// stream), drawn sequentially, so a run is reproducible from the seed and a
// checkpoint that saves rng().state() resumes the same masks.
#pragma once

#include "core/rng.h"
#include "layers/module.h"

namespace deja::layers {

struct DropoutOptions {
  double p = 0.5;
  void validate() const;  // 0 <= p < 1
};

// Functional form, always in training mode; draws numel(x) numbers from rng.
Tensor dropout(const Tensor& x, double p, core::Rng& rng);

class Dropout final : public Module {
 public:
  Dropout(const DropoutOptions& options, core::Rng rng);
  std::string type() const override { return "dropout"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input) const override { return input; }
  int64_t forward_flops(const Shape& input) const override;  // one multiply per element
  core::Rng& rng() { return rng_; }
  const DropoutOptions& options() const { return options_; }

 private:
  DropoutOptions options_;
  core::Rng rng_;
};

}  // namespace deja::layers
