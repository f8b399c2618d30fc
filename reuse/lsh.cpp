// The three hash families of lsh.h. The hot loop computes a sub-vector's H
// projections with the padded width HP (8, 16 or 32) fixed at compile time, so
// the inner loop is one or two vector FMAs per element of x. With AVX-512,
// qproj hashes 16 rows at once instead (one row per lane, two 16-row slabs
// per pass where it can, see project_slabs): the default family is the one on the
// hot path.
#include "reuse/lsh.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define DEJA_QPROJ_AVX512 1
#endif

#include "core/blas.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/serial_blas.h"
#include "core/symmetric_eigen.h"
#include "core/transpose.h"

namespace deja::reuse {

namespace {

// The splitmix64 finaliser: spreads a linear combination's bits over the key.
inline uint64_t finalise(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Eight float / int lanes (GCC vector extensions: AVX2/AVX-512 code with
// -march=native, plain code elsewhere).
typedef float V8f __attribute__((vector_size(32), aligned(4)));
typedef int32_t V8i __attribute__((vector_size(32), aligned(4)));
typedef uint32_t V8u __attribute__((vector_size(32), aligned(4)));

// p[h] = sum_j x[j] * r[j][h] for h < HP (HP/8 vectors); returns whether any
// x[j] != 0 and the squared norm.
template <int HP>
inline bool project(const float* x, int64_t len, const float* r, V8f* p, float& squared) {
  V8f acc[HP / 8] = {};
  float ss = 0.0f;
  uint32_t bits = 0;  // OR of the raw bits: zero (ignoring signs) iff all x[j] == 0
  for (int64_t j = 0; j < len; ++j) {
    const float v = x[j];
    bits |= std::bit_cast<uint32_t>(v);
    ss += v * v;
    const V8f* rj = reinterpret_cast<const V8f*>(r + j * HP);
    for (int q = 0; q < HP / 8; ++q) acc[q] += v * rj[q];
  }
  for (int q = 0; q < HP / 8; ++q) p[q] = acc[q];
  squared = ss;
  return (bits & 0x7fffffffu) != 0;
}

template <int HP>
inline uint64_t sign_bits(const V8f* p, int h) {
  uint64_t bits = 0;
  for (int q = 0; q < HP / 8; ++q) {
    const V8i ge = p[q] >= 0.0f;  // -1 where true
    for (int t = 0; t < 8; ++t) bits |= static_cast<uint64_t>(ge[t] & 1) << (q * 8 + t);
  }
  return h >= 64 ? bits : bits & ((1ULL << h) - 1);
}

class SignHasher final : public Hasher {
 public:
  using Hasher::Hasher;
  void hash_block(const float* x, int64_t rows, int64_t ldx, int64_t block,
                  uint64_t* keys) const override {
    switch (hp_) {
      case 8: run<8>(x, rows, ldx, block, keys); break;
      case 16: run<16>(x, rows, ldx, block, keys); break;
      default: run<32>(x, rows, ldx, block, keys); break;
    }
  }

 private:
  template <int HP>
  void run(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys) const {
    const int64_t len = block_width(block);
    const int h = static_cast<int>(h_);
    V8f p[HP / 8];
    for (int64_t i = 0; i < rows; ++i) {
      float ss;
      if (!project<HP>(x + i * ldx, len, block_projections(block), p, ss)) {
        keys[i] = kZeroKey;
        continue;
      }
      keys[i] = sign_bits<HP>(p, h) | (1ULL << 32);  // never kZeroKey
    }
  }
};

class SignNormHasher final : public Hasher {
 public:
  using Hasher::Hasher;
  void hash_block(const float* x, int64_t rows, int64_t ldx, int64_t block,
                  uint64_t* keys) const override {
    switch (hp_) {
      case 8: run<8>(x, rows, ldx, block, keys); break;
      case 16: run<16>(x, rows, ldx, block, keys); break;
      default: run<32>(x, rows, ldx, block, keys); break;
    }
  }

 private:
  template <int HP>
  void run(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys) const {
    const int64_t len = block_width(block);
    const int h = static_cast<int>(h_);
    // bucket = floor(log2(|x|) / width) = floor(log2(|x|^2) * 0.5 / width)
    const double scale = 0.5 / relative_width_;
    V8f p[HP / 8];
    for (int64_t i = 0; i < rows; ++i) {
      float ss;
      if (!project<HP>(x + i * ldx, len, block_projections(block), p, ss)) {
        keys[i] = kZeroKey;
        continue;
      }
      const uint64_t bits = sign_bits<HP>(p, h);
      // Denormal-tiny norms still get a finite bucket; offset keeps it positive.
      const int64_t bucket = static_cast<int64_t>(std::floor(std::log2(std::max(ss, 1e-38f)) * scale));
      keys[i] = bits | (static_cast<uint64_t>(bucket + (1 << 20)) << 32);
    }
  }
};

class QprojHasher final : public Hasher {
 public:
  QprojHasher(const ReuseSettings& settings, int64_t k) : Hasher(settings, k) {
    auto rng = core::make_rng(settings.seed, core::RngPurpose::Hash, 1);
    mult_.assign(64, 0);
    for (int64_t q = 0; q < h_; ++q) {
      mult_[q] = rng.next_u32() | 1u;
      mult_[32 + q] = rng.next_u32() | 1u;
    }
    b_.resize(32, 0.0f);  // padded lanes: multiplied by zero
  }
  void hash_block(const float* x, int64_t rows, int64_t ldx, int64_t block,
                  uint64_t* keys) const override {
    switch (hp_) {
      case 8: run<8>(x, rows, ldx, block, keys); break;
      case 16: run<16>(x, rows, ldx, block, keys); break;
      default: run<32>(x, rows, ldx, block, keys); break;
    }
  }
#ifdef DEJA_QPROJ_AVX512
  void hash_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block,
                         uint64_t* keys) const override {
    require_prepared();
    run16<true>(xt, rows, ldt, block, keys);
  }
  void hash_block_kmajor_projected(const float* xt, int64_t rows, int64_t ldt, int64_t block, uint64_t* keys,
                                   float* proj, int64_t ldproj) const override {
    require_prepared();
    run16<true>(xt, rows, ldt, block, keys, proj, ldproj);
  }
  void project_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block, float* proj,
                           int64_t ldproj) const override {
    require_prepared();
    run16<true>(xt, rows, ldt, block, nullptr, proj, ldproj);
  }
  void hash_block_projected(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys,
                            float* proj, int64_t ldproj) const override {
    require_prepared();
    if (ldx > (std::numeric_limits<int32_t>::max() - k_) / 16)
      return Hasher::hash_block_projected(x, rows, ldx, block, keys, proj, ldproj);
    run16<false>(x, rows, ldx, block, keys, proj, ldproj);
  }
#endif

 private:
  void require_prepared() const {
    if (width_.empty()) throw std::logic_error("qproj hasher: prepare() was not called");
  }
#ifdef DEJA_QPROJ_AVX512
// GCC 12 flags the intrinsics' deliberately undefined pass-through operands.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
  // 16 rows per slab, one row per lane: x's column j of a slab's 16 rows is
  // gathered into one register, and every projection is 16-lane FMAs with a
  // broadcast R entry, so quantisation and the two linear key hashes are
  // vertical too (no horizontal sums, no per-element broadcasts of x). The
  // integer arithmetic is the scalar path's, so keys are identical whenever
  // the projections round the same way. The last slab's tail rows are masked
  // lanes. With two slabs per pass each broadcast R entry feeds two FMAs
  // (one slab was bound by its broadcast loads); a lane's arithmetic does
  // not depend on the slab count, so neither do the keys.
  // KMajor: a slab's column j is one contiguous load at x + j * ldx (the
  // tile a RowSource made column-major), the same values as the gather.
  // out[s * HB + q]: projection h0 + q of slab s; bits[s]: OR of slab s's x.
  template <int HB, int Slabs, bool KMajor>
  static void project_slabs(const float* x, __m512i idx, int64_t ldx, __mmask16 last_mask, int64_t len,
                      const float* r, int64_t hp, int64_t h0, __m512* out, __m512i* bits) {
    __m512 acc[Slabs * HB];
    for (int q = 0; q < Slabs * HB; ++q) acc[q] = _mm512_setzero_ps();
    __m512i orbits[Slabs];
    for (int s = 0; s < Slabs; ++s) orbits[s] = _mm512_setzero_si512();
    for (int64_t j = 0; j < len; ++j) {
      __m512 xj[Slabs];
      for (int s = 0; s < Slabs; ++s) {
        const __mmask16 mask = s == Slabs - 1 ? last_mask : static_cast<__mmask16>(0xffff);
        const float* xs = KMajor ? x + 16 * s : x + 16 * s * ldx;
        xj[s] = KMajor ? _mm512_maskz_loadu_ps(mask, xs + j * ldx)
                       : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, xs + j, 4);
        orbits[s] = _mm512_or_si512(orbits[s], _mm512_castps_si512(xj[s]));
      }
      const float* rj = r + j * hp + h0;
      for (int q = 0; q < HB; ++q) {
        const __m512 rq = _mm512_set1_ps(rj[q]);
        for (int s = 0; s < Slabs; ++s) acc[s * HB + q] = _mm512_fmadd_ps(xj[s], rq, acc[s * HB + q]);
      }
    }
    for (int q = 0; q < Slabs * HB; ++q) out[q] = acc[q];
    for (int s = 0; s < Slabs; ++s) bits[s] = orbits[s];
  }

  template <int HB>
  void quantise16(const __m512* p, int64_t h0, float inv_w, __m512i& z1, __m512i& z2) const {
    const __m512 w = _mm512_set1_ps(inv_w);
    for (int q = 0; q < HB; ++q) {
      const int64_t h = h0 + q;
      if (h >= h_) break;
      const __m512 t = _mm512_add_ps(_mm512_mul_ps(p[q], w), _mm512_set1_ps(b_[h]));
      const __m512i qi = _mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
      z1 = _mm512_add_epi32(z1, _mm512_mullo_epi32(qi, _mm512_set1_epi32(static_cast<int>(mult_[h]))));
      z2 = _mm512_add_epi32(z2, _mm512_mullo_epi32(qi, _mm512_set1_epi32(static_cast<int>(mult_[32 + h]))));
    }
  }

  static __m512i finalise8(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                           _mm512_set1_epi64(static_cast<long long>(0xbf58476d1ce4e5b9ULL)));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                           _mm512_set1_epi64(static_cast<long long>(0x94d049bb133111ebULL)));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
  }

  // keys[0, n) of 16 rows from their two linear hashes (z1, z2) and the OR
  // of their elements' bits (all-zero rows get kZeroKey). Full 8-key halves
  // are plain stores (masked stores are slow on AMD's AVX-512 cores).
  static void store_keys16(__m512i z1, __m512i z2, __m512i bits, __mmask16 rows_mask, uint64_t* keys) {
    const __m512i golden = _mm512_set1_epi64(static_cast<long long>(0x9e3779b97f4a7c15ULL));
    const __mmask16 nonzero = _mm512_test_epi32_mask(bits, _mm512_set1_epi32(0x7fffffff));
    for (int64_t half = 0; half < 2; ++half) {
      const __m256i a = half ? _mm512_extracti64x4_epi64(z1, 1) : _mm512_castsi512_si256(z1);
      const __m256i b = half ? _mm512_extracti64x4_epi64(z2, 1) : _mm512_castsi512_si256(z2);
      __m512i key = _mm512_or_si512(_mm512_slli_epi64(_mm512_cvtepu32_epi64(a), 32),
                                    _mm512_cvtepu32_epi64(b));
      key = finalise8(_mm512_add_epi64(key, golden));
      const __mmask8 is_zero_key = _mm512_cmpeq_epi64_mask(key, _mm512_setzero_si512());
      key = _mm512_mask_mov_epi64(key, is_zero_key, _mm512_set1_epi64(1));
      const auto nz = static_cast<__mmask8>(nonzero >> (8 * half));
      key = _mm512_maskz_mov_epi64(nz, key);  // all-zero sub-vectors: kZeroKey
      const auto store = static_cast<__mmask8>(rows_mask >> (8 * half));
      if (store == 0xff) _mm512_storeu_si512(keys + 8 * half, key);
      else if (store) _mm512_mask_storeu_epi64(keys + 8 * half, store, key);
    }
  }

  // proj (when not null): the projections of row r at proj[q * ldproj + r];
  // keys null: projections only.
  template <bool KMajor>
  void run16(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys, float* proj = nullptr,
             int64_t ldproj = 0) const {
    // 16 rows' projection q (one per lane) to proj, rows i ... i + 15.
    auto store_projections = [&](const __m512* p, int64_t h0, int64_t hb, int64_t i, __mmask16 mask) {
      for (int64_t q = 0; q < hb && h0 + q < h_; ++q) {
        float* dst = proj + (h0 + q) * ldproj + i;
        if (mask == 0xffff) _mm512_storeu_ps(dst, p[q]);
        else _mm512_mask_storeu_ps(dst, mask, p[q]);
      }
    };
    const int64_t len = block_width(block);
    const float inv_w = 1.0f / width_[block];
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int>(ldx)));
    for (int64_t i = 0; i < rows;) {
      const float* xi = KMajor ? x + i : x + i * ldx;
      if (rows - i >= 32) {  // two slabs, eight directions per pass over their columns
        __m512 p[16];
        __m512i bits[2], z1[2], z2[2];
        for (int64_t slab = 0; slab < 2; ++slab) z1[slab] = z2[slab] = _mm512_setzero_si512();
        // HB directions from h0 on; a last group of at most 4 (H 12, 20, ...)
        // takes a half-width pass instead of computing padding directions.
        auto pass = [&]<int HB>(int64_t h0) {
          project_slabs<HB, 2, KMajor>(xi, idx, ldx, 0xffff, len, block_projections(block), hp_, h0, p, bits);
          for (int64_t slab = 0; slab < 2; ++slab) {
            if (proj) store_projections(p + HB * slab, h0, HB, i + 16 * slab, 0xffff);
            if (keys) quantise16<HB>(p + HB * slab, h0, inv_w, z1[slab], z2[slab]);
          }
        };
        for (int64_t h0 = 0; h0 < h_; h0 += 8) {
          if (h_ - h0 <= 4)
            pass.template operator()<4>(h0);
          else
            pass.template operator()<8>(h0);
        }
        if (keys)
          for (int64_t slab = 0; slab < 2; ++slab)
            store_keys16(z1[slab], z2[slab], bits[slab], 0xffff, keys + i + 16 * slab);
        i += 32;
        continue;
      }
      const int64_t n = std::min<int64_t>(16, rows - i);
      const __mmask16 rows_mask = static_cast<__mmask16>((1u << n) - 1u);
      __m512i z1 = _mm512_setzero_si512(), z2 = _mm512_setzero_si512(), bits = _mm512_setzero_si512();
      __m512 p[16];
      if (hp_ == 8) {
        project_slabs<8, 1, KMajor>(xi, idx, ldx, rows_mask, len, block_projections(block), hp_, 0, p, &bits);
        if (proj) store_projections(p, 0, 8, i, rows_mask);
        if (keys) quantise16<8>(p, 0, inv_w, z1, z2);
      } else {
        for (int64_t h0 = 0; h0 < hp_ && h0 < h_; h0 += 16) {
          project_slabs<16, 1, KMajor>(xi, idx, ldx, rows_mask, len, block_projections(block), hp_, h0, p, &bits);
          if (proj) store_projections(p, h0, 16, i, rows_mask);
          if (keys) quantise16<16>(p, h0, inv_w, z1, z2);
        }
      }
      if (keys) store_keys16(z1, z2, bits, rows_mask, keys + i);
      i += 16;
    }
  }
#pragma GCC diagnostic pop
#endif

  template <int HP>
  void run(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys) const {
    require_prepared();
#ifdef DEJA_QPROJ_AVX512
    if (ldx <= (std::numeric_limits<int32_t>::max() - k_) / 16) return run16<false>(x, rows, ldx, block, keys);
#endif
    const int64_t len = block_width(block);
    const float inv_w = 1.0f / width_[block];
    const V8f* b = reinterpret_cast<const V8f*>(b_.data());
    const V8u* m1 = reinterpret_cast<const V8u*>(mult_.data());
    const V8u* m2 = reinterpret_cast<const V8u*>(mult_.data() + 32);
    V8f p[HP / 8];
    for (int64_t i = 0; i < rows; ++i) {
      float ss;
      if (!project<HP>(x + i * ldx, len, block_projections(block), p, ss)) {
        keys[i] = kZeroKey;
        continue;
      }
      // q_h = floor(p_h / w + b_h); key = mix of two independent 32-bit
      // linear hashes sum_h q_h * m_h with random odd multipliers (zero past
      // H): two different small-integer tuples collide with probability
      // about 2^-64.
      V8u z1 = {}, z2 = {};
      for (int c = 0; c < HP / 8; ++c) {
        const V8f t = p[c] * inv_w + b[c];
        V8i q = __builtin_convertvector(t, V8i);                 // truncates toward zero
        q += (__builtin_convertvector(q, V8f) > t);              // -1 where that rounded up
        z1 += reinterpret_cast<V8u&>(q) * m1[c];
        z2 += reinterpret_cast<V8u&>(q) * m2[c];
      }
      uint32_t h1 = 0, h2 = 0;
      for (int t = 0; t < 8; ++t) {
        h1 += z1[t];
        h2 += z2[t];
      }
      const uint64_t key = finalise((static_cast<uint64_t>(h1) << 32 | h2) + 0x9e3779b97f4a7c15ULL);
      keys[i] = key == kZeroKey ? 1 : key;
    }
  }

  std::vector<uint32_t> mult_;  // [2][32]: two multiplier sets, zero past H
};

// Where sample run j of `runs` starts: inside the j-th of `runs` equal
// stretches of the batch, at the fractional part of (j + 1) x the golden
// ratio of the way in, on a multiple of run_rows (a run that straddles two
// output rows costs conv2d's tile maker a slower path). Runs at a fixed
// place in their stretch would alias with the images: at CifarNet conv2 a
// stretch is one image's 256 rows, and runs at its start read only the
// image's top output row (mostly border), which once biased the width low.
int64_t sample_run_start(int64_t j, int64_t runs, int64_t rows, int64_t run_rows) {
  const int64_t begin = j * rows / runs, end = (j + 1) * rows / runs;
  const double fraction = std::fmod(static_cast<double>(j + 1) * 0.6180339887498949, 1.0);
  const int64_t start = (begin + static_cast<int64_t>(fraction * static_cast<double>(end - begin))) / run_rows * run_rows;
  return std::max<int64_t>(0, std::min(start, rows - run_rows));
}

}  // namespace

Hasher::Hasher(const ReuseSettings& settings, int64_t k)
    : k_(k), l_(settings.L), h_(settings.H), blocks_(k > 0 ? (k + settings.L - 1) / settings.L : 0),
      per_block_(settings.hash == "pca") {
  settings.validate("reuse hasher");
  hp_ = h_ <= 8 ? 8 : h_ <= 16 ? 16 : 32;
  const bool unit = settings.hash == "qproj" || per_block_;
  relative_width_ = settings.width > 0.0 ? settings.width
                    : unit                ? kDefaultRelativeWidth
                                          : 1.0;
  auto rng = core::make_rng(settings.seed, core::RngPurpose::Hash, 0);
  r_.assign(static_cast<size_t>(l_ * hp_), 0.0f);
  for (int64_t j = 0; j < l_; ++j)
    for (int64_t h = 0; h < h_; ++h) r_[j * hp_ + h] = rng.normal();
  if (unit) {
    for (int64_t h = 0; h < h_; ++h) {
      double norm = 0.0;
      for (int64_t j = 0; j < l_; ++j) norm += double(r_[j * hp_ + h]) * r_[j * hp_ + h];
      const float inv = norm > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 1.0f;
      for (int64_t j = 0; j < l_; ++j) r_[j * hp_ + h] *= inv;
    }
    b_.resize(static_cast<size_t>(h_));
    for (auto& b : b_) b = rng.uniform();
  }
  if (per_block_) {  // every block starts from the random directions; prepare() fits its own
    std::vector<float> shared = std::move(r_);
    r_.clear();
    for (int64_t s = 0; s < blocks_; ++s) r_.insert(r_.end(), shared.begin(), shared.end());
  }
}

int64_t Hasher::block_width(int64_t block) const {
  return std::min(l_, k_ - block * l_);
}

std::vector<float> Hasher::projections(int64_t block) const {
  if (block < 0 || block >= std::max<int64_t>(blocks_, 1))
    throw std::out_of_range("Hasher::projections: block " + std::to_string(block) + " of " +
                            std::to_string(blocks_));
  const float* r = block_projections(block);
  std::vector<float> out(static_cast<size_t>(l_ * h_));
  for (int64_t j = 0; j < l_; ++j)
    for (int64_t h = 0; h < h_; ++h) out[j * h_ + h] = r[j * hp_ + h];
  return out;
}

void Hasher::project_plain(const float* x, int64_t rows, int64_t row_step, int64_t col_step, int64_t block,
                           float* proj, int64_t ldproj) const {
  const float* r = block_projections(block);
  const int64_t len = block_width(block);
  for (int64_t q = 0; q < h_; ++q)
    for (int64_t i = 0; i < rows; ++i) {
      float a = 0.0f;
      for (int64_t j = 0; j < len; ++j) a += x[i * row_step + j * col_step] * r[j * hp_ + q];
      proj[q * ldproj + i] = a;
    }
}

void Hasher::hash_block_projected(const float* x, int64_t rows, int64_t ldx, int64_t block, uint64_t* keys,
                                  float* proj, int64_t ldproj) const {
  hash_block(x, rows, ldx, block, keys);
  project_plain(x, rows, ldx, 1, block, proj, ldproj);
}

void Hasher::project_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block, float* proj,
                                  int64_t ldproj) const {
  project_plain(xt, rows, 1, ldt, block, proj, ldproj);
}

void Hasher::hash_block_kmajor_projected(const float* xt, int64_t rows, int64_t ldt, int64_t block,
                                         uint64_t* keys, float* proj, int64_t ldproj) const {
  hash_block_kmajor(xt, rows, ldt, block, keys);
  project_block_kmajor(xt, rows, ldt, block, proj, ldproj);
}

void Hasher::hash_block_kmajor(const float* xt, int64_t rows, int64_t ldt, int64_t block,
                               uint64_t* keys) const {
  thread_local std::vector<float> rows_buf;
  const int64_t len = block_width(block);
  rows_buf.resize(static_cast<size_t>(rows * len));
  core::transpose(xt, len, rows, ldt, rows_buf.data(), len);
  hash_block(rows_buf.data(), rows, len, block, keys);
}

void Hasher::prepare(const float* x, int64_t rows, int64_t ldx, bool freeze) {
  prepare(core::MatrixRows(x, rows, k_, ldx), freeze);
}

void Hasher::prepare(const core::RowSource& x, bool freeze) {
  if (freeze && static_cast<int64_t>(width_.size()) == blocks_) return;
  // Mean squared norm of the non-zero sub-vectors over a sample of at most
  // kRuns runs of kRunRows consecutive rows spread over the batch
  // (sample_run_start)
  // (short runs rather than single rows: a conv layer's rows are made tile
  // by tile from the images, and 16 rows are one output row of CifarNet's
  // conv2): cheap, deterministic for any thread count, and tracks the
  // activation scale as training moves it.
  constexpr int64_t kRuns = 128, kRunRows = 16;
  const int64_t rows = x.rows();
  const int64_t runs = std::min<int64_t>(kRuns, (rows + kRunRows - 1) / kRunRows);
  std::vector<double> sums(static_cast<size_t>(runs * blocks_), 0.0);
  std::vector<int64_t> counts(static_cast<size_t>(runs * blocks_), 0);
  std::vector<int64_t> run_start(static_cast<size_t>(runs)), run_rows(static_cast<size_t>(runs));
  for (int64_t j = 0; j < runs; ++j) {
    run_start[j] = sample_run_start(j, runs, rows, kRunRows);
    run_rows[j] = std::min(kRunRows, rows - run_start[j]);
  }
  // Each run is taken column-major (conv2d makes that directly; a matrix
  // in memory is copied and transposed), so a column is one load of the
  // run's rows and each row's squared norm a lane of one vector: same
  // arithmetic order for either source, no per-row reductions.
  const int64_t block_area = l_ * l_;
  // Run j's squared norms of block s, from its K-major columns at tile (ld apart).
  auto tally = [&](const float* tile, int64_t ld, int64_t j, int64_t s, int64_t count) {
    float norm2[kRunRows] = {};
    const float* column = tile;
    for (int64_t q = 0; q < block_width(s); ++q, column += ld)
      for (int64_t i = 0; i < kRunRows; ++i) norm2[i] += column[i] * column[i];
    for (int64_t i = 0; i < count; ++i)
      if (norm2[i] > 0.0f) {
        sums[j * blocks_ + s] += norm2[i];
        ++counts[j * blocks_ + s];
      }
  };
  if (per_block_) {
    // pca, a block per task: all runs side by side, [len][runs x kRunRows]
    // (400 KB at CifarNet conv2: in L2), then one syrk for the sum over the
    // sample of x x^T (the upper triangle of A A^T). One call per block, not
    // one per block and chunk of runs: the small calls' set-up cost more
    // than their arithmetic (docs/perf-notes.md, Round 20). Each block's sum
    // is made by one thread in one order: deterministic for any thread count.
    std::vector<float> moments(static_cast<size_t>(blocks_ * block_area));
    core::SerialBlasScope serial;  // one small syrk (and eigen solve) per block and thread
    // One cache line past the sample: columns 8 KB apart would all fall in one L1 set.
    const int64_t ld = runs * kRunRows + 16;
    constexpr int64_t kPrefetchAhead = 4;  // runs: their misses overlap the fills before them
    core::parallel_for(blocks_, [&](int64_t s0, int64_t s1) {
      // Zeroed once: every block's fills write the same rows, so the rows past a
      // short run (a batch of fewer than kRunRows rows) stay zero for syrk.
      std::vector<float> buffer(static_cast<size_t>(l_ * ld));
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t len = block_width(s), c0 = s * l_, c1 = c0 + len;
        for (int64_t j = 0; j < std::min(kPrefetchAhead, runs); ++j) x.prefetch(run_start[j], run_rows[j], c0, c1);
        for (int64_t j = 0; j < runs; ++j) {
          if (j + kPrefetchAhead < runs)
            x.prefetch(run_start[j + kPrefetchAhead], run_rows[j + kPrefetchAhead], c0, c1);
          float* tile = buffer.data() + j * kRunRows;
          x.fill_kmajor(run_start[j], run_rows[j], c0, c1, tile, ld);
          tally(tile, ld, j, s, run_rows[j]);
        }
        core::syrk_upper(len, runs * kRunRows, 1.0f, buffer.data(), ld, 0.0f, moments.data() + s * block_area, len);
      }
    });
    fit_principal_directions(moments);
  } else {
    // The width alone: a run's tile at a time, all blocks, in a fixed
    // number of chunks of runs (each run's tallies are its own).
    const int64_t chunks = std::min<int64_t>(8, runs);
    core::parallel_for(chunks, [&](int64_t c0, int64_t c1) {
      std::vector<float> buffer(static_cast<size_t>(kRunRows * k_));
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t j = c * runs / chunks; j < (c + 1) * runs / chunks; ++j) {
          x.fill_kmajor(run_start[j], run_rows[j], 0, k_, buffer.data(), kRunRows);
          for (int64_t s = 0; s < blocks_; ++s)
            tally(buffer.data() + s * l_ * kRunRows, kRunRows, j, s, run_rows[j]);
        }
    });
  }
  width_.assign(static_cast<size_t>(blocks_), static_cast<float>(relative_width_));
  for (int64_t s = 0; s < blocks_; ++s) {
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t j = 0; j < runs; ++j) {
      sum += sums[j * blocks_ + s];
      count += counts[j * blocks_ + s];
    }
    if (count > 0) width_[s] = static_cast<float>(relative_width_ * std::sqrt(sum / count));
  }
}

void Hasher::fit_principal_directions(const std::vector<float>& moments) {
  constexpr int kRefineSteps = 3;  // the test compares against the full solve
  const int64_t block_area = l_ * l_;
  fitted_.resize(static_cast<size_t>(blocks_), 0);
  core::parallel_for(blocks_, [&](int64_t s0, int64_t s1) {
    std::vector<double> second(static_cast<size_t>(block_area));
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t len = block_width(s);
      double trace = 0.0;
      const float* m = moments.data() + s * block_area;  // the upper half (syrk), mirrored below
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = i; j < len; ++j) second[i * len + j] = m[i * len + j];
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < i; ++j) second[i * len + j] = second[j * len + i];
      for (int64_t j = 0; j < len; ++j) trace += second[j * len + j];
      if (!(trace > 0.0)) continue;  // no non-zero sub-vector in the sample: keep the directions
      const int64_t count = std::min(h_, len);
      float* r = r_.data() + s * l_ * hp_;
      std::vector<double> directions;  // [count][len]
      try {
        if (fitted_[s]) {  // from the last batch's directions (column e of r)
          std::vector<double> start(static_cast<size_t>(count * len));
          for (int64_t e = 0; e < count; ++e)
            for (int64_t j = 0; j < len; ++j) start[e * len + j] = r[j * hp_ + e];
          directions = core::refine_top_eigenvectors(second.data(), len, start, count, kRefineSteps).vectors;
        } else {
          directions = core::top_eigenvectors(second.data(), len, count).vectors;
        }
      } catch (const std::runtime_error&) {
        continue;  // LAPACK did not converge: the previous directions still hash consistently
      }
      // Directions past the block's rank (H > len) project to zero: a constant
      // coordinate of the key, as a padded lane is.
      std::fill(r, r + l_ * hp_, 0.0f);
      for (int64_t e = 0; e < count; ++e)
        for (int64_t j = 0; j < len; ++j) r[j * hp_ + e] = static_cast<float>(directions[e * len + j]);
      fitted_[s] = 1;
    }
  });
}

std::unique_ptr<Hasher> make_hasher(const ReuseSettings& settings, int64_t k) {
  if (settings.hash == "sign") return std::make_unique<SignHasher>(settings, k);
  if (settings.hash == "qproj") return std::make_unique<QprojHasher>(settings, k);
  if (settings.hash == "signnorm") return std::make_unique<SignNormHasher>(settings, k);
  if (settings.hash == "pca") return std::make_unique<QprojHasher>(settings, k);
  throw std::invalid_argument("reuse: unknown hash family '" + settings.hash +
                              "' (expected sign, qproj, signnorm or pca)");
}

}  // namespace deja::reuse
