// Fused hashing + grouping + centroid accumulation (see clustering.h).
#include "reuse/clustering.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/aligned_vector.h"
#include "core/parallel.h"
#include "core/stopwatch.h"
#include "core/transpose16x16.h"

namespace deja::reuse {

namespace {

constexpr int64_t kGroupColumns = 64;  // columns of X per group of blocks (whole cache lines)
constexpr int64_t kChunkRows = 64;     // rows hashed together; their group slice stays in L1
constexpr int64_t kTileRows = 256;     // rows a RowSource fills at a time (one CifarNet conv2 image)
constexpr int64_t kSlotAhead = 16;     // grouping pipeline: slot prefetch distance (rows)
constexpr int64_t kIdAhead = 8;        // grouping pipeline: lookup distance (rows)

// Open-addressing table from key to cluster id for one block, with the
// clusters' running sums and counts. Slot key kZeroKey marks an empty slot
// (zero sub-vectors never enter the table).
struct BlockTable {
  std::vector<uint64_t> slot_key;
  std::vector<int32_t> slot_id;
  int shift = 64;
  // [clusters][row]: a cluster's sum starts on a cache line (row = L rounded
  // up to 16 floats), so the per-row adds are whole, unsplit vectors.
  core::AlignedVector<float> sums;
  int64_t row = 0;
  std::vector<int32_t> counts;
  int32_t zero_id = -1;
  size_t sums_budget = 0;  // floats of sums reserved for the expected clusters

  // Empties the table for a new clustering, keeping its vectors' capacity
  // (a table from a scratch is reused call after call).
  void init(int64_t expected, int64_t l) {
    row = (l + 15) / 16 * 16;
    int64_t cap = 64;
    while (cap < 2 * expected) cap *= 2;
    empty_slots(cap);
    zero_id = -1;
    counts.clear();
    sums.clear();
    counts.reserve(static_cast<size_t>(expected));
    sums_budget = static_cast<size_t>((expected + expected / 4) * row);
    sums.reserve(sums_budget);  // no regrowth copies at fine rungs
  }
  void empty_slots(int64_t cap) {  // cap: a power of two
    slot_key.assign(static_cast<size_t>(cap), kZeroKey);
    slot_id.assign(static_cast<size_t>(cap), -1);
    shift = 64 - std::countr_zero(static_cast<uint64_t>(cap));
  }
  void rehash(int64_t cap) {
    std::vector<uint64_t> old_key = std::move(slot_key);
    std::vector<int32_t> old_id = std::move(slot_id);
    empty_slots(cap);
    for (size_t i = 0; i < old_key.size(); ++i)
      if (old_key[i] != kZeroKey) place(old_key[i], old_id[i]);
  }
  // Slots and sums fit well inside L1 + L2. Judged by this clustering's
  // sums budget, not the capacity: a kept table's capacity remembers the
  // largest clustering it ever held.
  bool small() const {
    const size_t sum_floats = std::max(sums_budget, sums.size());
    return slot_key.size() * (sizeof(uint64_t) + sizeof(int32_t)) + sum_floats * sizeof(float) <= (256u << 10);
  }
  void prefetch_slot(uint64_t key) const {
    if (key != kZeroKey) {
      const size_t i = slot_of(key);
      __builtin_prefetch(slot_key.data() + i);
      __builtin_prefetch(slot_id.data() + i);
    }
  }
  size_t slot_of(uint64_t key) const {  // Fibonacci hashing: sign keys are not mixed
    return static_cast<size_t>((key * 0x9e3779b97f4a7c15ULL) >> shift);
  }
  void place(uint64_t key, int32_t id) {
    const size_t mask = slot_key.size() - 1;
    size_t i = slot_of(key);
    while (slot_key[i] != kZeroKey) i = (i + 1) & mask;
    slot_key[i] = key;
    slot_id[i] = id;
  }
  int32_t new_cluster() {
    const auto id = static_cast<int32_t>(counts.size());
    counts.push_back(0);
    sums.resize(sums.size() + static_cast<size_t>(row), 0.0f);
    return id;
  }
  int32_t find_or_add(uint64_t key) {
    if (key == kZeroKey) {
      if (zero_id < 0) zero_id = new_cluster();
      return zero_id;
    }
    const size_t mask = slot_key.size() - 1;
    size_t i = slot_of(key);
    for (;;) {
      if (slot_key[i] == key) return slot_id[i];
      if (slot_key[i] == kZeroKey) break;
      i = (i + 1) & mask;
    }
    const int32_t id = new_cluster();
    slot_key[i] = key;
    slot_id[i] = id;
    if (2 * counts.size() > slot_key.size()) rehash(2 * static_cast<int64_t>(slot_key.size()));
    return id;
  }
};

// sum[0, len) += v[0, len); sum is a table row (64-byte aligned, len rounded
// up to 16 floats, the padding never read). With AVX-512 every store is a
// whole aligned vector: the source's tail is loaded masked, so the padding
// lanes add zero (masked stores are slow on some AVX-512 cores).
inline void add_to_sum(float* __restrict sum, const float* __restrict v, int64_t len) {
#ifdef __AVX512F__
  for (int64_t j = 0; j < len; j += 16) {
    const int64_t left = len - j;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
    _mm512_store_ps(sum + j, _mm512_add_ps(_mm512_load_ps(sum + j), _mm512_maskz_loadu_ps(m, v + j)));
  }
#else
  for (int64_t j = 0; j < len; ++j) sum[j] += v[j];
#endif
}

// Centroid sums straight from a column-major tile, for a source's rows (no
// row-major copy of the tile to write and read back): sums rows of `ids[i]`
// += row i's sub-vector, whose element j is cols[j * ld + i], for i < count
// and j < len. A 16-row slab is added 16 columns at a time through a
// register transpose; rows are added in row order, so the sums are bit for
// bit those of add_to_sum over the row-major tile. All-zero rows (the zero
// cluster) are added too, branch-free: +-0 added to a +0 sum leaves +0.
#ifdef __AVX512F__
// One 16 x 16 piece: columns [j0, j0 + q) of 16 consecutive rows (q <= 16;
// the missing columns are zero lanes, which fall in the sums' padding).
// Out of line: with its 32 registers it spills when inlined into a loop.
__attribute__((noinline)) void add_piece16(const float* cols, int64_t ld, int64_t q, float* const* sums,
                                           int64_t j0) {
  __m512 r[16];
  for (int j = 0; j < 16; ++j) r[j] = j < q ? _mm512_loadu_ps(cols + j * ld) : _mm512_setzero_ps();
  core::transpose16x16(r);  // r[j] held column j of the 16 rows; now row j
  for (int i = 0; i < 16; ++i) {
    float* sum = sums[i] + j0;
    _mm512_store_ps(sum, _mm512_add_ps(_mm512_load_ps(sum), r[i]));
  }
}
#endif

void add_columns_to_sums(BlockTable& t, const int32_t* ids, int64_t count, const float* cols, int64_t ld,
                         int64_t len) {
  int64_t i0 = 0;
#ifdef __AVX512F__
  float* sums[16];
  for (; i0 + 16 <= count; i0 += 16) {
    for (int i = 0; i < 16; ++i) sums[i] = t.sums.data() + static_cast<int64_t>(ids[i0 + i]) * t.row;
    for (int64_t j0 = 0; j0 < len; j0 += 16) add_piece16(cols + j0 * ld + i0, ld, std::min<int64_t>(16, len - j0), sums, j0);
  }
#endif
  for (int64_t i = i0; i < count; ++i) {
    float* sum = t.sums.data() + static_cast<int64_t>(ids[i]) * t.row;
    for (int64_t j = 0; j < len; ++j) sum[j] += cols[j * ld + i];
  }
}

}  // namespace

struct ClusteringScratch {
  std::vector<BlockTable> tables;
};

void ClusteringScratchDeleter::operator()(ClusteringScratch* scratch) const { delete scratch; }

ClusteringScratchPtr make_clustering_scratch() { return ClusteringScratchPtr(new ClusteringScratch()); }

int64_t Clustering::product_clusters() const {
  int64_t n = total_clusters();
  for (int32_t z : zero_id) n -= (z >= 0);
  return n;
}

double Clustering::remaining_ratio() const {
  const int64_t denom = rows * blocks;
  return denom > 0 ? static_cast<double>(product_clusters()) / static_cast<double>(denom) : 0.0;
}

Clustering cluster_rows(const float* x, int64_t rows, int64_t k, const Hasher& hasher,
                        double* hash_s, double* cluster_s, int64_t expected_clusters) {
  return cluster_rows(core::MatrixRows(x, rows, k), hasher, hash_s, cluster_s, expected_clusters);
}

Clustering cluster_rows(const core::RowSource& source, const Hasher& hasher, double* hash_s,
                        double* cluster_s, int64_t expected_clusters, double* lowering_s,
                        Clustering* storage, float* projections, ClusteringScratch* scratch) {
  const int64_t rows = source.rows(), k = source.cols();
  if (hasher.k() != k)
    throw std::invalid_argument("cluster_rows: hasher built for K = " + std::to_string(hasher.k()) +
                                ", X has K = " + std::to_string(k));
  // Every element of assign, count and centroid is written below, so reused
  // vectors need no clearing.
  Clustering c;
  if (storage) c = std::exchange(*storage, Clustering());
  c.rows = rows;
  c.k = k;
  c.L = hasher.L();
  c.blocks = hasher.blocks();
  const int64_t l = c.L, blocks = c.blocks;
  c.assign.resize(static_cast<size_t>(blocks * rows));
  c.zero_id.assign(static_cast<size_t>(blocks), -1);
  std::vector<BlockTable> own_tables;
  std::vector<BlockTable>& tables = scratch ? scratch->tables : own_tables;
  tables.resize(static_cast<size_t>(blocks));
  double t_hash = 0.0, t_cluster = 0.0, t_lower = 0.0;

  // Blocks are handled in groups of adjacent blocks spanning ~kGroupColumns
  // columns: a group's slice of a row is a few whole cache lines, and the
  // group's tables (a few hundred KB) stay in L2 while every row streams by.
  const int64_t group = std::max<int64_t>(1, kGroupColumns / std::max<int64_t>(l, 1));
  const int64_t groups = (blocks + group - 1) / group;
  // A materialised X is read in place; otherwise each thread has the
  // source fill a tile of kTileRows rows of its group's columns at a time.
  const float* x = source.data();
  core::parallel_for_indexed(groups, [&](int thread, int64_t g0, int64_t g1) {
    std::vector<uint64_t> keys(static_cast<size_t>(group * kChunkRows));
    std::vector<float> tile_t;
    core::Stopwatch watch;
    double my_hash = 0.0, my_cluster = 0.0, my_lower = 0.0;
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t b0 = g * group, b1 = std::min(blocks, b0 + group);
      const int64_t c0 = b0 * l, c1 = std::min(k, b1 * l);
      for (int64_t s = b0; s < b1; ++s)
        tables[s].init(std::min<int64_t>(rows, std::max<int64_t>(256, expected_clusters)), l);
      for (int64_t t0 = 0; t0 < rows; t0 += x ? rows : kTileRows) {
        const int64_t t1 = x ? rows : std::min(rows, t0 + kTileRows);
        // A materialised X: row i's column c0 is at tile_base + (i - t0) * k.
        // A source's tile is made column-major (tile_t: column j of the
        // tile's rows at tile_t + (j - c0) * ldt), hashed and summed from
        // there (contiguous loads, no row-major copy).
        const float* tile_base = x ? x + t0 * k + c0 : nullptr;
        const int64_t ld = k;
        const int64_t rows_t = t1 - t0;
        // Columns a cache line more than a power of two apart: at 256 rows
        // (1 KB) the 16 column loads of a slab and the sums stores shared
        // their low address bits (4K aliasing; ~0.3 ms at CifarNet conv2).
        const int64_t ldt = rows_t + 16;
        if (!x) {
          watch.restart();
          tile_t.resize(static_cast<size_t>(ldt * (c1 - c0)));
          source.fill_kmajor(t0, rows_t, c0, c1, tile_t.data(), ldt);
          my_lower += watch.lap();
        }
        for (int64_t i0 = t0; i0 < t1; i0 += kChunkRows) {
          const int64_t chunk = std::min(kChunkRows, t1 - i0);
          // Rows are K floats apart (often > a page), which defeats the hardware
          // prefetcher: the grouping loop below asks for the next chunk's
          // slice, one sub-vector per (row, block) it handles, so the loads
          // overlap with the table work (a burst of prefetches up front only
          // stalled on the full miss queue).
          const int64_t next_rows = x ? std::min(kChunkRows, t1 - i0 - chunk) : 0;
          watch.restart();
          for (int64_t s = b0; s < b1; ++s) {
            uint64_t* block_keys = keys.data() + (s - b0) * kChunkRows;
            float* proj = projections ? projections + s * hasher.H() * rows + i0 : nullptr;
            if (x && proj)
              hasher.hash_block_projected(tile_base + (i0 - t0) * ld + (s * l - c0), chunk, ld, s, block_keys,
                                          proj, rows);
            else if (x)
              hasher.hash_block(tile_base + (i0 - t0) * ld + (s * l - c0), chunk, ld, s, block_keys);
            else if (proj)
              hasher.hash_block_kmajor_projected(tile_t.data() + (s * l - c0) * ldt + (i0 - t0), chunk, ldt, s,
                                                 block_keys, proj, rows);
            else
              hasher.hash_block_kmajor(tile_t.data() + (s * l - c0) * ldt + (i0 - t0), chunk, ldt, s,
                                       block_keys);
          }
          my_hash += watch.lap();
          for (int64_t s = b0; s < b1; ++s) {
            BlockTable& t = tables[s];
            const int64_t len = hasher.block_width(s);
            const uint64_t* kk = keys.data() + (s - b0) * kChunkRows;
            int32_t* out = c.assign.data() + s * rows + i0;
            if (!x) {
              // A source's tile is in cache: ids first (in row order, table
              // slots prefetched ahead when the table is large), then the
              // sums from the column-major tile.
              int32_t ids[kChunkRows];
              const bool large = !t.small();
              for (int64_t i = 0; i < chunk; ++i) {
                if (large && i + kSlotAhead < chunk) t.prefetch_slot(kk[i + kSlotAhead]);
                const int32_t id = t.find_or_add(kk[i]);
                ids[i] = out[i] = id;
                ++t.counts[id];
              }
              add_columns_to_sums(t, ids, chunk, tile_t.data() + (s * l - c0) * ldt + (i0 - t0), ldt, len);
              continue;
            }
            const float* xs = tile_base + (i0 - t0) * ld + (s * l - c0);
            const float* next = xs + chunk * ld;
            // A software pipeline over the chunk: the table slot of
            // row i + kSlotAhead is prefetched, row i + kIdAhead is looked up
            // (ids are still given in row order) and its cluster's sum
            // prefetched, row i is added: at fine rungs the tables outgrow L2
            // and each probe and sum would otherwise be a serial miss.
            int32_t ids[kChunkRows];
            for (int64_t i = 0; i < std::min(kIdAhead, chunk); ++i) ids[i] = t.find_or_add(kk[i]);
            for (int64_t i = 0; i < chunk; ++i) {
              if (i < next_rows) {
                for (int64_t j = 0; j < len; j += 16) __builtin_prefetch(next + i * ld + j);
                __builtin_prefetch(next + i * ld + len - 1);
              }
              if (i + kSlotAhead < chunk) t.prefetch_slot(kk[i + kSlotAhead]);
              if (i + kIdAhead < chunk) {
                const int32_t ahead = t.find_or_add(kk[i + kIdAhead]);
                ids[i + kIdAhead] = ahead;
                __builtin_prefetch(t.sums.data() + static_cast<int64_t>(ahead) * t.row);
              }
              // Row i joins its cluster: assignment, count, sum (the zero
              // centroid gets nothing added).
              const int32_t id = ids[i];
              out[i] = id;
              ++t.counts[id];
              if (kk[i] != kZeroKey) add_to_sum(t.sums.data() + static_cast<int64_t>(id) * t.row, xs + i * ld, len);
            }
          }
          my_cluster += watch.lap();
        }
      }
    }
    if (thread == 0) {
      t_hash = my_hash;
      t_cluster = my_cluster;
      t_lower = my_lower;
    }
  });

  c.offset.assign(static_cast<size_t>(blocks + 1), 0);
  for (int64_t s = 0; s < blocks; ++s)
    c.offset[s + 1] = c.offset[s] + static_cast<int64_t>(tables[s].counts.size());
  const int64_t total = c.total_clusters();
  c.count.resize(static_cast<size_t>(total));
  c.centroid.resize(static_cast<size_t>(total * l));
  core::Stopwatch watch;
  core::parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t s = b0; s < b1; ++s) {
      BlockTable& t = tables[s];
      c.zero_id[s] = t.zero_id;
      const int64_t base = c.offset[s];
      const int64_t n = static_cast<int64_t>(t.counts.size());
      std::copy(t.counts.begin(), t.counts.end(), c.count.begin() + base);
      for (int64_t id = 0; id < n; ++id) {
        const float inv = 1.0f / static_cast<float>(t.counts[id]);
        const float* src = t.sums.data() + id * t.row;
        float* dst = c.centroid.data() + (base + id) * l;
        for (int64_t j = 0; j < l; ++j) dst[j] = src[j] * inv;
      }
      // Without a scratch, release the table now: a big layer's tables
      // hold megabytes.
      if (!scratch) t = BlockTable();
    }
  });
  t_cluster += watch.seconds();
  if (lowering_s) *lowering_s += t_lower;
  else t_hash += t_lower;
  if (hash_s) *hash_s += t_hash;
  if (cluster_s) *cluster_s += t_cluster;
  return c;
}

}  // namespace deja::reuse
