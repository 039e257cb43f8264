#pragma once
/// \file Internal to tape_vision: float image planes and the filters the digit
/// finder and the page generator share.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tape/data/image.hpp"

namespace tape::vision::detail {

/// A float image plane (one channel), row-major.
struct Plane {
  int w = 0, h = 0;
  std::vector<float> v;
  Plane() = default;
  Plane(int width, int height, float fill = 0.f) : w(width), h(height), v(size_t(width) * height, fill) {}
  float& at(int x, int y) { return v[size_t(y) * w + x]; }
  float at(int x, int y) const { return v[size_t(y) * w + x]; }
};

struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // x1, y1 exclusive
  int w() const { return x1 - x0; }
  int h() const { return y1 - y0; }
  int64_t area() const { return int64_t(w()) * h(); }
  void add(const Rect& o) {
    x0 = std::min(x0, o.x0); y0 = std::min(y0, o.y0);
    x1 = std::max(x1, o.x1); y1 = std::max(y1, o.y1);
  }
};

inline float clamp01(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }

/// Luma in [0, 1].
Plane grey_plane(const data::Image& img);
/// Mean over the (2r+1)² window clipped to the image (summed-area table).
Plane box_blur(const Plane& p, int r);
/// Separable [1 2 1]/4 smoothing (edges replicated).
Plane smooth121(const Plane& p);
/// Separable square max/min filter of radius r; the output grows by `grow` px on
/// every side (windows clipped to the input) or, for negative `grow`, shrinks.
Plane extreme_filter(const Plane& p, int r, bool take_max, int grow = 0);
/// Morphological closing (max then min) of radius r.
Plane closing(const Plane& p, int r);
/// Separable gaussian blur of std-dev `sigma` px (kernel cut at 3 sigma, edges
/// replicated); sigma <= 0 returns the plane unchanged.
Plane gaussian_blur(const Plane& p, float sigma);

}  // namespace tape::vision::detail
