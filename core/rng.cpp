#include "core/rng.h"

#include <cmath>

namespace deja::core {

Rng::Rng(uint64_t seed, uint64_t stream) {
  state_.state = 0;
  state_.inc = (stream << 1u) | 1u;
  next_u32();
  state_.state += seed;
  next_u32();
}

uint32_t Rng::next_u32() {
  uint64_t old = state_.state;
  state_.state = old * 6364136223846793005ULL + state_.inc;
  uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = static_cast<uint32_t>(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float Rng::uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }

float Rng::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

float Rng::normal(float mean, float stddev) {
  float u1 = uniform();
  float u2 = uniform();
  if (u1 < 1e-12f) u1 = 1e-12f;
  float r = std::sqrt(-2.0f * std::log(u1));
  return mean + stddev * r * std::cos(6.28318530717958647692f * u2);
}

uint32_t Rng::below(uint32_t n) {
  if (n == 0) return 0;
  uint32_t threshold = (-n) % n;  // rejection zone for an unbiased result
  for (;;) {
    uint32_t r = next_u32();
    if (r >= threshold) return r % n;
  }
}

}  // namespace deja::core
