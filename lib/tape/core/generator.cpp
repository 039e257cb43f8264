#include "tape/core/generator.hpp"

#include <cmath>

namespace tape {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Generator& Generator::operator=(const Generator& other) {
  if (this != &other) set_state(other.state());
  return *this;
}

void Generator::seed_unlocked(uint64_t seed) {
  for (auto& w : st_.s) w = splitmix64(seed);
  st_.has_spare = false;
  st_.spare = 0.f;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Generator::next_unlocked() {
  auto& s = st_.s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float Generator::normal_unlocked() {
  if (st_.has_spare) {
    st_.has_spare = false;
    return st_.spare;
  }
  // Box–Muller in double for accuracy; u1 in (0, 1] so log is finite.
  double u1 = (double(next_unlocked() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = double(next_unlocked() >> 11) * (1.0 / 9007199254740992.0);
  double r = std::sqrt(-2.0 * std::log(u1));
  st_.spare = float(r * std::sin(2 * M_PI * u2));
  st_.has_spare = true;
  return float(r * std::cos(2 * M_PI * u2));
}

// Note: like PyTorch's CPU generator, a Generator carries a mutex. Each call
// takes it, so the default generator is safe from several threads; bulk fills
// (randn, rand, init, dropout masks) take it once, not once per element.
void Generator::seed_(uint64_t seed) {
  std::lock_guard lock(mutex_);
  seed_unlocked(seed);
}

uint64_t Generator::next_u64() {
  std::lock_guard lock(mutex_);
  return next_unlocked();
}

float Generator::uniform() {
  std::lock_guard lock(mutex_);
  return uniform_unlocked();
}

float Generator::normal() {
  std::lock_guard lock(mutex_);
  return normal_unlocked();
}

uint64_t Generator::below(uint64_t n) {
  // Lemire's nearly-divisionless method would be faster; rejection keeps it unbiased and simple.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::lock_guard lock(mutex_);
  uint64_t x;
  do x = next_unlocked();
  while (x >= limit);
  return x % n;
}

void Generator::fill_uniform(float* p, int64_t n, float lo, float width) {
  std::lock_guard lock(mutex_);
  for (int64_t i = 0; i < n; ++i) p[i] = lo + width * uniform_unlocked();
}

void Generator::fill_normal(float* p, int64_t n, float mean, float std) {
  std::lock_guard lock(mutex_);
  for (int64_t i = 0; i < n; ++i) p[i] = mean + std * normal_unlocked();
}

Generator::State Generator::state() const {
  std::lock_guard lock(mutex_);
  return st_;
}

void Generator::set_state(const State& s) {
  std::lock_guard lock(mutex_);
  st_ = s;
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().seed_(seed); }

}  // namespace tape
