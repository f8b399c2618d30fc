// Clustering of X's sub-vectors per column block: every row's sub-vector of
// block s gets the id of its key's cluster (ids in order of first occurrence,
// so the result depends only on the data, the hasher and nothing else), with
// member counts and centroids (member means). Adjacent blocks form groups of
// ~64 columns; per group one pass over the rows in chunks of 64: a chunk is
// hashed, then each key is looked up in its block's open-addressing table and
// the sub-vector is added to its cluster's sum while the chunk is in L1
// (a short software pipeline prefetches table slots and cluster sums a few
// rows ahead, and the next chunk's rows one sub-vector at a time).
// Rows that come from a RowSource without memory behind them (conv2d's
// patches) are made 256 at a time per group, column-major, and hashed and
// summed from there (the sums through 16 x 16 register transposes).
// Threads own disjoint groups, so results do not depend on the thread count.
// Limits: with fewer groups than threads (K <= ~64) only one thread works.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "reuse/lsh.h"

namespace deja::reuse {

struct Clustering {
  int64_t rows = 0, k = 0, L = 0, blocks = 0;
  std::vector<int32_t> assign;    // [blocks][rows]: cluster id within the block
  std::vector<int64_t> offset;    // [blocks + 1]: first flat cluster index of block s
  std::vector<int32_t> count;     // [total clusters]: members
  std::vector<float> centroid;    // [total clusters][L]: member mean, zero padded past the block width
  std::vector<int32_t> zero_id;   // [blocks]: id of the all-zero cluster, -1 when none
  // keep_projection (filled by the reuse product through cluster_rows): each
  // row's projections onto its blocks' directions, [blocks * H][rows]; here
  // so that its storage is recycled with the rest.
  std::vector<float> projection;

  int64_t clusters(int64_t block) const { return offset[block + 1] - offset[block]; }
  int64_t total_clusters() const { return offset.empty() ? 0 : offset.back(); }
  // Clusters that need a product (the zero cluster needs none).
  int64_t product_clusters() const;
  // r_c = product clusters / (rows * blocks); 0 for an empty input.
  double remaining_ratio() const;
};

// The per-block hash tables and cluster sums cluster_rows works in. A caller
// that clusters every step keeps one across calls: at fine rungs the tables
// hold ~100 MB (CifarNet conv2, r_c 0.28), and allocated afresh each call by
// the worker threads (in their own malloc arenas) their pages were faulted in
// again every step, more time than the clustering itself. Defined in
// clustering.cpp; make one with make_clustering_scratch().
struct ClusteringScratch;
struct ClusteringScratchDeleter {
  void operator()(ClusteringScratch* scratch) const;
};
using ClusteringScratchPtr = std::unique_ptr<ClusteringScratch, ClusteringScratchDeleter>;
ClusteringScratchPtr make_clustering_scratch();

// x is [rows, k] row-major. hasher.prepare() must have been called for x.
// Adds the time spent hashing and grouping (thread 0's share, i.e. wall time
// of the parallel section) to *hash_s and *cluster_s when not null.
// expected_clusters: a hint for the clusters per block (e.g. the previous
// batch's), so tables start at their final size instead of growing by
// rehashing (fine rungs have thousands of clusters per block); 0 = no hint.
Clustering cluster_rows(const float* x, int64_t rows, int64_t k, const Hasher& hasher,
                        double* hash_s = nullptr, double* cluster_s = nullptr,
                        int64_t expected_clusters = 0);
// The same over rows that a RowSource produces tile by tile (read in place
// when it has them in memory). The source's fills are added to *lowering_s
// (thread 0's share) when given, else they count as hashing; making the
// fills row-major for the centroid sums counts as hashing.
// `storage`, when given, is a spent Clustering whose vectors are reused (no
// fresh pages for big layers' centroids every step); it is left empty.
// `projections`, when given, receives every row's raw projections onto its
// blocks' directions, block-major: [blocks * H][rows] (keep_projection).
// `scratch`, when given, supplies the tables and keeps them for the next call
// (the result does not depend on it).
Clustering cluster_rows(const core::RowSource& x, const Hasher& hasher, double* hash_s = nullptr,
                        double* cluster_s = nullptr, int64_t expected_clusters = 0,
                        double* lowering_s = nullptr, Clustering* storage = nullptr,
                        float* projections = nullptr, ClusteringScratch* scratch = nullptr);

}  // namespace deja::reuse
