// Hash families and clustering: determinism, r_c against a brute-force count
// of distinct keys computed from the projections by plain loops, magnitude
// awareness, and the reserved zero key.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "reuse/clustering.h"
#include "reuse/lsh.h"

using namespace deja;
using core::Tensor;
using reuse::ReuseSettings;

namespace {

ReuseSettings settings(const std::string& hash, int64_t l, int64_t h, uint64_t seed = 7) {
  ReuseSettings s;
  s.enabled = true;
  s.hash = hash;
  s.L = l;
  s.H = h;
  s.seed = seed;
  return s;
}

// Rows drawn from a few prototypes plus small noise, with some zero blocks.
Tensor redundant_rows(int64_t n, int64_t k, int64_t l, uint64_t seed) {
  core::Rng rng(seed, 3);
  const int64_t protos = 12;
  std::vector<float> p(protos * k);
  for (auto& v : p) v = rng.normal();
  Tensor x = Tensor::empty({n, k});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = rng.below(protos);
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = p[a * k + j] + 0.05f * rng.normal();
    for (int64_t s = 0; s * l < k; ++s)
      if (rng.uniform() < 0.1f)
        for (int64_t j = s * l; j < std::min(k, (s + 1) * l); ++j) x[i * k + j] = 0.0f;
  }
  return x;
}

// The key tuple of one sub-vector by plain loops from the hasher's public
// projections: sign bits, or quantised projections, or sign bits + log2-norm bucket.
std::vector<int64_t> naive_tuple(const reuse::Hasher& h, const std::string& family,
                                 const float* v, int64_t len, int64_t block, double width) {
  bool zero = true;
  for (int64_t j = 0; j < len; ++j) zero &= (v[j] == 0.0f);
  if (zero) return {};
  auto r = h.projections(block);
  std::vector<int64_t> t;
  double norm2 = 0.0;
  for (int64_t j = 0; j < len; ++j) norm2 += double(v[j]) * v[j];
  for (int64_t q = 0; q < h.H(); ++q) {
    double p = 0.0;
    for (int64_t j = 0; j < len; ++j) p += double(v[j]) * r[j * h.H() + q];
    if (family == "qproj" || family == "pca")
      t.push_back(static_cast<int64_t>(std::floor(p / h.bucket_width(block) + h.offsets()[q])));
    else
      t.push_back(p >= 0.0);
  }
  if (family == "signnorm") t.push_back(static_cast<int64_t>(std::floor(0.5 * std::log2(norm2) / width)));
  return t;
}

}  // namespace

TEST_CASE("same seed, same clusters; another seed, other projections") {
  Tensor x = redundant_rows(500, 30, 10, 1);
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    CAPTURE(hash);
    auto h1 = reuse::make_hasher(settings(hash, 10, 8), 30);
    auto h2 = reuse::make_hasher(settings(hash, 10, 8), 30);
    auto h3 = reuse::make_hasher(settings(hash, 10, 8, 8), 30);
    for (auto* h : {h1.get(), h2.get(), h3.get()}) h->prepare(x.data(), 500, 30, false);
    auto c1 = reuse::cluster_rows(x.data(), 500, 30, *h1);
    auto c2 = reuse::cluster_rows(x.data(), 500, 30, *h2);
    CHECK(c1.assign == c2.assign);
    CHECK(c1.offset == c2.offset);
    CHECK(c1.centroid == c2.centroid);
    CHECK(h1->projections() == h2->projections());
    if (hash == "pca")  // directions come from the data; the seed draws the offsets
      CHECK(h1->offsets() != h3->offsets());
    else
      CHECK(h1->projections() != h3->projections());
  }
}

TEST_CASE("r_c equals a brute-force count of distinct keys") {
  const int64_t n = 700, k = 47, l = 9;  // L does not divide K
  Tensor x = redundant_rows(n, k, l, 2);
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    for (int64_t hb : {1, 5, 32}) {
      CAPTURE(hash);
      CAPTURE(hb);
      auto s = settings(hash, l, hb);
      auto h = reuse::make_hasher(s, k);
      h->prepare(x.data(), n, k, false);
      auto c = reuse::cluster_rows(x.data(), n, k, *h);
      int64_t distinct = 0;
      for (int64_t b = 0; b < c.blocks; ++b) {
        const int64_t len = std::min(l, k - b * l);
        std::set<std::vector<int64_t>> keys;
        std::map<std::vector<int64_t>, int32_t> id_of;
        for (int64_t i = 0; i < n; ++i) {
          auto t = naive_tuple(*h, hash, x.data() + i * k + b * l, len, b, 1.0);
          if (!t.empty()) keys.insert(t);
          // Same tuple <=> same cluster id.
          auto [it, fresh] = id_of.emplace(t, c.assign[b * n + i]);
          if (!fresh) REQUIRE(it->second == c.assign[b * n + i]);
        }
        CHECK(static_cast<int64_t>(id_of.size()) == c.clusters(b));
        distinct += static_cast<int64_t>(keys.size());
      }
      CHECK(c.product_clusters() == distinct);
      CHECK(c.remaining_ratio() == doctest::Approx(double(distinct) / double(n * c.blocks)));
      if (hb == 1 && hash == "sign") CHECK(c.product_clusters() <= 2 * c.blocks);
    }
  }
}

TEST_CASE("magnitude-aware families separate vectors that differ in norm by 4") {
  const int64_t l = 8, n = 200;
  core::Rng rng(5, 1);
  Tensor x = Tensor::empty({2 * n, l});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < l; ++j) {
      x[i * l + j] = rng.normal();
      x[(n + i) * l + j] = 4.0f * x[i * l + j];
    }
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    CAPTURE(hash);
    auto st = settings(hash, l, 8);
    if (hash == "pca") st.width = 0.2;  // buckets shorter than most x (see below)
    auto h = reuse::make_hasher(st, l);
    h->prepare(x.data(), 2 * n, l, false);
    int64_t separated = 0, long_separated = 0, long_rows = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool apart = h->key(x.data() + i * l, 0) != h->key(x.data() + (n + i) * l, 0);
      separated += apart;
      double norm2 = 0.0;
      for (int64_t j = 0; j < l; ++j) norm2 += double(x[i * l + j]) * x[i * l + j];
      if (std::sqrt(norm2) >= h->bucket_width(0)) {
        ++long_rows;
        long_separated += apart;
      }
    }
    if (hash == "sign") {
      CHECK(separated == 0);  // direction only
    } else if (hash == "pca") {
      // With H = L the directions span the space, so x and 4x (3|x| apart)
      // differ by more than a bucket width along some direction whenever
      // |x| >= the width; a much shorter x may share 4x's bucket.
      CHECK(long_rows > n / 2);
      CHECK(long_separated == long_rows);
      CHECK(separated >= n - n / 50);
    } else {
      CHECK(separated == n);
    }
  }
}

TEST_CASE("the zero key holds exactly the all-zero sub-vectors") {
  const int64_t n = 400, k = 26, l = 6;
  Tensor x = redundant_rows(n, k, l, 9);
  // Near-zero but not zero sub-vectors must not join the zero cluster.
  for (int64_t i = 0; i < n; i += 7) {
    for (int64_t j = 0; j < l; ++j) x[i * k + j] = 0.0f;
    x[i * k + 2] = 1e-30f;
  }
  for (std::string hash : {"sign", "qproj", "signnorm", "pca"}) {
    CAPTURE(hash);
    auto h = reuse::make_hasher(settings(hash, l, 4), k);
    h->prepare(x.data(), n, k, false);
    auto c = reuse::cluster_rows(x.data(), n, k, *h);
    int64_t zeros_seen = 0;
    for (int64_t b = 0; b < c.blocks; ++b) {
      const int64_t len = std::min(l, k - b * l);
      for (int64_t i = 0; i < n; ++i) {
        bool zero = true;
        for (int64_t j = 0; j < len; ++j) zero &= x[i * k + b * l + j] == 0.0f;
        REQUIRE(zero == (c.assign[b * n + i] == c.zero_id[b]));
        REQUIRE(zero == (h->key(x.data() + i * k + b * l, b) == reuse::kZeroKey));
        zeros_seen += zero;
      }
      if (c.zero_id[b] >= 0) {
        for (int64_t j = 0; j < l; ++j) CHECK(c.centroid[(c.offset[b] + c.zero_id[b]) * l + j] == 0.0f);
      }
    }
    CHECK(zeros_seen > 0);
  }
}

TEST_CASE("qproj width follows the data scale") {
  const int64_t n = 300, k = 20;
  Tensor x = redundant_rows(n, k, 10, 4);
  Tensor x10 = x.clone();
  for (int64_t i = 0; i < x10.numel(); ++i) x10[i] *= 10.0f;
  auto a = reuse::make_hasher(settings("qproj", 10, 8), k);
  auto b = reuse::make_hasher(settings("qproj", 10, 8), k);
  a->prepare(x.data(), n, k, false);
  b->prepare(x10.data(), n, k, false);
  CHECK(b->bucket_width(1) == doctest::Approx(10.0 * a->bucket_width(1)).epsilon(1e-4));
  auto ca = reuse::cluster_rows(x.data(), n, k, *a);
  auto cb = reuse::cluster_rows(x10.data(), n, k, *b);
  CHECK(ca.offset == cb.offset);  // scale-free keys: same number of clusters
  // A frozen scale (cross-batch scope) is kept.
  b->prepare(x.data(), n, k, true);
  CHECK(b->bucket_width(1) == doctest::Approx(10.0 * a->bucket_width(1)).epsilon(1e-4));
}

TEST_CASE("qproj keys do not depend on how many rows one call hashes, nor on the layout") {
  // 75 rows: the fast path takes two 16-row slabs per pass (64 rows) and
  // single slabs for the rest; 16-row calls never use the two-slab pass.
  // The K-major entry (a column-major copy, ld 80) must give the same keys.
  const int64_t n = 75, k = 30;
  Tensor x = redundant_rows(n, k, 10, 5);
  for (int64_t h : {int64_t{8}, int64_t{12}, int64_t{20}}) {
    CAPTURE(h);
    auto hasher = reuse::make_hasher(settings("qproj", 10, h), k);
    hasher->prepare(x.data(), n, k, false);
    std::vector<float> xt(static_cast<size_t>(k * 80));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) xt[j * 80 + i] = x[i * k + j];
    for (int64_t block = 0; block < 3; ++block) {
      std::vector<uint64_t> whole(n), pieces(n), kmajor(n);
      hasher->hash_block(x.data() + block * 10, n, k, block, whole.data());
      for (int64_t i = 0; i < n; i += 16)
        hasher->hash_block(x.data() + i * k + block * 10, std::min<int64_t>(16, n - i), k, block, pieces.data() + i);
      hasher->hash_block_kmajor(xt.data() + block * 10 * 80, n, 80, block, kmajor.data());
      CHECK(whole == pieces);
      CHECK(whole == kmajor);
      CHECK(std::set<uint64_t>(whole.begin(), whole.end()).size() > 3);
    }
  }
}

TEST_CASE("pca directions are the leading eigenvectors of each block's sample") {
  // Block 0's sub-vectors vary mostly along u (std 3) and v (std 1), block 1's
  // along e_2 only; small isotropic noise elsewhere. 1000 rows: the sample
  // takes runs of 16 rows spread over all of them.
  const int64_t n = 1000, l = 6, k = 12;
  core::Rng rng(11, 2);
  std::vector<double> u(l), v(l);
  for (auto& e : u) e = rng.normal();
  for (auto& e : v) e = rng.normal();
  auto normalise = [](std::vector<double>& a) {
    double s = 0.0;
    for (double e : a) s += e * e;
    for (double& e : a) e /= std::sqrt(s);
  };
  normalise(u);
  double uv = 0.0;
  for (int64_t j = 0; j < l; ++j) uv += u[j] * v[j];
  for (int64_t j = 0; j < l; ++j) v[j] -= uv * u[j];
  normalise(v);
  Tensor x = Tensor::empty({n, k});
  for (int64_t i = 0; i < n; ++i) {
    const double a = 3.0 * rng.normal(), b = rng.normal(), c = 2.0 * rng.normal();
    for (int64_t j = 0; j < l; ++j) {
      x[i * k + j] = static_cast<float>(a * u[j] + b * v[j] + 0.01 * rng.normal());
      x[i * k + l + j] = static_cast<float>((j == 2 ? c : 0.0) + 0.01 * rng.normal());
    }
  }
  auto h = reuse::make_hasher(settings("pca", l, 3), k);
  auto random = h->projections(0);
  h->prepare(x.data(), n, k, false);
  auto r0 = h->projections(0), r1 = h->projections(1);
  auto column_dot = [&](const std::vector<float>& r, int64_t q, const std::vector<double>& d) {
    double s = 0.0;
    for (int64_t j = 0; j < l; ++j) s += r[j * 3 + q] * d[j];
    return s;
  };
  CHECK(std::fabs(column_dot(r0, 0, u)) > 0.999);  // largest variance first
  CHECK(std::fabs(column_dot(r0, 1, v)) > 0.999);
  CHECK(std::fabs(r1[2 * 3 + 0]) > 0.999);          // block 1: e_2
  CHECK(r0 != random);
  // Unit-norm, orthogonal columns.
  for (int64_t p = 0; p < 3; ++p)
    for (int64_t q = 0; q < 3; ++q) {
      double s = 0.0;
      for (int64_t j = 0; j < l; ++j) s += double(r0[j * 3 + p]) * r0[j * 3 + q];
      CHECK(s == doctest::Approx(p == q ? 1.0 : 0.0).epsilon(1e-5));
    }
  // A frozen hasher (cross-batch scope) keeps its directions.
  Tensor other = redundant_rows(n, k, l, 3);
  h->prepare(other.data(), n, k, true);
  CHECK(h->projections(0) == r0);
  h->prepare(other.data(), n, k, false);
  CHECK(h->projections(0) != r0);
}

TEST_CASE("pca directions and widths do not depend on the thread count") {
  // Seven blocks (the last one narrower) spread over 1, 2 and 3 threads: each
  // block's moments and fit are one thread's work in one order.
  const int64_t n = 3000, l = 10, k = 67;
  Tensor x = redundant_rows(n, k, l, 5);
  std::vector<std::vector<float>> first;
  std::vector<float> first_widths;
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    core::set_num_threads(threads);
    auto st = settings("pca", l, 4);
    st.width = 0.5;
    auto h = reuse::make_hasher(st, k);
    h->prepare(x.data(), n, k, false);
    h->prepare(x.data() + k, n - 1, k, false);  // a refit from the first batch's directions
    std::vector<std::vector<float>> r;
    std::vector<float> widths;
    for (int64_t b = 0; b < h->blocks(); ++b) {
      r.push_back(h->projections(b));
      widths.push_back(h->bucket_width(b));
    }
    if (first.empty()) {
      first = r;
      first_widths = widths;
    }
    CHECK(r == first);
    CHECK(widths == first_widths);
  }
  core::set_num_threads(2);
}

TEST_CASE("the width sample does not alias with the image layout") {
  // Rows in "images" of 256 (CifarNet conv2: 16 x 16 output pixels): the
  // first 16 rows of each are faint border (norm 2), the rest strong (norm
  // 20). With one sample run per 256 rows, runs at a fixed offset would see
  // only borders (or only interiors); the estimate must see both in
  // proportion: RMS = sqrt((16 * 4 + 240 * 400) / 256) = 19.37.
  const int64_t n = 128 * 256, k = 4;
  Tensor x = Tensor::empty({n, k});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = (i % 256) < 16 ? 1.0f : 10.0f;
  for (std::string hash : {"qproj", "pca"}) {
    CAPTURE(hash);
    auto st = settings(hash, k, 4);
    st.width = 1.0;
    auto h = reuse::make_hasher(st, k);
    h->prepare(x.data(), n, k, false);
    CHECK(h->bucket_width(0) == doctest::Approx(19.37).epsilon(0.1));
  }
}

TEST_CASE("pca refits from the last batch's directions agree with a full solve") {
  // Rows with variances 64, 16, 4, 1 along four orthonormal directions and a
  // little isotropic noise; the second batch turns the directions a bit
  // (what a training or evaluation step does to the activations).
  const int64_t n = 2048, l = 10, k = 20, h = 4;
  core::Rng rng(21, 4);
  auto batch = [&](double turn) {
    std::vector<std::vector<double>> dirs(4, std::vector<double>(l, 0.0));
    for (int64_t e = 0; e < 4; ++e) {
      dirs[e][e] = std::cos(turn);
      dirs[e][e + 4] = std::sin(turn);
    }
    Tensor x = Tensor::empty({n, k});
    const double sd[4] = {8.0, 4.0, 2.0, 1.0};
    for (int64_t i = 0; i < n; ++i)
      for (int64_t b = 0; b < 2; ++b) {
        double a[4];
        for (int64_t e = 0; e < 4; ++e) a[e] = sd[e] * rng.normal();
        for (int64_t j = 0; j < l; ++j) {
          double v = 0.05 * rng.normal();
          for (int64_t e = 0; e < 4; ++e) v += a[e] * dirs[e][j];
          x[i * k + b * l + j] = static_cast<float>(v);
        }
      }
    return x;
  };
  Tensor first = batch(0.0), second = batch(0.3);
  auto warm = reuse::make_hasher(settings("pca", l, h), k);
  auto cold = reuse::make_hasher(settings("pca", l, h), k);
  warm->prepare(first.data(), n, k, false);
  warm->prepare(second.data(), n, k, false);  // refined from the first batch's directions
  cold->prepare(second.data(), n, k, false);  // full solve
  for (int64_t b = 0; b < 2; ++b) {
    auto rw = warm->projections(b), rc = cold->projections(b);
    for (int64_t e = 0; e < h; ++e) {
      double dot = 0.0;
      for (int64_t j = 0; j < l; ++j) dot += double(rw[j * h + e]) * rc[j * h + e];
      CAPTURE(b);
      CAPTURE(e);
      CHECK(dot > 0.999);  // same direction, same sign convention
    }
  }
}

TEST_CASE("clustering a tiled source equals clustering the matrix, bit for bit") {
  // The tiled path (conv2d's patches) sums centroids from column-major tiles
  // through register transposes; the materialised path adds rows. Same adds
  // in the same order, so everything must be identical, including tail rows
  // past the last 16-row slab, partial last blocks and L above and below 16.
  const int64_t n = 300, k = 150;  // 256-row tile + 44 rows
  for (int64_t l : {5, 20, 50, 72}) {
    Tensor x = redundant_rows(n, k, l, 4);
    Tensor padded = Tensor::full({n, k + 3}, 9.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) padded[i * (k + 3) + j] = x[i * k + j];
    core::MatrixRows tiled(padded.data(), n, k, k + 3);
    REQUIRE(tiled.data() == nullptr);
    for (std::string hash : {"sign", "qproj", "pca"}) {
      CAPTURE(l);
      CAPTURE(hash);
      auto h = reuse::make_hasher(settings(hash, l, 8), k);
      h->prepare(x.data(), n, k, false);
      auto a = reuse::cluster_rows(x.data(), n, k, *h);
      auto b = reuse::cluster_rows(tiled, *h);
      CHECK(a.assign == b.assign);
      CHECK(a.offset == b.offset);
      CHECK(a.count == b.count);
      CHECK(a.zero_id == b.zero_id);
      CHECK(a.centroid == b.centroid);
      CHECK(a.remaining_ratio() < 0.5);  // the rows do cluster: sums of several members are compared
    }
  }
}

TEST_CASE("clustering into a spent clustering's storage equals clustering afresh") {
  // The reuse product hands the last step's vectors back to cluster_rows; no
  // stale entry of the bigger old result may survive into the new one.
  const int64_t k = 120, l = 20;
  Tensor big = redundant_rows(500, k, l, 11);
  for (int64_t i = 0; i < 500 * k; ++i) big[i] += 0.5f * static_cast<float>(i % 7);  // many clusters
  Tensor small = redundant_rows(200, k, l, 12);
  auto h = reuse::make_hasher(settings("qproj", l, 8), k);
  h->prepare(big.data(), 500, k, false);
  reuse::Clustering spent = reuse::cluster_rows(core::MatrixRows(big.data(), 500, k), *h);
  h->prepare(small.data(), 200, k, false);
  auto fresh = reuse::cluster_rows(core::MatrixRows(small.data(), 200, k), *h);
  REQUIRE(spent.total_clusters() > fresh.total_clusters());
  auto reused = reuse::cluster_rows(core::MatrixRows(small.data(), 200, k), *h, nullptr, nullptr, 0, nullptr, &spent);
  CHECK(spent.centroid.empty());
  CHECK(reused.rows == 200);
  CHECK(reused.assign == fresh.assign);
  CHECK(reused.offset == fresh.offset);
  CHECK(reused.count == fresh.count);
  CHECK(reused.zero_id == fresh.zero_id);
  CHECK(reused.centroid == fresh.centroid);
}

TEST_CASE("clustering with tables kept in a scratch across calls equals clustering without one") {
  // The reuse product keeps cluster_rows' tables from step to step; nothing
  // of an earlier call (its keys, sums, counts, zero cluster, block count)
  // may leak into the next. The first input has many clusters and all-zero
  // sub-vectors; the later ones have fewer clusters, no zero rows, and
  // another block length (fewer blocks, then more).
  const int64_t k = 120;
  Tensor big = redundant_rows(500, k, 20, 31);
  for (int64_t i = 0; i < 500 * k; ++i) big[i] += 0.5f * static_cast<float>(i % 7);
  for (int64_t i = 0; i < 500; i += 3)
    for (int64_t j = 0; j < 40; ++j) big[i * k + j] = 0.0f;  // zero sub-vectors in blocks 0 and 1
  struct Case {
    const Tensor* x;
    int64_t rows, l;
  };
  Tensor small = redundant_rows(200, k, 20, 32);
  Tensor wide = redundant_rows(300, k, 30, 33);
  reuse::ClusteringScratchPtr scratch = reuse::make_clustering_scratch();
  for (const Case& c : {Case{&big, 500, 20}, Case{&small, 200, 20}, Case{&wide, 300, 30}, Case{&big, 500, 20}}) {
    CAPTURE(c.rows);
    CAPTURE(c.l);
    auto h = reuse::make_hasher(settings("qproj", c.l, 8), k);
    h->prepare(c.x->data(), c.rows, k, false);
    const core::MatrixRows rows(c.x->data(), c.rows, k);
    auto fresh = reuse::cluster_rows(rows, *h);
    auto kept = reuse::cluster_rows(rows, *h, nullptr, nullptr, 0, nullptr, nullptr, nullptr, scratch.get());
    CHECK(kept.assign == fresh.assign);
    CHECK(kept.offset == fresh.offset);
    CHECK(kept.count == fresh.count);
    CHECK(kept.zero_id == fresh.zero_id);
    CHECK(kept.centroid == fresh.centroid);
  }
}

TEST_CASE("hashing with projections: the same keys, and projections equal to plain dot products") {
  const int64_t n = 75, k = 61, l = 20;  // 75 rows: two-slab passes, a 16-row pass and a tail
  Tensor x = redundant_rows(n, k, l, 21);
  Tensor xt = Tensor::empty({k, n});  // column-major copy for the K-major door
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) xt[j * n + i] = x[i * k + j];
  for (std::string hash : {"qproj", "pca", "sign"}) {
    for (int64_t h : {3, 8, 12, 20}) {  // 12, 20: a last group of 4 directions
      CAPTURE(hash);
      CAPTURE(h);
      auto hs = reuse::make_hasher(settings(hash, l, h), k);
      hs->prepare(x.data(), n, k, false);
      for (int64_t s = 0; s < hs->blocks(); ++s) {
        const int64_t len = hs->block_width(s);
        const std::vector<float> r = hs->projections(s);
        std::vector<uint64_t> plain(n), rows_keys(n), kmajor_keys(n);
        std::vector<float> p_rows(h * (n + 1), -1.0f), p_kmajor(h * (n + 1), -1.0f);
        hs->hash_block(x.data() + s * l, n, k, s, plain.data());
        hs->hash_block_projected(x.data() + s * l, n, k, s, rows_keys.data(), p_rows.data(), n + 1);
        hs->hash_block_kmajor_projected(xt.data() + s * l * n, n, n, s, kmajor_keys.data(), p_kmajor.data(), n + 1);
        std::vector<float> p_only(h * (n + 1), -1.0f);
        hs->project_block_kmajor(xt.data() + s * l * n, n, n, s, p_only.data(), n + 1);
        CHECK(p_only == p_kmajor);
        CHECK(rows_keys == plain);
        CHECK(kmajor_keys == plain);
        double worst = 0.0;
        for (int64_t q = 0; q < h; ++q) {
          for (int64_t i = 0; i < n; ++i) {
            double dot = 0.0;
            for (int64_t j = 0; j < len; ++j) dot += double(x[i * k + s * l + j]) * r[j * h + q];
            worst = std::max({worst, std::abs(dot - p_rows[q * (n + 1) + i]), std::abs(dot - p_kmajor[q * (n + 1) + i])});
          }
          CHECK(p_rows[q * (n + 1) + n] == -1.0f);  // nothing written past the rows
        }
        CHECK(worst < 1e-4);
      }
    }
  }
}
