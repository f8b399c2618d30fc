// The low-rank product (see lowrank_product.h). P is kept block-major,
// [blocks * H][rows], so a block's projections of a tile of rows are one
// GEMM output and the three products are plain sgemm calls.
#include "reuse/lowrank_product.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "core/bf16_gemm.h"
#include "core/blas.h"
#include "core/buffer_cache.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/serial_blas.h"
#include "core/stopwatch.h"
#include "reuse/kept_projection.h"
#include "reuse/lowrank_bf16.h"
#include "reuse/lsh.h"

namespace deja::reuse {

namespace {

constexpr int64_t kTileRows = 256;  // rows per K-major tile from a source (one CifarNet conv2 image); even

// Pair words from the buffer cache, so bf16's P (17-33 MB at CifarNet conv2)
// does not come as fresh pages each step.
class CachedWords {
 public:
  CachedWords() = default;
  explicit CachedWords(size_t count)
      : bytes_(count * sizeof(uint32_t)), words_(static_cast<uint32_t*>(core::acquire_buffer(bytes_))) {}
  ~CachedWords() {
    if (words_) core::release_buffer(words_, bytes_);
  }
  CachedWords(const CachedWords&) = delete;
  CachedWords& operator=(const CachedWords&) = delete;
  uint32_t* data() const { return words_; }

 private:
  size_t bytes_ = 0;
  uint32_t* words_ = nullptr;
};

struct LowRankSaved final : core::ProductSaved {
  int64_t n = 0, k = 0, m = 0, l = 0, h = 0, blocks = 0;
  // P, [blocks * H][rows]: a tensor, so its 33 MB (CifarNet conv2) come back
  // from the buffer cache each step instead of as fresh pages.
  core::Tensor projections;
  // bf16: P rounded, pairs along the rows, [blocks * H][ceil(rows / 2)]
  // (Z = P dY's operand; the float P is then not kept from a row source)
  std::unique_ptr<CachedWords> projections_bf16;
  int64_t bf16_words = 0;
  std::vector<float> directions;  // V, [blocks][L][H]
  std::vector<float> g;           // G = V^T W^T, [blocks * H][M]
  // dw_sample: the drawn row tiles (ascending) and their residual
  // R = X - V P, K-major [K][drawn rows], the tiles side by side; weight = T / c.
  struct DrawnTile {
    int64_t first_row = 0, rows = 0, column = 0;  // column: the tile's first column in R
  };
  std::vector<DrawnTile> drawn;
  core::Tensor residual;
  float residual_weight = 0.0f;
};

// dw_sample: c = ceil(fraction * T) of the T row tiles drawn uniformly
// without replacement (each tile in with probability c / T), and per drawn
// tile and block its residual X_s - V_s P_s, while P is at hand. The backward
// adds (T / c) dY_S^T R_S^T, whose expectation is dY^T (X - X V V^T): with the
// low-rank part, dW is an unbiased estimate of the dense dY^T X.
// The drawn tiles are lowered again (a share f of the forward's fills) rather
// than kept from the forward's tile loop, which stays as it is when f = 0.
void keep_sampled_residual(const core::RowSource& x, double fraction, core::Rng rng, LowRankSaved& saved) {
  const int64_t n = saved.n, k = saved.k, l = saved.l, h = saved.h;
  const int64_t tiles = (n + kTileRows - 1) / kTileRows;
  const int64_t chosen = std::min(tiles, static_cast<int64_t>(std::ceil(fraction * static_cast<double>(tiles))));
  std::vector<int64_t> order(static_cast<size_t>(tiles));
  for (int64_t t = 0; t < tiles; ++t) order[t] = t;
  for (int64_t i = 0; i < chosen; ++i)  // partial Fisher-Yates: order[0..chosen) is a uniform draw
    std::swap(order[i], order[i + rng.below(static_cast<uint32_t>(tiles - i))]);
  std::sort(order.begin(), order.begin() + chosen);
  int64_t sampled = 0;
  for (int64_t i = 0; i < chosen; ++i) {
    const int64_t r0 = order[i] * kTileRows, count = std::min(kTileRows, n - r0);
    saved.drawn.push_back({r0, count, sampled});
    sampled += count;
  }
  saved.residual_weight = chosen > 0 ? static_cast<float>(tiles) / static_cast<float>(chosen) : 0.0f;
  saved.residual = core::Tensor::empty({k, sampled});
  float* res = saved.residual.data();
  const float* p = saved.projections.data();
  const float* v = saved.directions.data();
  core::SerialBlasScope serial;
  core::parallel_for(chosen, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const LowRankSaved::DrawnTile& tile = saved.drawn[i];
      for (int64_t s = 0; s < saved.blocks; ++s) {
        const int64_t c0 = s * l, len = std::min(l, k - c0);
        float* piece = res + c0 * sampled + tile.column;  // [len][rows], ld = sampled
        x.fill_kmajor(tile.first_row, tile.rows, c0, c0 + len, piece, sampled);
        core::gemm(core::Trans::No, core::Trans::No, len, tile.rows, h, -1.0f, v + c0 * h, h,
                   p + s * h * n + tile.first_row, n, 1.0f, piece, sampled);
      }
    }
  }, 1);
}

}  // namespace

LowRankProduct::LowRankProduct(const ReuseSettings& settings) { set_settings(settings); }
LowRankProduct::~LowRankProduct() = default;

void LowRankProduct::set_settings(const ReuseSettings& settings) {
  settings.validate("lowrank product");
  if (!settings.lowrank) throw std::invalid_argument("lowrank product: settings without \"lowrank\": true");
  if (settings.L != settings_.L || settings.H != settings_.H || settings.seed != settings_.seed) {
    hasher_.reset();
    forwards_ = 0;
  }
  if (settings.bf16 && !settings_.bf16 && !core::bf16_available())
    spdlog::warn("lowrank product: \"bf16\" asked for, but this build has no AVX512_BF16 kernels "
                 "(built without -march=native on such a CPU): its GEMMs run in float");
  settings_ = settings;
}

bool LowRankProduct::use_bf16() const { return settings_.bf16 && core::bf16_available(); }

std::string LowRankProduct::describe() const {
  ReuseSettings s = settings_;
  s.enabled = true;
  return reuse::describe(s);
}

std::unique_ptr<core::ProductSaved> LowRankProduct::forward(const core::Tensor& x, const core::Tensor& w,
                                                            core::Tensor& y, bool for_backward) {
  if (x.dim() != 2)
    throw std::invalid_argument("lowrank product: X " + core::shape_to_string(x.shape()) +
                                " (expected X [N, K], W [M, K], Y [N, M])");
  return forward_rows(core::MatrixRows(x.data(), x.size(0), x.size(1)), w, y, for_backward);
}

std::unique_ptr<core::ProductSaved> LowRankProduct::forward_rows(const core::RowSource& x, const core::Tensor& w,
                                                                 core::Tensor& y, bool for_backward) {
  core::Stopwatch total;
  const int64_t n = x.rows(), k = x.cols();
  if (w.dim() != 2 || k != w.size(1) || y.numel() != n * w.size(0))
    throw std::invalid_argument("lowrank product: X " + core::shape_to_string({n, k}) + ", W " +
                                core::shape_to_string(w.shape()) + ", Y " + core::shape_to_string(y.shape()) +
                                " (expected X [N, K], W [M, K], Y [N, M])");
  const int64_t m = w.size(0);
  if (!hasher_ || hasher_->k() != k) hasher_ = make_hasher(settings_, k);  // "pca": validated
  auto saved = std::make_unique<LowRankSaved>();
  saved->n = n;
  saved->k = k;
  saved->m = m;
  saved->l = hasher_->L();
  saved->h = hasher_->H();
  saved->blocks = hasher_->blocks();
  const int64_t l = saved->l, h = saved->h, blocks = saved->blocks, ldp = blocks * h;
  core::Stopwatch watch;
  // Fitted every settings_.refit-th forward (the fit is ~3.6 ms per CifarNet
  // conv2 batch; stale directions cost accuracy: docs/perf-notes.md, Round 12).
  hasher_->prepare(x, settings_.scope == "cross_batch" || forwards_ % settings_.refit != 0);
  ++forwards_;
  saved->directions = block_directions(*hasher_);
  const bool bf16 = use_bf16();
  uint32_t* pb = nullptr;  // bf16: the saved P in pair words
  if (bf16) {
    saved->bf16_words = (n + 1) / 2;
    saved->projections_bf16 = std::make_unique<CachedWords>(static_cast<size_t>(ldp * saved->bf16_words));
    pb = saved->projections_bf16->data();
  }
  // float P: the matrix door's, or every tile's without bf16
  if (x.data() || !bf16) saved->projections = core::Tensor::empty({ldp, n});
  float* p = saved->projections.data();
  const float* v = saved->directions.data();
  saved->g.resize(static_cast<size_t>(ldp * m));  // G_s = V_s^T W_s^T
  direction_products(v, l, h, w.data(), m, k, saved->g.data());
  const float* g = saved->g.data();
  std::optional<DirectionProductsBf16> g_bf16;
  std::optional<DirectionsBf16> v_bf16;  // the row source's projections too
  if (bf16) {
    g_bf16.emplace(g, ldp, m, Bf16Pass::forward);
    v_bf16.emplace(v, l, h, k, Bf16Pass::forward);
  }
  double lower = 0.0;     // thread 0's tile fills
  double products = 0.0;  // Y's products (thread 0's tiles)
  {
    core::SerialBlasScope serial;  // one small GEMM per block (and tile), spread over our threads
    if (const float* xd = x.data()) {
      core::parallel_for(blocks, [&](int64_t b0, int64_t b1) {
        for (int64_t s = b0; s < b1; ++s)  // P_s = V_s^T X_s^T
          core::gemm(core::Trans::Yes, core::Trans::Yes, h, n, std::min(l, k - s * l), 1.0f, v + s * l * h, h,
                     xd + s * l, k, 0.0f, p + s * h * n, n);
      }, 1);
    } else {
      // Per tile of rows: per block, lower its columns K-major and project
      // them while they are in L2 (a whole tile, 1.6 MB at CifarNet conv2,
      // spilled to L3 between the fill and the projection); then the
      // tile's rows of Y = P^T G while that tile of P is still in cache.
      core::parallel_for_indexed((n + kTileRows - 1) / kTileRows, [&](int thread, int64_t t0, int64_t t1) {
        std::vector<float> piece(static_cast<size_t>(kTileRows * l));
        std::vector<uint32_t> packed;  // bf16: operands in pair words
        std::vector<float> p_tile(bf16 ? static_cast<size_t>(ldp * kTileRows) : 0);  // bf16: the tile's P, [ldp][count]
        core::Stopwatch sw;
        double fills = 0.0, gemms = 0.0;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r0 = t * kTileRows, count = std::min(kTileRows, n - r0);
          float* pt = bf16 ? p_tile.data() : p + r0;  // the tile's P, columns ldpt apart
          const int64_t ldpt = bf16 ? count : n;
          for (int64_t s = 0; s < blocks; ++s) {
            const int64_t c0 = s * l, c1 = std::min(k, c0 + l);
            sw.restart();
            x.fill_kmajor(r0, count, c0, c1, piece.data(), count);  // [len][count]
            fills += sw.seconds();
            if (bf16)
              project_tile_bf16(*v_bf16, s, piece.data(), count, pt + s * h * ldpt, ldpt, packed);
            else  // the hasher's register kernel (16 rows per lane set)
              hasher_->project_block_kmajor(piece.data(), count, count, s, pt + s * h * ldpt, ldpt);
          }
          sw.restart();
          if (bf16) {
            tile_output_bf16(pt, ldpt, count, *g_bf16, y.data() + r0 * m, m, packed);
            core::pack_column_pairs(pt, ldp, count, ldpt, pb + r0 / 2, saved->bf16_words);
          } else {
            core::gemm(core::Trans::Yes, core::Trans::No, count, m, ldp, 1.0f, p + r0, n, g, m, 0.0f,
                       y.data() + r0 * m, m);
          }
          gemms += sw.seconds();
        }
        if (thread == 0) {
          lower = fills;
          products = gemms;
        }
      }, 1);
    }
  }
  if (x.data()) {  // Y = P^T G, one product over all rows
    core::Stopwatch sw;
    if (g_bf16) {
      core::parallel_for((n + kTileRows - 1) / kTileRows, [&](int64_t t0, int64_t t1) {
        std::vector<uint32_t> packed;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r0 = t * kTileRows;
          tile_output_bf16(p + r0, n, std::min(kTileRows, n - r0), *g_bf16, y.data() + r0 * m, m, packed);
        }
      }, 1);
      core::pack_column_pairs(p, ldp, n, n, pb, saved->bf16_words);
    } else if (n > 0) {
      core::gemm(core::Trans::Yes, core::Trans::No, n, m, ldp, 1.0f, p, n, g, m, 0.0f, y.data(), m);
    }
    products = sw.seconds();
  }
  const double section = watch.lap();
  lower = std::min(lower, section);
  products = std::min(products, section - lower);
  stats_.lowering_s += lower;
  stats_.gemm_s += products;
  stats_.hash_s += section - lower - products;
  if (for_backward && settings_.dw_sample > 0.0 && n > 0) {
    keep_sampled_residual(x, settings_.dw_sample, core::make_rng(settings_.seed, core::RngPurpose::Sample,
                                                                 static_cast<uint64_t>(forwards_)), *saved);
    stats_.lowering_s += watch.lap();  // mostly the drawn tiles' fills
  }
  ++stats_.forward_calls;
  // The share of a dense product's inner size that is computed.
  stats_.remaining_ratio_sum += k > 0 ? static_cast<double>(std::min(ldp, k)) / static_cast<double>(k) : 0.0;
  stats_.forward_s += total.seconds();
  if (!for_backward) return nullptr;
  return saved;
}

void LowRankProduct::backward(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w, float* dw,
                              float* dx, float dx_beta) {
  backward_impl(saved, dy, w, dw, dx, dx_beta, nullptr);
}

void LowRankProduct::backward_rows(core::ProductSaved& saved, const core::Tensor& dy, const core::Tensor& w,
                                   float* dw, core::RowSink* dx) {
  backward_impl(saved, dy, w, dw, nullptr, 0.0f, dx);
}

void LowRankProduct::backward_impl(core::ProductSaved& saved_base, const core::Tensor& dy, const core::Tensor& w,
                                   float* dw, float* dx, float dx_beta, core::RowSink* sink) {
  core::Stopwatch total;
  auto* saved = dynamic_cast<LowRankSaved*>(&saved_base);
  if (!saved) throw std::invalid_argument("lowrank product: backward given another product's state");
  const int64_t n = saved->n, k = saved->k, m = saved->m, l = saved->l, h = saved->h, blocks = saved->blocks;
  const int64_t ldp = blocks * h;
  if (dy.numel() != n * m || w.numel() != m * k)
    throw std::invalid_argument("lowrank product backward: dY " + core::shape_to_string(dy.shape()) + ", W " +
                                core::shape_to_string(w.shape()) + " do not match the forward's [" +
                                std::to_string(n) + ", " + std::to_string(k) + "] x [" + std::to_string(m) +
                                ", " + std::to_string(k) + "]");
  const float* v = saved->directions.data();
  core::Stopwatch watch;
  if (dw && n > 0) {  // Z = P dY, dW_s += Z_s^T V_s^T
    std::vector<float> z(static_cast<size_t>(ldp * m));
    if (saved->projections_bf16)
      projections_times_dy_bf16(saved->projections_bf16->data(), saved->bf16_words, ldp, n, dy.data(), m, z.data());
    else
      core::gemm(core::Trans::No, core::Trans::No, ldp, m, n, 1.0f, saved->projections.data(), n, dy.data(), m,
                 0.0f, z.data(), m);
    for (int64_t s = 0; s < blocks; ++s)
      core::gemm(core::Trans::Yes, core::Trans::Yes, m, std::min(l, k - s * l), h, 1.0f, z.data() + s * h * m, m,
                 v + s * l * h, h, 1.0f, dw + s * l, k);
    // dw_sample: dW += (T / c) dY_S^T R_S^T over the drawn tiles' rows
    if (!saved->drawn.empty()) {
      const int64_t sampled = saved->residual.size(1);
      std::vector<float> dys(static_cast<size_t>(sampled * m));  // the drawn rows of dY, side by side as in R
      for (const auto& tile : saved->drawn)
        std::copy_n(dy.data() + tile.first_row * m, tile.rows * m, dys.data() + tile.column * m);
      core::gemm(core::Trans::Yes, core::Trans::Yes, m, k, sampled, saved->residual_weight, dys.data(), m,
                 saved->residual.data(), sampled, 1.0f, dw, k);
    }
  }
  if (!dx && !sink) {
    stats_.gemm_s += watch.seconds();
    stats_.backward_s += total.seconds();
    return;
  }
  if (settings_.dx == "exact") {  // the dense gradient dY W: the layer below sees every direction
    exact_dx(n, dy, w, dx, dx_beta, sink);
    stats_.gemm_s += watch.seconds();
    stats_.backward_s += total.seconds();
    return;
  }
  std::optional<DirectionProductsBf16> g_bf16;
  std::optional<DirectionsBf16> v_bf16;  // the sink's dX terms too
  if (use_bf16()) {
    g_bf16.emplace(saved->g.data(), ldp, m, Bf16Pass::backward);
    if (sink) v_bf16.emplace(v, l, h, k, Bf16Pass::backward);
  }
  if (dx) {  // Q^T = G dY^T, then dX_s = Q_s V_s^T (+ beta dX_s)
    qt_.resize(static_cast<size_t>(ldp * n));
    if (g_bf16) {
      core::parallel_for((n + kTileRows - 1) / kTileRows, [&](int64_t t0, int64_t t1) {
        std::vector<float> transposed;
        std::vector<uint32_t> packed;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r0 = t * kTileRows;
          tile_qt_bf16(*g_bf16, dy.data() + r0 * m, std::min(kTileRows, n - r0), qt_.data() + r0, n, transposed,
                       packed);
        }
      }, 1);
    } else if (n > 0) {
      core::gemm(core::Trans::No, core::Trans::Yes, ldp, n, m, 1.0f, saved->g.data(), m, dy.data(), m, 0.0f,
                 qt_.data(), n);
    }
    for (int64_t s = 0; s < blocks && n > 0; ++s)
      core::gemm(core::Trans::Yes, core::Trans::Yes, n, std::min(l, k - s * l), h, 1.0f, qt_.data() + s * h * n, n,
                 v + s * l * h, h, dx_beta, dx + s * l, k);
    stats_.gemm_s += watch.seconds();
    stats_.backward_s += total.seconds();
    return;
  }
  stats_.gemm_s += watch.lap();
  // Into the sink: per granule-bounded run of rows, its columns of
  // Q^T = G dY^T (in cache), then per block the K-major piece (Q_s V_s^T)^T.
  const int64_t granule = std::max<int64_t>(1, sink->granule());
  double lower = 0.0;     // thread 0's time in the sink (col2im)
  double products = 0.0;  // thread 0's Q^T tiles
  {
    core::SerialBlasScope serial;
    core::parallel_for_indexed((n + granule - 1) / granule, [&](int thread, int64_t u0, int64_t u1) {
      std::vector<float> piece(static_cast<size_t>(kTileRows * l));
      std::vector<float> qt(static_cast<size_t>(kTileRows * ldp));
      std::vector<float> transposed;  // bf16: the run's dY^T, then its pair words
      std::vector<uint32_t> packed;
      core::Stopwatch sw;
      double sinks = 0.0, gemms = 0.0;
      for (int64_t r = u0 * granule, count = 0; r < std::min(n, u1 * granule); r += count) {
        count = std::min({kTileRows, n - r, granule - r % granule});
        sw.restart();
        if (g_bf16)
          tile_qt_bf16(*g_bf16, dy.data() + r * m, count, qt.data(), count, transposed, packed);
        else
          core::gemm(core::Trans::No, core::Trans::Yes, ldp, count, m, 1.0f, saved->g.data(), m, dy.data() + r * m,
                     m, 0.0f, qt.data(), count);
        gemms += sw.seconds();
        for (int64_t s = 0; s < blocks; ++s) {
          const int64_t len = std::min(l, k - s * l);
          if (v_bf16)
            direction_terms_bf16(*v_bf16, s, qt.data() + s * h * count, count, count, piece.data(), packed);
          else
            add_direction_terms(piece.data(), count, len, count, v + s * l * h, h, qt.data() + s * h * count, count,
                                /*add=*/false);
          sw.restart();
          sink->add_kmajor(r, count, s * l, s * l + len, piece.data(), count);
          sinks += sw.seconds();
        }
      }
      if (thread == 0) {
        lower = sinks;
        products = gemms;
      }
    }, 1);
  }
  const double section = watch.lap();
  lower = std::min(lower, section);
  products = std::min(products, section - lower);
  stats_.lowering_s += lower;
  stats_.gemm_s += products;
  stats_.scatter_s += section - lower - products;
  stats_.backward_s += total.seconds();
}

void LowRankProduct::exact_dx(int64_t n, const core::Tensor& dy, const core::Tensor& w, float* dx, float dx_beta,
                              core::RowSink* sink) const {
  const int64_t m = w.size(0), k = w.size(1);
  if (n == 0) return;
  if (dx) {
    core::gemm(core::Trans::No, core::Trans::No, n, k, m, 1.0f, dy.data(), m, w.data(), k, dx_beta, dx, k);
    return;
  }
  // Into the sink: per granule-bounded run of rows, the K-major piece (dY_r W)^T.
  const int64_t granule = std::max<int64_t>(1, sink->granule());
  core::SerialBlasScope serial;
  core::parallel_for((n + granule - 1) / granule, [&](int64_t u0, int64_t u1) {
    std::vector<float> piece(static_cast<size_t>(kTileRows * k));
    for (int64_t r = u0 * granule, count = 0; r < std::min(n, u1 * granule); r += count) {
      count = std::min({kTileRows, n - r, granule - r % granule});
      core::gemm(core::Trans::Yes, core::Trans::Yes, k, count, m, 1.0f, w.data(), k, dy.data() + r * m, m, 0.0f,
                 piece.data(), count);
      sink->add_kmajor(r, count, 0, k, piece.data(), count);
    }
  }, 1);
}

}  // namespace deja::reuse
