#pragma once
/// \file Random numbers: a small, fast, seedable generator (xoshiro256**).
#include <array>
#include <cstdint>

namespace tape {

/// Deterministic PRNG. Same seed → same sequence on every machine and run.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { seed_(seed); }
  void seed_(uint64_t seed);
  uint64_t next_u64();
  float uniform();         ///< [0, 1)
  float normal();          ///< N(0, 1) (Box–Muller, the spare value is kept)
  uint64_t below(uint64_t n);  ///< uniform integer in [0, n)

  /// Full state, for checkpoints.
  struct State {
    std::array<uint64_t, 4> s{};
    bool has_spare = false;
    float spare = 0.f;
  };
  State state() const { return st_; }
  void set_state(const State& s) { st_ = s; }

 private:
  State st_;
};

/// The global generator behind randn/rand/dropout/init.
Generator& default_generator();
/// Seeds the global generator.
void manual_seed(uint64_t seed);

}  // namespace tape
