// Multi-layer LSTM: one coarse autograd op per layer with a hand-written
// backward through time (see lstm.h for the algorithm and the state rules).
//
// Buffers per layer forward: G [B*T, 4H] (input projection, then the
// recurrent term accumulated onto it, then overwritten by the activated gates
// i, f, g, o, then in backward by the pre-activation gradients), C [B*T, H]
// (cell states) and the output Y [B, T, H] which doubles as the store of all
// h_t. Rows are batch-first (b*T + t), so one step's rows are strided by T and
// the per-step sgemms use leading dimensions T*4H and T*H instead of copies.
#include "layers/lstm.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/blas.h"
#include "core/parallel.h"

namespace deja::layers {

namespace {

using core::gemm;
using core::Trans;

// Element-wise chunk size: small enough to split B*H (~13k) over 2 threads,
// large enough that a dispatch is not the cost.
constexpr int64_t kMinChunk = 2048;

// exp for the gate nonlinearities: Cephes' single-precision range reduction
// and polynomial (about 2 ulp), written with plain arithmetic so the gate
// loops vectorise (libm's expf/tanhf are scalar calls and cost more than the
// recurrent GEMM's share of a step at B*H = 13k elements).
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Round to nearest by the 1.5*2^23 trick: std::floor blocks vectorisation here.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline float sigmoid(float v) { return 1.0f / (1.0f + fast_exp(-v)); }
inline float fast_tanh(float v) { return 2.0f / (1.0f + fast_exp(-2.0f * v)) - 1.0f; }

// One batch row of one step, forward: activates the gate pre-activations in
// place (a = projection + recurrent term; the biases are added here), writes
// the cell and hidden state. Separate restrict pointers per gate let the
// compiler vectorise (the four gates share one row of G).
void gates_forward_row(float* __restrict gi, float* __restrict gf, float* __restrict gg,
                       float* __restrict go, const float* __restrict bi, const float* __restrict bf,
                       const float* __restrict bg, const float* __restrict bo,
                       const float* __restrict cprev, float* __restrict c, float* __restrict h,
                       int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = sigmoid(gi[j] + bi[j]);
    const float f = sigmoid(gf[j] + bf[j]);
    const float g = fast_tanh(gg[j] + bg[j]);
    const float o = sigmoid(go[j] + bo[j]);
    const float cj = f * cprev[j] + i * g;
    c[j] = cj;
    h[j] = o * fast_tanh(cj);
    gi[j] = i;
    gf[j] = f;
    gg[j] = g;
    go[j] = o;
  }
}

// One batch row of one step, backward: turns the saved activated gates into
// the gradients of the pre-activations, in place; dc carries the cell
// gradient to the previous step.
void gates_backward_row(float* __restrict gi, float* __restrict gf, float* __restrict gg,
                        float* __restrict go, const float* __restrict c,
                        const float* __restrict cprev, const float* __restrict dy,
                        const float* __restrict dh_next, float* __restrict dc, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = gi[j], f = gf[j], g = gg[j], o = go[j];
    const float tc = fast_tanh(c[j]);
    const float dh = dy[j] + dh_next[j];
    const float dcv = dc[j] + dh * o * (1.0f - tc * tc);
    gi[j] = dcv * g * i * (1.0f - i);
    gf[j] = dcv * cprev[j] * f * (1.0f - f);
    gg[j] = dcv * i * (1.0f - g * g);
    go[j] = dh * tc * o * (1.0f - o);
    dc[j] = dcv * f;
  }
}

class LstmLayerNode final : public core::Node {
 public:
  int64_t batch = 0, steps = 0, in = 0, hidden = 0;
  Tensor gates, cells, y, h0, c0, mask, w_hh, w_ih;
  std::shared_ptr<core::Product> product;
  std::unique_ptr<core::ProductSaved> saved;

  const char* op_name() const override { return "lstm_layer"; }
  void backward(const Tensor& grad_output) override;
  void release() override {
    gates = cells = y = h0 = c0 = mask = w_hh = w_ih = Tensor();
    saved.reset();
    product.reset();
  }
};

// Input order of the node.
enum Input : size_t { kX = 0, kH0, kC0, kWih, kWhh, kBih, kBhh };

void LstmLayerNode::backward(const Tensor& grad_output) {
  const int64_t B = batch, T = steps, H = hidden, G4 = 4 * hidden, N = batch * steps;
  float* G = gates.data();
  const float* C = cells.data();
  const float* dy = grad_output.data();
  const float* c0p = c0.data();
  Tensor dh_next = Tensor::zeros({B, H});
  Tensor dc = Tensor::zeros({B, H});
  float* dhn = dh_next.data();
  float* dcp = dc.data();
  const bool want_dh0 = input_needs_grad(kH0);

  for (int64_t t = T - 1; t >= 0; --t) {
    core::parallel_for(B, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = b * T + t;
        float* gr = G + row * G4;
        gates_backward_row(gr, gr + H, gr + 2 * H, gr + 3 * H, C + row * H,
                           t > 0 ? C + (row - 1) * H : c0p + b * H, dy + row * H, dhn + b * H,
                           dcp + b * H, H);
      }
    });
    // dh_{t-1} = dG_t . W_hh (not needed before step 0 unless h0 wants a gradient).
    if (t > 0 || want_dh0)
      gemm(Trans::No, Trans::No, B, H, G4, 1.0f, G + t * G4, T * G4, w_hh.data(), H, 0.0f, dhn, H);
  }

  if (want_dh0) add_input_grad(kH0, dh_next);
  if (input_needs_grad(kC0)) add_input_grad(kC0, dc);

  if (input_needs_grad(kWhh)) {
    // dW_hh += sum_t dG_t^T . h_{t-1}: one GEMM over all rows, with the
    // previous hidden state of every row gathered next to it.
    Tensor hprev = Tensor::empty({N, H});
    const float* yp = y.data();
    const float* h0p = h0.data();
    float* hp = hprev.data();
    core::parallel_for(B, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        std::copy(h0p + b * H, h0p + (b + 1) * H, hp + b * T * H);
        std::copy(yp + b * T * H, yp + (b * T + T - 1) * H, hp + (b * T + 1) * H);
      }
    });
    float beta = 0.0f;
    float* dw = input_grad(kWhh, &beta);
    gemm(Trans::Yes, Trans::No, G4, H, N, 1.0f, G, G4, hp, H, beta, dw, H);
  }

  if (input_needs_grad(kBih) || input_needs_grad(kBhh)) {
    Tensor db = Tensor::zeros({G4});
    float* dbp = db.data();
    core::parallel_for(
        G4,
        [&](int64_t c0i, int64_t c1i) {
          for (int64_t r = 0; r < N; ++r) {
            const float* gr = G + r * G4;
            for (int64_t c = c0i; c < c1i; ++c) dbp[c] += gr[c];
          }
        },
        256);
    if (input_needs_grad(kBih)) add_input_grad(kBih, db);
    if (input_needs_grad(kBhh)) add_input_grad(kBhh, db);
  }

  const bool want_dw = input_needs_grad(kWih), want_dx = input_needs_grad(kX);
  if (!want_dw && !want_dx) return;
  float wbeta = 0.0f;
  float* dw = want_dw ? input_grad(kWih, &wbeta) : nullptr;
  if (dw && wbeta == 0.0f) std::fill(dw, dw + G4 * in, 0.0f);  // the product accumulates
  if (!want_dx) {
    product->backward(*saved, gates, w_ih, dw, nullptr, 0.0f);
  } else if (!mask.defined()) {
    float beta = 0.0f;
    float* dx = input_grad(kX, &beta);
    product->backward(*saved, gates, w_ih, dw, dx, beta);
  } else {
    Tensor dxm = Tensor::empty({N, in});
    product->backward(*saved, gates, w_ih, dw, dxm.data(), 0.0f);
    const float* m = mask.data();
    float* d = dxm.data();
    core::parallel_for(
        N * in, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) d[i] *= m[i]; },
        kMinChunk);
    add_input_grad(kX, dxm);
  }
}

struct LayerResult {
  Tensor y, h_last, c_last;
};

// One layer over the whole window. x is [B, T, in]; mask (optional) is the
// scaled dropout mask applied to x.
LayerResult layer_forward(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                          const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                          const std::shared_ptr<core::Product>& product, const Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), in = x.size(2), H = w_hh.size(1), G4 = 4 * H;
  const int64_t N = B * T;
  const bool grad = core::needs_grad({&x, &h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh});

  Tensor xin;
  if (mask.defined()) {
    xin = Tensor::empty({N, in});
    const float* xp = x.data();
    const float* m = mask.data();
    float* d = xin.data();
    core::parallel_for(
        N * in, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) d[i] = xp[i] * m[i]; },
        kMinChunk);
  } else {
    xin = x.reshaped({N, in});
  }
  Tensor gates = Tensor::empty({N, G4});
  std::unique_ptr<core::ProductSaved> saved = product->forward(xin, w_ih, gates, grad);

  Tensor bsum = Tensor::empty({G4});
  for (int64_t i = 0; i < G4; ++i) bsum[i] = b_ih[i] + b_hh[i];
  Tensor cells = Tensor::empty({N, H});
  Tensor y = Tensor::empty({B, T, H});
  float* G = gates.data();
  float* C = cells.data();
  float* Y = y.data();
  const float* bs = bsum.data();
  const float* c0p = c0.data();

  for (int64_t t = 0; t < T; ++t) {
    const float* hprev = t == 0 ? h0.data() : Y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    gemm(Trans::No, Trans::Yes, B, G4, H, 1.0f, hprev, ldh, w_hh.data(), H, 1.0f, G + t * G4,
         T * G4);
    core::parallel_for(B, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = b * T + t;
        float* gr = G + row * G4;
        gates_forward_row(gr, gr + H, gr + 2 * H, gr + 3 * H, bs, bs + H, bs + 2 * H, bs + 3 * H,
                          t > 0 ? C + (row - 1) * H : c0p + b * H, C + row * H, Y + row * H, H);
      }
    });
  }

  LayerResult r;
  r.h_last = Tensor::empty({B, H});
  r.c_last = Tensor::empty({B, H});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t row = b * T + T - 1;
    std::copy(Y + row * H, Y + (row + 1) * H, r.h_last.data() + b * H);
    std::copy(C + row * H, C + (row + 1) * H, r.c_last.data() + b * H);
  }
  if (grad) {
    auto node = std::make_shared<LstmLayerNode>();
    node->batch = B;
    node->steps = T;
    node->in = in;
    node->hidden = H;
    node->gates = gates;
    node->cells = cells;
    node->y = y.detached();
    node->h0 = h0.detached();
    node->c0 = c0.detached();
    node->mask = mask;
    node->w_hh = w_hh.detached();
    node->w_ih = w_ih.detached();
    node->product = product;
    node->saved = std::move(saved);
    core::attach(y, std::move(node), {&x, &h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh});
  }
  r.y = y;
  return r;
}

std::string layer_name(const char* base, int64_t k) { return std::string(base) + std::to_string(k); }

}  // namespace

void LstmOptions::validate() const {
  if (input_size < 1)
    throw std::invalid_argument("lstm: input_size must be >= 1, got " + std::to_string(input_size));
  if (hidden_size < 1)
    throw std::invalid_argument("lstm: hidden_size must be >= 1, got " + std::to_string(hidden_size));
  if (num_layers < 1)
    throw std::invalid_argument("lstm: num_layers must be >= 1, got " + std::to_string(num_layers));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("lstm: dropout must be in [0, 1), got " + std::to_string(dropout));
}

Lstm::Lstm(const LstmOptions& options, core::Rng& init_rng, core::Rng dropout_rng)
    : options_(options), dropout_rng_(dropout_rng) {
  options_.validate();
  const int64_t H = options_.hidden_size;
  const float bound = 1.0f / std::sqrt(static_cast<float>(H));
  layers_.resize(static_cast<size_t>(options_.num_layers));
  auto init = [&](Tensor& t, Shape shape) {
    t = Tensor::empty(std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = init_rng.uniform(-bound, bound);
  };
  for (int64_t k = 0; k < options_.num_layers; ++k) {
    Layer& l = layers_[static_cast<size_t>(k)];
    const int64_t in = k == 0 ? options_.input_size : H;
    init(l.w_ih, {4 * H, in});
    init(l.w_hh, {4 * H, H});
    init(l.b_ih, {4 * H});
    init(l.b_hh, {4 * H});
    l.product = core::make_dense_product();
    register_parameter(layer_name("weight_ih_l", k), &l.w_ih);
    register_parameter(layer_name("weight_hh_l", k), &l.w_hh);
    register_parameter(layer_name("bias_ih_l", k), &l.b_ih);
    register_parameter(layer_name("bias_hh_l", k), &l.b_hh);
  }
}

Shape Lstm::output_shape(const Shape& input) const {
  if (input.size() != 3 || input[2] != options_.input_size || input[0] < 1 || input[1] < 1)
    throw std::invalid_argument("lstm: expected input [B, T, " + std::to_string(options_.input_size) +
                                "], got " + core::shape_to_string(input));
  return {input[0], input[1], options_.hidden_size};
}

int64_t Lstm::forward_flops(const Shape& input) const {
  output_shape(input);
  const int64_t rows = input[0] * input[1], H = options_.hidden_size;
  int64_t flops = 0;
  for (int64_t k = 0; k < options_.num_layers; ++k) {
    const int64_t in = k == 0 ? options_.input_size : H;
    flops += 2 * rows * 4 * H * (in + H);
  }
  return flops;
}

Tensor Lstm::forward(const Tensor& x) {
  output_shape(x.shape());
  const int64_t B = x.size(0), H = options_.hidden_size;
  const bool drop = is_training() && options_.dropout > 0.0;
  const float keep_scale = static_cast<float>(1.0 / (1.0 - options_.dropout));
  const float p = static_cast<float>(options_.dropout);
  Tensor cur = x;
  for (size_t k = 0; k < layers_.size(); ++k) {
    Layer& l = layers_[k];
    if (!l.h.defined() || l.h.size(0) != B) {
      l.h = Tensor::zeros({B, H});
      l.c = Tensor::zeros({B, H});
    }
    Tensor mask;
    if (drop && k > 0) {
      mask = Tensor::empty(cur.shape());
      for (int64_t i = 0; i < mask.numel(); ++i)
        mask[i] = dropout_rng_.uniform() < p ? 0.0f : keep_scale;
    }
    LayerResult r = layer_forward(cur, l.h, l.c, l.w_ih, l.w_hh, l.b_ih, l.b_hh, l.product, mask);
    l.h = r.h_last;
    l.c = r.c_last;
    cur = r.y;
  }
  return cur;
}

void Lstm::reset_state() {
  for (Layer& l : layers_) {
    l.h = Tensor();
    l.c = Tensor();
  }
}

void Lstm::detach_state() {
  for (Layer& l : layers_) {
    if (l.h.defined()) l.h = l.h.detached();
    if (l.c.defined()) l.c = l.c.detached();
  }
}

void Lstm::set_state(int64_t layer, const Tensor& h, const Tensor& c) {
  if (layer < 0 || layer >= options_.num_layers)
    throw std::invalid_argument("lstm: set_state layer " + std::to_string(layer) + " out of range [0, " +
                                std::to_string(options_.num_layers) + ")");
  if (h.dim() != 2 || h.size(1) != options_.hidden_size || c.shape() != h.shape())
    throw std::invalid_argument("lstm: set_state expects h and c [B, " +
                                std::to_string(options_.hidden_size) + "], got " +
                                core::shape_to_string(h.shape()) + " and " +
                                core::shape_to_string(c.shape()));
  layers_[static_cast<size_t>(layer)].h = h;
  layers_[static_cast<size_t>(layer)].c = c;
}

core::Product* Lstm::product() { return layers_.front().product.get(); }

void Lstm::set_product(std::shared_ptr<core::Product> product) {
  if (!product) throw std::invalid_argument("lstm: set_product given a null product");
  for (Layer& l : layers_) l.product = product;
}

void Lstm::set_layer_product(int64_t layer, std::shared_ptr<core::Product> product) {
  if (!product) throw std::invalid_argument("lstm: set_layer_product given a null product");
  if (layer < 0 || layer >= options_.num_layers)
    throw std::invalid_argument("lstm: set_layer_product layer " + std::to_string(layer) +
                                " out of range [0, " + std::to_string(options_.num_layers) + ")");
  layers_[static_cast<size_t>(layer)].product = std::move(product);
}

std::vector<core::Product*> Lstm::products() {
  std::vector<core::Product*> out;
  for (Layer& l : layers_) out.push_back(l.product.get());
  return out;
}

}  // namespace deja::layers
