#include "tape/data/moons.hpp"

#include <cmath>
#include <numbers>
#include <utility>

namespace tape::data {

// Note: moon k is a half circle of radius 1 centred at (k, k/2), upper for even k
// and lower for odd k, so each moon's tip lies in the hollow of the next one.
// Moons 0 and 1 are exactly scikit-learn's; with three, the closest two moons
// (0 and 2) are 0.41 apart, which a small MLP separates at noise 0.1.
TensorDataset make_moons(int64_t n, float noise, uint64_t seed, int classes) {
  TAPE_CHECK(n > 0, "make_moons: n must be positive, got ", n);
  TAPE_CHECK(noise >= 0.f && std::isfinite(noise), "make_moons: noise must be >= 0, got ", noise);
  TAPE_CHECK(classes == 2 || classes == 3, "make_moons: classes must be 2 or 3, got ", classes);

  Tensor points = Tensor::empty({n, 2});
  Tensor labels = Tensor::empty({n}, Dtype::Int64);
  float* xy = points.data<float>();
  int64_t* y = labels.data<int64_t>();

  // Like scikit-learn, the first class gets the smaller share: sizes n/c, rounded up for later classes.
  int64_t i = 0;
  for (int k = 0; k < classes; ++k) {
    const int64_t count = n / classes + (k >= classes - n % classes ? 1 : 0);
    const double cx = k, cy = 0.5 * k, sign = k % 2 == 0 ? 1.0 : -1.0;
    for (int64_t j = 0; j < count; ++j, ++i) {
      const double t = count > 1 ? std::numbers::pi * double(j) / double(count - 1) : 0.0;
      xy[2 * i] = float(cx + sign * std::cos(t));
      xy[2 * i + 1] = float(cy + sign * std::sin(t));
      y[i] = k;
    }
  }

  Generator g(seed);
  for (int64_t r = n; r > 1; --r) {  // Fisher–Yates over whole samples
    const int64_t s = int64_t(g.below(uint64_t(r)));
    std::swap(xy[2 * (r - 1)], xy[2 * s]);
    std::swap(xy[2 * (r - 1) + 1], xy[2 * s + 1]);
    std::swap(y[r - 1], y[s]);
  }
  if (noise > 0.f)
    for (int64_t k = 0; k < 2 * n; ++k) xy[k] += noise * g.normal();
  return {points, labels};
}

}  // namespace tape::data
