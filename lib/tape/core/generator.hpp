#pragma once
/// \file Random numbers: a small, fast, seedable generator (xoshiro256**).
#include <array>
#include <cstdint>
#include <mutex>

namespace tape {

/// Deterministic PRNG. Same seed → same sequence on every machine and run.
/// Thread-safe: every call takes the generator's lock, so two threads drawing
/// from one generator (the default one) each get whole draws of one sequence;
/// which thread gets which draw depends on timing — give each thread its own
/// Generator for reproducible results.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { seed_unlocked(seed); }
  Generator(const Generator& other) : st_(other.state()) {}
  Generator& operator=(const Generator& other);

  void seed_(uint64_t seed);
  uint64_t next_u64();
  float uniform();         ///< [0, 1)
  float normal();          ///< N(0, 1) (Box–Muller, the spare value is kept)
  uint64_t below(uint64_t n);  ///< uniform integer in [0, n)
  /// p[i] = lo + width·uniform() for n values, under one lock (the same values
  /// as n calls of uniform()).
  void fill_uniform(float* p, int64_t n, float lo = 0.f, float width = 1.f);
  /// p[i] = mean + std·normal() for n values, under one lock.
  void fill_normal(float* p, int64_t n, float mean = 0.f, float std = 1.f);

  /// Full state, for checkpoints.
  struct State {
    std::array<uint64_t, 4> s{};
    bool has_spare = false;
    float spare = 0.f;
  };
  State state() const;
  void set_state(const State& s);

 private:
  void seed_unlocked(uint64_t seed);
  uint64_t next_unlocked();
  float uniform_unlocked() { return float(next_unlocked() >> 40) * (1.0f / 16777216.0f); }
  float normal_unlocked();

  mutable std::mutex mutex_;
  State st_;
};

/// The global generator behind randn/rand/dropout/init.
Generator& default_generator();
/// Seeds the global generator.
void manual_seed(uint64_t seed);

}  // namespace tape
