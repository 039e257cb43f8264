#include "tape/core/generator.hpp"

#include <cmath>

namespace tape {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void Generator::seed_(uint64_t seed) {
  for (auto& w : st_.s) w = splitmix64(seed);
  st_.has_spare = false;
  st_.spare = 0.f;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Generator::next_u64() {
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

float Generator::uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }

float Generator::normal() {
  if (st_.has_spare) {
    st_.has_spare = false;
    return st_.spare;
  }
  // Box–Muller in double for accuracy; u1 in (0, 1] so log is finite.
  double u1 = (double(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = double(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  double r = std::sqrt(-2.0 * std::log(u1));
  st_.spare = float(r * std::sin(2 * M_PI * u2));
  st_.has_spare = true;
  return float(r * std::cos(2 * M_PI * u2));
}

uint64_t Generator::below(uint64_t n) {
  // Lemire's nearly-divisionless method would be faster; rejection keeps it unbiased and simple.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().seed_(seed); }

}  // namespace tape
