// Seeded random numbers, one generator per purpose (init, data order, dropout,
// hashing...), so a run is reproducible from its seed and a resumed run
// continues each stream. PCG32 (O'Neill): 64-bit state, 64-bit stream selector;
// its whole state is two integers, which checkpoints store.
#pragma once

#include <cstdint>

namespace deja::core {

class Rng {
 public:
  struct State {
    uint64_t state = 0, inc = 1;
  };

  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);
  uint32_t next_u32();
  float uniform();                        // [0, 1)
  float uniform(float lo, float hi);      // [lo, hi)
  float normal(float mean = 0.0f, float stddev = 1.0f);  // Box-Muller, no cached spare
  uint32_t below(uint32_t n);             // uniform integer in [0, n), unbiased
  State state() const { return state_; }
  void set_state(State s) { state_ = s; }

 private:
  State state_;
};

// Stream ids: the same seed gives independent streams per purpose.
enum class RngPurpose : uint64_t { Init = 1, Data = 2, Dropout = 3, Hash = 4, Augment = 5, Calibrate = 6, Sample = 7 };
inline Rng make_rng(uint64_t seed, RngPurpose purpose, uint64_t sub = 0) {
  return Rng(seed, static_cast<uint64_t>(purpose) * 1000003ULL + sub);
}

}  // namespace deja::core
