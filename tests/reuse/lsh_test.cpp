// Hash families and clustering: determinism, r_c against a brute-force count
// of distinct keys computed from the projections by plain loops, magnitude
// awareness, and the reserved zero key.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

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
  auto r = h.projections();
  std::vector<int64_t> t;
  double norm2 = 0.0;
  for (int64_t j = 0; j < len; ++j) norm2 += double(v[j]) * v[j];
  for (int64_t q = 0; q < h.H(); ++q) {
    double p = 0.0;
    for (int64_t j = 0; j < len; ++j) p += double(v[j]) * r[j * h.H() + q];
    if (family == "qproj")
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
  for (std::string hash : {"sign", "qproj", "signnorm"}) {
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
    CHECK(h1->projections() != h3->projections());
  }
}

TEST_CASE("r_c equals a brute-force count of distinct keys") {
  const int64_t n = 700, k = 47, l = 9;  // L does not divide K
  Tensor x = redundant_rows(n, k, l, 2);
  for (std::string hash : {"sign", "qproj", "signnorm"}) {
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
  for (std::string hash : {"sign", "qproj", "signnorm"}) {
    CAPTURE(hash);
    auto h = reuse::make_hasher(settings(hash, l, 8), l);
    h->prepare(x.data(), 2 * n, l, false);
    int64_t separated = 0;
    for (int64_t i = 0; i < n; ++i)
      separated += h->key(x.data() + i * l, 0) != h->key(x.data() + (n + i) * l, 0);
    if (hash == "sign")
      CHECK(separated == 0);  // direction only
    else
      CHECK(separated == n);
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
  for (std::string hash : {"sign", "qproj", "signnorm"}) {
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
  for (int64_t h : {int64_t{8}, int64_t{12}}) {
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
