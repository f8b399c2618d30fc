// The reuse forward and backward over a Clustering (design.md section 4).
// Blocks are processed in groups whose per-cluster products (n_s x M each)
// fit in a few MB, so the products made for a group are still in cache when
// the rows gather them: Y[i] += P_s[cluster_s(i)] over the group's blocks in
// one pass per row (the row stays in L1), and symmetrically for the segment
// sums of dY in the backward. The per-cluster products are one sgemm per block.
#include "reuse/reuse_product.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/stopwatch.h"
#include "reuse/clustering.h"
#include "reuse/lsh.h"

namespace deja::reuse {

namespace {

constexpr int64_t kGroupFloats = int64_t{1} << 17;  // 512 KB of per-cluster products per group: fits L2

struct ReuseSaved final : core::ProductSaved {
  Clustering clustering;
  int64_t m = 0;
};

// [g0, g1) block ranges whose clusters x width floats stay under kGroupFloats.
std::vector<std::pair<int64_t, int64_t>> block_groups(const Clustering& c, int64_t width) {
  std::vector<std::pair<int64_t, int64_t>> groups;
  int64_t g0 = 0;
  while (g0 < c.blocks) {
    int64_t g1 = g0 + 1;
    while (g1 < c.blocks && (c.offset[g1 + 1] - c.offset[g0]) * width <= kGroupFloats) ++g1;
    groups.emplace_back(g0, g1);
    g0 = g1;
  }
  return groups;
}

}  // namespace

ReuseProduct::ReuseProduct(const ReuseSettings& settings) { set_settings(settings); }
ReuseProduct::~ReuseProduct() = default;

void ReuseProduct::set_settings(const ReuseSettings& settings) {
  settings.validate("reuse product");
  const bool same_hash = hasher_ && settings.hash == settings_.hash && settings.L == settings_.L &&
                         settings.H == settings_.H && settings.width == settings_.width &&
                         settings.seed == settings_.seed;
  settings_ = settings;
  if (!same_hash) hasher_.reset();
}

std::string ReuseProduct::describe() const {
  ReuseSettings s = settings_;
  s.enabled = true;
  return reuse::describe(s);
}

std::unique_ptr<core::ProductSaved> ReuseProduct::forward(const core::Tensor& x,
                                                          const core::Tensor& w, core::Tensor& y,
                                                          bool for_backward) {
  core::Stopwatch total;
  if (x.dim() != 2 || w.dim() != 2 || x.size(1) != w.size(1) || y.numel() != x.size(0) * w.size(0))
    throw std::invalid_argument("reuse product: X " + core::shape_to_string(x.shape()) + ", W " +
                                core::shape_to_string(w.shape()) + ", Y " +
                                core::shape_to_string(y.shape()) +
                                " (expected X [N, K], W [M, K], Y [N, M])");
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  if (!hasher_ || hasher_->k() != k) hasher_ = make_hasher(settings_, k);
  hasher_->prepare(x.data(), n, k, settings_.scope == "cross_batch");

  auto saved = std::make_unique<ReuseSaved>();
  saved->m = m;
  Clustering& c = saved->clustering;
  c = cluster_rows(x.data(), n, k, *hasher_, &stats_.hash_s, &stats_.cluster_s);
  const int64_t l = c.L;
  float* yd = y.data();
  if (c.blocks == 0) std::fill(yd, yd + n * m, 0.0f);

  std::vector<float> products;
  core::Stopwatch watch;
  for (auto [g0, g1] : block_groups(c, m)) {
    const int64_t base = c.offset[g0];
    products.resize(static_cast<size_t>((c.offset[g1] - base) * m));
    // P_s = centroids_s . W_s^T (n_s x M), one sgemm per block (OpenBLAS
    // threads it; a hand-written loop ran ~5x slower once n_s is large). The
    // zero cluster's row is computed (its centroid is zero) but never gathered.
    watch.restart();
    for (int64_t s = g0; s < g1; ++s) {
      const int64_t len = std::min(l, k - s * l);
      core::gemm(core::Trans::No, core::Trans::Yes, c.clusters(s), m, len, 1.0f,
                 c.centroid.data() + c.offset[s] * l, l, w.data() + s * l, k, 0.0f,
                 products.data() + (c.offset[s] - base) * m, m);
    }
    stats_.gemm_s += watch.lap();
    // Y[i] (+)= sum over the group's blocks of P_s[cluster_s(i)].
    core::parallel_for(n, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        float* yr = yd + i * m;
        if (g0 == 0) std::fill(yr, yr + m, 0.0f);
        for (int64_t s = g0; s < g1; ++s) {
          const int32_t id = c.assign[s * n + i];
          if (id == c.zero_id[s]) continue;
          const float* p = products.data() + (c.offset[s] - base + id) * m;
          for (int64_t o = 0; o < m; ++o) yr[o] += p[o];
        }
      }
    }, 64);
    stats_.scatter_s += watch.lap();
  }

  last_remaining_ratio_ = c.remaining_ratio();
  ++stats_.forward_calls;
  stats_.remaining_ratio_sum += last_remaining_ratio_;
  stats_.forward_s += total.seconds();
  if (!for_backward) return nullptr;
  return saved;
}

void ReuseProduct::backward(core::ProductSaved& saved_base, const core::Tensor& dy,
                            const core::Tensor& w, float* dw, float* dx, float dx_beta) {
  core::Stopwatch total;
  auto* saved = dynamic_cast<ReuseSaved*>(&saved_base);
  if (!saved) throw std::invalid_argument("reuse product: backward given another product's state");
  const Clustering& c = saved->clustering;
  const int64_t n = c.rows, k = c.k, m = saved->m, l = c.L;
  if (dy.numel() != n * m || w.numel() != m * k)
    throw std::invalid_argument("reuse product backward: dY " + core::shape_to_string(dy.shape()) +
                                ", W " + core::shape_to_string(w.shape()) + " do not match the forward's [" +
                                std::to_string(n) + ", " + std::to_string(k) + "] x [" +
                                std::to_string(m) + ", " + std::to_string(k) + "]");
  const bool exact_dx = settings_.dx == "exact";
  if (dx && exact_dx) {
    core::Stopwatch g;
    core::gemm(core::Trans::No, core::Trans::No, n, k, m, 1.0f, dy.data(), m, w.data(), k, dx_beta,
               dx, k);
    stats_.gemm_s += g.seconds();
  }
  const bool cluster_dx = dx && !exact_dx;
  if (!dw && !cluster_dx) {
    stats_.backward_s += total.seconds();
    return;
  }
  const float* dyd = dy.data();
  const int threads = core::num_threads();
  std::vector<std::vector<float>> partial(static_cast<size_t>(threads));
  std::vector<float> seg, dxc;
  core::Stopwatch watch;
  for (auto [g0, g1] : block_groups(c, m)) {
    const int64_t base = c.offset[g0], count = c.offset[g1] - base;
    // G_s[c] = sum of dY over the members of c: per-thread partial sums over
    // row ranges, then a fixed-order reduction (reproducible per thread count).
    watch.restart();
    core::parallel_for_indexed(n, [&](int t, int64_t r0, int64_t r1) {
      std::vector<float>& g = partial[t];
      g.assign(static_cast<size_t>(count * m), 0.0f);
      for (int64_t i = r0; i < r1; ++i) {
        const float* d = dyd + i * m;
        for (int64_t s = g0; s < g1; ++s) {
          float* dst = g.data() + (c.offset[s] - base + c.assign[s * n + i]) * m;
          for (int64_t o = 0; o < m; ++o) dst[o] += d[o];
        }
      }
    }, 256);
    int used = 0;
    for (auto& p : partial) used += !p.empty();
    seg.swap(partial[0]);
    if (used > 1) {
      core::parallel_for(count * m, [&](int64_t a, int64_t b) {
        for (int t = 1; t < threads; ++t) {
          if (partial[t].empty()) continue;
          const float* src = partial[t].data();
          for (int64_t q = a; q < b; ++q) seg[q] += src[q];
        }
      }, 4096);
    }
    for (auto& p : partial) p.clear();
    stats_.scatter_s += watch.lap();

    // dW_s += G_s^T . centroids_s (M x len) and the per-cluster input
    // gradients dXc_s = diag(1/|c|) G_s . W_s (n_s x len), sgemm per block.
    if (cluster_dx) dxc.resize(static_cast<size_t>(count * l));
    for (int64_t s = g0; s < g1; ++s) {
      const int64_t len = std::min(l, k - s * l), ns = c.clusters(s);
      const float* g = seg.data() + (c.offset[s] - base) * m;
      if (dw)
        core::gemm(core::Trans::Yes, core::Trans::No, m, len, ns, 1.0f, g, m,
                   c.centroid.data() + c.offset[s] * l, l, 1.0f, dw + s * l, k);
      if (cluster_dx) {
        float* out = dxc.data() + (c.offset[s] - base) * l;
        core::gemm(core::Trans::No, core::Trans::No, ns, len, m, 1.0f, g, m, w.data() + s * l, k,
                   0.0f, out, l);
        for (int64_t id = 0; id < ns; ++id) {
          const float inv = 1.0f / static_cast<float>(c.count[c.offset[s] + id]);
          for (int64_t j = 0; j < len; ++j) out[id * l + j] *= inv;
        }
      }
    }
    stats_.gemm_s += watch.lap();

    // dX[i, block s] = dXc_s[cluster_s(i)] (+ beta dX).
    if (cluster_dx) {
      core::parallel_for(n, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          for (int64_t s = g0; s < g1; ++s) {
            const int64_t len = std::min(l, k - s * l);
            const float* src = dxc.data() + (c.offset[s] - base + c.assign[s * n + i]) * l;
            float* dst = dx + i * k + s * l;
            if (dx_beta == 0.0f) {
              for (int64_t j = 0; j < len; ++j) dst[j] = src[j];
            } else {
              for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + dx_beta * dst[j];
            }
          }
        }
      }, 64);
      stats_.scatter_s += watch.lap();
    }
    seg.swap(partial[0]);  // keep the buffer's capacity for the next group
  }
  stats_.backward_s += total.seconds();
}

}  // namespace deja::reuse
