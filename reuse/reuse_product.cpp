// The reuse forward and backward over a Clustering (design.md section 4).
// Blocks are processed in groups whose per-cluster products (n_s x M each,
// taken 64 output columns at a time) fit in L2, so the products made for a
// group are still in cache when the rows gather them: Y[i] += P_s[cluster_s(i)]
// over the group's blocks in one pass per row and column slice (the row's
// slice stays in registers), and symmetrically for the segment sums of dY in
// the backward. The per-cluster products are one
// small sgemm per block, blocks spread over our threads with single-threaded
// BLAS. Cluster-mode dX is written last, in one row-major pass over all
// blocks (streaming stores when it may), from the per-cluster input
// gradients of every block (total clusters x L floats).
// Over a RowSource/RowSink (conv2d) X is read tile by tile while clustering
// and dX leaves one image's rows x ~64 columns at a time (exact mode:
// 128-row column-major GEMM tiles), so neither exists whole in memory. Work
// buffers persist across calls.
// Limits: each pass costs ~1-10 ns per (row, block) pair, so reuse pays only
// when r_c is small and L large enough (perf-notes.md, "Reuse engine").
#include "reuse/reuse_product.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"
#include "core/serial_blas.h"
#include "core/stopwatch.h"
#include "core/transpose.h"
#include "reuse/clustering.h"
#include "reuse/kept_projection.h"
#include "reuse/lsh.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace deja::reuse {

struct ClusteringSpare {
  std::mutex mutex;
  Clustering storage;
};

namespace {

// The three per-(row, block) passes. Each costs a few ns per pair at most, or
// it eats the gain (a dense GEMM spends ~2*L*M flops per pair), so with
// AVX-512 a row's output slice (up to 64 floats, 4 registers) stays in
// registers across all blocks of a group and each pair is 4 vector loads/adds
// of a cache-resident per-cluster row; without AVX-512, plain loops.
#ifdef __AVX512F__
inline __mmask16 lane_mask(int64_t count) {  // the first min(count, 16) lanes (count may be <= 0)
  return count >= 16 ? static_cast<__mmask16>(0xffff)
         : count <= 0 ? static_cast<__mmask16>(0)
                      : static_cast<__mmask16>((1u << count) - 1u);
}
#endif

// y[0, m) (=, or += when `accumulate`) sum over blocks s in [g0, g1) of
// rows[s](id_s) where id_s = assign[s * n] and zero ids are skipped;
// rows[s] points at block s's first per-cluster row (rows `stride` apart).
inline void gather_sum_row(float* y, int64_t m, int64_t stride, bool accumulate, const int32_t* assign,
                           int64_t n, int64_t g0, int64_t g1, const int32_t* zero_id,
                           const float* const* rows) {
#ifdef __AVX512F__
  // Masked stores are slow on some AVX-512 cores (Zen 4): full 64-float
  // slices use plain loads and stores, only a tail is masked.
  for (int64_t o0 = 0; o0 < m; o0 += 64) {
    if (m - o0 >= 64) {
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      if (accumulate) {
        a0 = _mm512_loadu_ps(y + o0);
        a1 = _mm512_loadu_ps(y + o0 + 16);
        a2 = _mm512_loadu_ps(y + o0 + 32);
        a3 = _mm512_loadu_ps(y + o0 + 48);
      }
      for (int64_t s = g0; s < g1; ++s) {
        const int32_t id = assign[s * n];
        if (id == zero_id[s]) continue;
        const float* p = rows[s] + static_cast<int64_t>(id) * stride + o0;
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + 48));
      }
      _mm512_storeu_ps(y + o0, a0);
      _mm512_storeu_ps(y + o0 + 16, a1);
      _mm512_storeu_ps(y + o0 + 32, a2);
      _mm512_storeu_ps(y + o0 + 48, a3);
      continue;
    }
    for (int64_t o1 = o0; o1 < m; o1 += 16) {
      const __mmask16 k = lane_mask(m - o1);
      __m512 a = accumulate ? _mm512_maskz_loadu_ps(k, y + o1) : _mm512_setzero_ps();
      for (int64_t s = g0; s < g1; ++s) {
        const int32_t id = assign[s * n];
        if (id == zero_id[s]) continue;
        a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(k, rows[s] + static_cast<int64_t>(id) * stride + o1));
      }
      _mm512_mask_storeu_ps(y + o1, k, a);
    }
  }
#else
  if (!accumulate) std::fill(y, y + m, 0.0f);
  for (int64_t s = g0; s < g1; ++s) {
    const int32_t id = assign[s * n];
    if (id == zero_id[s]) continue;
    const float* p = rows[s] + static_cast<int64_t>(id) * stride;
    for (int64_t o = 0; o < m; ++o) y[o] += p[o];
  }
#endif
}

// rows[s](id_s) += d[0, m) for every block s in [g0, g1), id_s = assign[s * n]
// (rows[s]'s per-cluster rows `stride` apart).
inline void scatter_add_row(const float* d, int64_t m, int64_t stride, const int32_t* assign, int64_t n,
                            int64_t g0, int64_t g1, float* const* rows) {
#ifdef __AVX512F__
  int64_t o0 = 0;
  for (; o0 + 64 <= m; o0 += 64) {
    const __m512 d0 = _mm512_loadu_ps(d + o0), d1 = _mm512_loadu_ps(d + o0 + 16),
                 d2 = _mm512_loadu_ps(d + o0 + 32), d3 = _mm512_loadu_ps(d + o0 + 48);
    for (int64_t s = g0; s < g1; ++s) {
      float* g = rows[s] + static_cast<int64_t>(assign[s * n]) * stride + o0;
      _mm512_storeu_ps(g, _mm512_add_ps(d0, _mm512_loadu_ps(g)));
      _mm512_storeu_ps(g + 16, _mm512_add_ps(d1, _mm512_loadu_ps(g + 16)));
      _mm512_storeu_ps(g + 32, _mm512_add_ps(d2, _mm512_loadu_ps(g + 32)));
      _mm512_storeu_ps(g + 48, _mm512_add_ps(d3, _mm512_loadu_ps(g + 48)));
    }
  }
  for (; o0 < m; o0 += 16) {
    const __mmask16 k = lane_mask(m - o0);
    const __m512 d0 = _mm512_maskz_loadu_ps(k, d + o0);
    for (int64_t s = g0; s < g1; ++s) {
      float* g = rows[s] + static_cast<int64_t>(assign[s * n]) * stride + o0;
      _mm512_mask_storeu_ps(g, k, _mm512_add_ps(d0, _mm512_maskz_loadu_ps(k, g)));
    }
  }
#else
  for (int64_t s = g0; s < g1; ++s) {
    float* g = rows[s] + static_cast<int64_t>(assign[s * n]) * stride;
    for (int64_t o = 0; o < m; ++o) g[o] += d[o];
  }
#endif
}

// dX row slice of blocks [g0, g1): dst[s*l, s*l + len_s) = src_s[0, len_s)
// (+ beta * dst when beta != 0; dst is never read when beta == 0). src_s is
// block s's per-cluster row (stride l) of the row's cluster. With beta == 0,
// dst_row[0, writable) may be scribbled on before being overwritten.
inline void gather_copy_row(float* dst_row, int64_t k, int64_t l, const int32_t* assign, int64_t n,
                            int64_t g0, int64_t g1, const float* const* rows, float beta,
                            int64_t writable) {
#ifdef __AVX512F__
  for (int64_t s = g0; s < g1; ++s) {
    const int64_t len = std::min(l, k - s * l);
    const float* src = rows[s] + static_cast<int64_t>(assign[s * n]) * l;
    float* dst = dst_row + s * l;
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 km = lane_mask(len - j);
      if (beta == 0.0f && s * l + j + 16 <= writable) {
        // A full 16-float store (masked stores are slow on some cores): the
        // lanes past this block belong to later blocks of the same row (or
        // to the caller's slack), which are written after this one.
        _mm512_storeu_ps(dst + j, _mm512_maskz_loadu_ps(km, src + j));
        continue;
      }
      __m512 v = _mm512_maskz_loadu_ps(km, src + j);
      if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(km, dst + j), v);
      if (len - j >= 16) _mm512_storeu_ps(dst + j, v);
      else _mm512_mask_storeu_ps(dst + j, km, v);
    }
  }
#else
  (void)writable;
  for (int64_t s = g0; s < g1; ++s) {
    const int64_t len = std::min(l, k - s * l);
    const float* src = rows[s] + static_cast<int64_t>(assign[s * n]) * l;
    float* dst = dst_row + s * l;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < len; ++j) dst[j] = src[j];
    } else {
      for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + beta * dst[j];
    }
  }
#endif
}

// dX rows [r0, r1) over all blocks. With beta == 0 and 64-byte aligned rows
// a row is assembled in an L1 buffer and written with streaming stores (no
// read of the destination lines: dX is far larger than the caches).
void write_dx_rows(float* dx, int64_t r0, int64_t r1, int64_t k, int64_t l, const int32_t* assign,
                   int64_t n, int64_t blocks, const float* const* rows, float beta) {
#ifdef __AVX512F__
  const bool stream = beta == 0.0f && k % 16 == 0 && reinterpret_cast<uintptr_t>(dx) % 64 == 0;
  if (stream) {
    std::vector<float> buffer(static_cast<size_t>(k + 16));
    for (int64_t i = r0; i < r1; ++i) {
      gather_copy_row(buffer.data(), k, l, assign + i, n, 0, blocks, rows, 0.0f, k + 16);
      float* dst = dx + i * k;
      for (int64_t j = 0; j < k; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(buffer.data() + j));
    }
    _mm_sfence();
    return;
  }
#endif
  for (int64_t i = r0; i < r1; ++i)
    gather_copy_row(dx + i * k, k, l, assign + i, n, 0, blocks, rows, beta, k);
}

constexpr int64_t kSinkRows = 256;  // cluster dX: rows per hand-over to a RowSink (one CifarNet conv2 image)
constexpr int64_t kSinkColumns = 64;  // cluster dX: columns per hand-over (whole blocks, at least one)
constexpr int64_t kExactSinkRows = 128;  // exact dX: rows per GEMM (a wider GEMM, 128 x K floats)
constexpr int64_t kGroupFloats = int64_t{1} << 17;  // 512 KB of per-cluster products per group: fits L2
// Output columns per pass of the forward gather and the segment sums. A
// group's blocks are sized so that a slice of this width of their
// per-cluster rows fits L2, and Y (dY) is streamed once per group and slice:
// with whole rows, a wide layer (M = 192 at AlexNet conv2) fitted one or two
// blocks per group and streamed its 25 MB Y once per one or two blocks.
constexpr int64_t kSliceColumns = 64;

struct ReuseSaved final : core::ProductSaved {
  Clustering clustering;
  int64_t m = 0;
  std::shared_ptr<ClusteringSpare> spare;  // where the clustering's storage goes when done
  // keep_projection: the blocks' directions [blocks][L][H] and G = V^T W^T
  // [blocks * H][M] (kept_projection.h); the rows' projections are in
  // clustering.projection.
  std::vector<float> directions, g;
  int64_t h = 0;
  ~ReuseSaved() override {
    if (!spare) return;
    std::lock_guard<std::mutex> lock(spare->mutex);
    if (clustering.centroid.capacity() > spare->storage.centroid.capacity())
      spare->storage = std::move(clustering);
  }
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

ReuseProduct::ReuseProduct(const ReuseSettings& settings) : spare_(std::make_shared<ClusteringSpare>()) {
  set_settings(settings);
}
ReuseProduct::~ReuseProduct() = default;

void ReuseProduct::set_settings(const ReuseSettings& settings) {
  settings.validate("reuse product");
  const bool same_hash = hasher_ && settings.hash == settings_.hash && settings.L == settings_.L &&
                         settings.H == settings_.H && settings.width == settings_.width &&
                         settings.seed == settings_.seed;
  settings_ = settings;
  if (!same_hash) {
    hasher_.reset();
    last_clusters_per_block_ = 0;
  }
}

std::string ReuseProduct::describe() const {
  ReuseSettings s = settings_;
  s.enabled = true;
  return reuse::describe(s);
}

std::unique_ptr<core::ProductSaved> ReuseProduct::forward(const core::Tensor& x,
                                                          const core::Tensor& w, core::Tensor& y,
                                                          bool for_backward) {
  if (x.dim() != 2)
    throw std::invalid_argument("reuse product: X " + core::shape_to_string(x.shape()) +
                                " (expected X [N, K], W [M, K], Y [N, M])");
  return forward_rows(core::MatrixRows(x.data(), x.size(0), x.size(1)), w, y, for_backward);
}

std::unique_ptr<core::ProductSaved> ReuseProduct::forward_rows(const core::RowSource& x,
                                                               const core::Tensor& w, core::Tensor& y,
                                                               bool for_backward) {
  core::Stopwatch total;
  const int64_t n = x.rows(), k = x.cols();
  if (w.dim() != 2 || k != w.size(1) || y.numel() != n * w.size(0))
    throw std::invalid_argument("reuse product: X " + core::shape_to_string({n, k}) + ", W " +
                                core::shape_to_string(w.shape()) + ", Y " +
                                core::shape_to_string(y.shape()) +
                                " (expected X [N, K], W [M, K], Y [N, M])");
  const int64_t m = w.size(0);
  // forward = "exact" computes Y densely; it clusters only for a backward.
  const bool exact_forward = settings_.forward == "exact";
  std::unique_ptr<ReuseSaved> saved;
  double remaining_ratio = 1.0;
  if (!exact_forward || for_backward) {
    if (!hasher_ || hasher_->k() != k) hasher_ = make_hasher(settings_, k);
    {
      core::Stopwatch watch;
      hasher_->prepare(x, settings_.scope == "cross_batch");
      stats_.hash_s += watch.seconds();
    }
    saved = std::make_unique<ReuseSaved>();
    saved->m = m;
    saved->spare = spare_;
    Clustering storage;
    {
      std::lock_guard<std::mutex> lock(spare_->mutex);
      storage = std::move(spare_->storage);
      spare_->storage = Clustering();
    }
    // keep_projection: the hashing pass also leaves every row's projections
    // (block-major [blocks * H][rows]) in the clustering.
    float* projections = nullptr;
    if (settings_.keep_projection) {
      storage.projection.resize(static_cast<size_t>(hasher_->blocks() * hasher_->H() * n));
      projections = storage.projection.data();
    }
    Clustering& c = saved->clustering;
    c = cluster_rows(x, *hasher_, &stats_.hash_s, &stats_.cluster_s, last_clusters_per_block_,
                     &stats_.lowering_s, &storage, projections, scratch_.get());
    last_clusters_per_block_ = c.blocks > 0 ? c.total_clusters() / c.blocks : 0;
    remaining_ratio = c.remaining_ratio();
    if (settings_.keep_projection) {
      // The centroids keep only their part off the directions (each row
      // adds its own part back through P G).
      core::Stopwatch watch;
      saved->h = hasher_->H();
      saved->directions = block_directions(*hasher_);
      const int64_t h = saved->h, l = c.L;
      core::parallel_for(c.blocks, [&](int64_t b0, int64_t b1) {
        for (int64_t s = b0; s < b1; ++s)
          remove_projection(c.centroid.data() + c.offset[s] * l, c.clusters(s), l,
                            saved->directions.data() + s * l * h, std::min(l, k - s * l), h);
      }, 1);
      stats_.cluster_s += watch.seconds();
    }
  }
  if (exact_forward) {
    core::Stopwatch watch;
    dense_forward_rows(x, w, y.data());
    stats_.gemm_s += watch.seconds();
  } else {
    cluster_forward(saved->clustering, w, y.data());
    if (settings_.keep_projection && n > 0) {  // Y += P G
      core::Stopwatch watch;
      const Clustering& c = saved->clustering;
      const int64_t ldp = c.blocks * saved->h;
      saved->g.resize(static_cast<size_t>(ldp * m));
      direction_products(saved->directions.data(), c.L, saved->h, w.data(), m, k, saved->g.data());
      core::gemm(core::Trans::Yes, core::Trans::No, n, m, ldp, 1.0f, c.projection.data(), n, saved->g.data(), m,
                 1.0f, y.data(), m);
      stats_.gemm_s += watch.seconds();
    }
  }

  last_remaining_ratio_ = remaining_ratio;
  ++stats_.forward_calls;
  stats_.remaining_ratio_sum += last_remaining_ratio_;
  stats_.forward_s += total.seconds();
  if (!for_backward) return nullptr;
  return saved;
}

void ReuseProduct::dense_forward_rows(const core::RowSource& x, const core::Tensor& w, float* yd) {
  constexpr int64_t kRows = 256;
  const int64_t n = x.rows(), k = x.cols(), m = w.size(0);
  if (const float* xd = x.data()) {  // X in memory: one GEMM
    core::gemm(core::Trans::No, core::Trans::Yes, n, m, k, 1.0f, xd, k, w.data(), k, 0.0f, yd, m);
    return;
  }
  // Otherwise K-major tiles straight from the source (conv2d's patches), one
  // single-threaded GEMM per tile.
  const int64_t tiles = (n + kRows - 1) / kRows;
  core::SerialBlasScope serial;
  core::parallel_for(tiles, [&](int64_t t0, int64_t t1) {
    std::vector<float> tile(static_cast<size_t>(kRows * k));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kRows, count = std::min(kRows, n - r0);
      x.fill_kmajor(r0, count, 0, k, tile.data(), count);  // [K, count]
      core::gemm(core::Trans::Yes, core::Trans::Yes, count, m, k, 1.0f, tile.data(), count, w.data(), k, 0.0f,
                 yd + r0 * m, m);
    }
  }, 1);
}

void ReuseProduct::cluster_forward(const Clustering& c, const core::Tensor& w, float* yd) {
  const int64_t n = c.rows, k = c.k, m = w.size(0), l = c.L;
  if (c.blocks == 0) std::fill(yd, yd + n * m, 0.0f);
  core::AlignedVector<float>& products = products_;  // kept across calls: no page faults per step
  core::Stopwatch watch;
  const int64_t slice = std::min(m, kSliceColumns);
  for (auto [g0, g1] : block_groups(c, slice)) {
    const int64_t base = c.offset[g0];
    products.resize(static_cast<size_t>((c.offset[g1] - base) * m));
    // P_s = centroids_s . W_s^T (n_s x M), one sgemm per block (a
    // hand-written loop ran ~5x slower once n_s is large), blocks over our
    // threads. The zero cluster's row is computed (its centroid is zero) but
    // never gathered.
    watch.restart();
    {
      core::SerialBlasScope serial;  // per-block GEMMs are tiny (n_s x M x L): one per thread
      core::parallel_for(g1 - g0, [&](int64_t b0, int64_t b1) {
        for (int64_t s = g0 + b0; s < g0 + b1; ++s) {
          const int64_t len = std::min(l, k - s * l);
          core::gemm(core::Trans::No, core::Trans::Yes, c.clusters(s), m, len, 1.0f,
                     c.centroid.data() + c.offset[s] * l, l, w.data() + s * l, k, 0.0f,
                     products.data() + (c.offset[s] - base) * m, m);
        }
      }, 1);
    }
    stats_.gemm_s += watch.lap();
    // Y[i] (+)= sum over the group's blocks of P_s[cluster_s(i)], a slice
    // of columns at a time.
    std::vector<const float*> rows(static_cast<size_t>(c.blocks));
    for (int64_t o0 = 0; o0 < m; o0 += slice) {
      const int64_t width = std::min(slice, m - o0);
      for (int64_t s = g0; s < g1; ++s) rows[s] = products.data() + (c.offset[s] - base) * m + o0;
      core::parallel_for(n, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i)
          gather_sum_row(yd + i * m + o0, width, m, g0 != 0, c.assign.data() + i, n, g0, g1,
                         c.zero_id.data(), rows.data());
      }, 64);
    }
    stats_.scatter_s += watch.lap();
  }
}

void ReuseProduct::backward(core::ProductSaved& saved_base, const core::Tensor& dy,
                            const core::Tensor& w, float* dw, float* dx, float dx_beta) {
  backward_impl(saved_base, dy, w, dw, dx, dx_beta, nullptr);
}

void ReuseProduct::backward_rows(core::ProductSaved& saved_base, const core::Tensor& dy,
                                 const core::Tensor& w, float* dw, core::RowSink* dx) {
  backward_impl(saved_base, dy, w, dw, nullptr, 0.0f, dx);
}

void ReuseProduct::backward_impl(core::ProductSaved& saved_base, const core::Tensor& dy,
                                 const core::Tensor& w, float* dw, float* dx, float dx_beta,
                                 core::RowSink* sink) {
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
  if (sink && exact_dx) {
    // dX = dY . W a tile of rows at a time, made column-major (W^T . dY^T:
    // no transpose for a conv sink) and handed to the sink while in cache.
    core::Stopwatch g;
    const int64_t granule = std::max<int64_t>(1, sink->granule());
    core::SerialBlasScope serial;
    double lower = 0.0;  // thread 0's time in the sink (col2im)
    core::parallel_for_indexed((n + granule - 1) / granule, [&](int thread, int64_t u0, int64_t u1) {
      std::vector<float> cols(static_cast<size_t>(kExactSinkRows * k));
      core::Stopwatch sw;
      double mine = 0.0;
      for (int64_t r = u0 * granule, count = 0; r < std::min(n, u1 * granule); r += count) {
        count = std::min({kExactSinkRows, n - r, granule - r % granule});
        core::gemm(core::Trans::Yes, core::Trans::Yes, k, count, m, 1.0f, w.data(), k,
                   dy.data() + r * m, m, 0.0f, cols.data(), count);
        sw.restart();
        sink->add_kmajor(r, count, 0, k, cols.data(), count);
        mine += sw.seconds();
      }
      if (thread == 0) lower = mine;
    }, 1);
    const double total_s = g.seconds();
    stats_.lowering_s += std::min(lower, total_s);
    stats_.gemm_s += total_s - std::min(lower, total_s);
  }
  const bool cluster_dx = (dx || sink) && !exact_dx;
  const bool keep = settings_.keep_projection && !saved->directions.empty();
  if (!dw && !cluster_dx) {
    stats_.backward_s += total.seconds();
    return;
  }
  const float* dyd = dy.data();
  const int threads = core::num_threads();
  // Work buffers kept across calls (no page faults or zeroing per step).
  std::vector<core::AlignedVector<float>>& partial = partial_;
  partial.resize(static_cast<size_t>(threads));
  core::AlignedVector<float>& seg = seg_;
  std::vector<float>& dxc = dxc_;
  // Per-cluster input gradients of all blocks (total clusters x L: a few MB
  // at most), so dX is written in one row-major pass at the end: each dX
  // cache line is written once, completely (per-group passes wrote partial
  // lines of the 200 MB dX several times, which cost more than the rest).
  if (cluster_dx) dxc.resize(static_cast<size_t>(c.total_clusters() * l));
  core::Stopwatch watch;
  const int64_t slice = std::min(m, kSliceColumns);
  for (auto [g0, g1] : block_groups(c, slice)) {
    const int64_t base = c.offset[g0], count = c.offset[g1] - base;
    // G_s[c] = sum of dY over the members of c: per-thread partial sums over
    // row ranges, then a fixed-order reduction (reproducible per thread count).
    watch.restart();
    core::parallel_for_indexed(n, [&](int t, int64_t r0, int64_t r1) {
      core::AlignedVector<float>& g = partial[t];
      g.assign(static_cast<size_t>(count * m), 0.0f);
      std::vector<float*> rows(static_cast<size_t>(c.blocks));
      for (int64_t o0 = 0; o0 < m; o0 += slice) {
        for (int64_t s = g0; s < g1; ++s) rows[s] = g.data() + (c.offset[s] - base) * m + o0;
        for (int64_t i = r0; i < r1; ++i)
          scatter_add_row(dyd + i * m + o0, std::min(slice, m - o0), m, c.assign.data() + i, n, g0, g1,
                          rows.data());
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
    {
      core::SerialBlasScope serial;
      core::parallel_for(g1 - g0, [&](int64_t b0, int64_t b1) {
        for (int64_t s = g0 + b0; s < g0 + b1; ++s) {
          const int64_t len = std::min(l, k - s * l), ns = c.clusters(s);
          const float* g = seg.data() + (c.offset[s] - base) * m;
          if (dw)  // blocks own disjoint columns of dW
            core::gemm(core::Trans::Yes, core::Trans::No, m, len, ns, 1.0f, g, m,
                       c.centroid.data() + c.offset[s] * l, l, 1.0f, dw + s * l, k);
          if (cluster_dx) {
            float* out = dxc.data() + c.offset[s] * l;
            core::gemm(core::Trans::No, core::Trans::No, ns, len, m, 1.0f, g, m, w.data() + s * l, k,
                       0.0f, out, l);
            for (int64_t id = 0; id < ns; ++id) {
              const float inv = 1.0f / static_cast<float>(c.count[c.offset[s] + id]);
              for (int64_t j = 0; j < len; ++j) out[id * l + j] *= inv;
            }
            if (keep)  // the part along the directions comes per row, from Q
              remove_projection(out, ns, l, saved->directions.data() + s * l * saved->h, len, saved->h);
          }
        }
      }, 1);
    }
    stats_.gemm_s += watch.lap();

    seg.swap(partial[0]);  // keep the buffer's capacity for the next group
  }
  // keep_projection: dW_s += (V_s Z_s)^T with Z = P^T dY, and Q = dY G^T for
  // the rows' own input gradients along the directions.
  const int64_t h = saved->h, ldp = c.blocks * h;
  std::vector<float>& q = kept_q_;
  if (keep && n > 0) {
    watch.restart();
    if (dw) {
      std::vector<float> z(static_cast<size_t>(ldp * m));
      core::gemm(core::Trans::No, core::Trans::No, ldp, m, n, 1.0f, c.projection.data(), n, dyd, m, 0.0f,
                 z.data(), m);
      for (int64_t s = 0; s < c.blocks; ++s)
        core::gemm(core::Trans::Yes, core::Trans::Yes, m, std::min(l, k - s * l), h, 1.0f, z.data() + s * h * m, m,
                   saved->directions.data() + s * l * h, h, 1.0f, dw + s * l, k);
    }
    if (cluster_dx) {  // Q^T = G dY^T, [blocks * H][rows]
      q.resize(static_cast<size_t>(n * ldp));
      core::gemm(core::Trans::No, core::Trans::Yes, ldp, n, m, 1.0f, saved->g.data(), m, dyd, m, 0.0f, q.data(),
                 n);
    }
    stats_.gemm_s += watch.lap();
  }
  // dX[i, block s] = dXc_s[cluster_s(i)] (+ beta dX), or those rows handed
  // to the sink a tile at a time (never all of dX in memory).
  if (cluster_dx) {
    watch.restart();
    double lower = 0.0;  // thread 0's time in the sink (col2im): the layer's lowering
    std::vector<const float*> rows(static_cast<size_t>(c.blocks));
    for (int64_t s = 0; s < c.blocks; ++s) rows[s] = dxc.data() + c.offset[s] * l;
    if (dx) {
      core::parallel_for(n, [&](int64_t r0, int64_t r1) {
        write_dx_rows(dx, r0, r1, k, l, c.assign.data(), n, c.blocks, rows.data(), dx_beta);
      }, 64);
      if (keep && n > 0)  // dX_s += Q_s V_s^T
        for (int64_t s = 0; s < c.blocks; ++s)
          core::gemm(core::Trans::Yes, core::Trans::Yes, n, std::min(l, k - s * l), h, 1.0f, q.data() + s * h * n, n,
                     saved->directions.data() + s * l * h, h, 1.0f, dx + s * l, k);
    } else {
      // A tile of rows x one group of blocks (~kSinkColumns columns) at a
      // time, read from the per-cluster rows straight into K-major order
      // (register transposes through row pointers) and added column-major
      // (col2im per channel) while in L1/L2. Whole-row tiles (64 x K, 400 KB
      // at CifarNet conv2) took ~20% longer, and a row-major copy before the
      // transpose ~25% longer again.
      const int64_t granule = std::max<int64_t>(1, sink->granule());
      const int64_t group = std::max<int64_t>(1, kSinkColumns / l);
      core::parallel_for_indexed((n + granule - 1) / granule, [&](int thread, int64_t u0, int64_t u1) {
        std::vector<float> tile_t(static_cast<size_t>(kSinkRows * group * l));
        std::vector<const float*> sources(static_cast<size_t>(kSinkRows));
        core::Stopwatch sw;
        double mine = 0.0;
        // Block group by block group over this thread's rows: the group's
        // per-cluster rows stay in L2 while every row reads them (row by row
        // over all blocks, the whole table went through L2 for every image).
        // Each element of dX still gets its adds in block order.
        for (int64_t g0 = 0; g0 < c.blocks; g0 += group) {
          const int64_t g1 = std::min(c.blocks, g0 + group);
          const int64_t c0 = g0 * l, c1 = std::min(k, g1 * l);
          for (int64_t r = u0 * granule, count = 0; r < std::min(n, u1 * granule); r += count) {
            count = std::min({kSinkRows, n - r, granule - r % granule});
            for (int64_t s = g0; s < g1; ++s) {
              const int32_t* ids = c.assign.data() + s * n + r;
              for (int64_t i = 0; i < count; ++i) sources[i] = rows[s] + static_cast<int64_t>(ids[i]) * l;
              core::transpose_rows(sources.data(), count, std::min(l, k - s * l),
                                   tile_t.data() + (s * l - c0) * count, count);
              if (keep)  // + (Q_s V_s^T)^T for these rows (the tile is K-major)
                add_direction_terms(tile_t.data() + (s * l - c0) * count, count, std::min(l, k - s * l), count,
                                    saved->directions.data() + s * l * h, h, q.data() + s * h * n + r, n);
            }
            sw.restart();
            sink->add_kmajor(r, count, c0, c1, tile_t.data(), count);
            mine += sw.seconds();
          }
        }
        if (thread == 0) lower = mine;
      }, 1);
    }
    const double section = watch.lap();
    lower = std::min(lower, section);
    stats_.lowering_s += lower;
    stats_.scatter_s += section - lower;
  }
  stats_.backward_s += total.seconds();
}

}  // namespace deja::reuse
