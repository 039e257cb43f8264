#include "tape_vision/plane.hpp"

#include <cmath>
#include <limits>

#include "tape/core/error.hpp"

namespace tape::vision::detail {
using data::Image;


/// Luma in [0, 1].
Plane grey_plane(const Image& img) {
  TAPE_CHECK(img.width > 0 && img.height > 0 && img.channels >= 1 && img.channels <= 4 &&
                 img.pixels.size() == size_t(img.width) * img.height * img.channels,
             "find_digits: bad image (", img.width, "x", img.height, "x", img.channels, ", ",
             img.pixels.size(), " bytes)");
  Plane g(img.width, img.height);
  const int c = img.channels;
  for (size_t i = 0; i < g.v.size(); ++i) {
    const uint8_t* p = img.pixels.data() + i * c;
    g.v[i] = (c >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : float(p[0])) / 255.f;
  }
  return g;
}

/// Mean over the (2r+1)² window clipped to the image (summed-area table).
Plane box_blur(const Plane& p, int r) {
  if (r <= 0) return p;
  const int w = p.w, h = p.h;
  std::vector<double> s(size_t(w + 1) * (h + 1), 0.0);
  for (int y = 0; y < h; ++y) {
    double row = 0;
    for (int x = 0; x < w; ++x) {
      row += p.at(x, y);
      s[size_t(y + 1) * (w + 1) + x + 1] = s[size_t(y) * (w + 1) + x + 1] + row;
    }
  }
  Plane out(w, h);
  for (int y = 0; y < h; ++y) {
    const int ya = std::max(0, y - r), yb = std::min(h, y + r + 1);
    for (int x = 0; x < w; ++x) {
      const int xa = std::max(0, x - r), xb = std::min(w, x + r + 1);
      const double sum = s[size_t(yb) * (w + 1) + xb] - s[size_t(ya) * (w + 1) + xb] -
                         s[size_t(yb) * (w + 1) + xa] + s[size_t(ya) * (w + 1) + xa];
      out.at(x, y) = float(sum / (double(yb - ya) * (xb - xa)));
    }
  }
  return out;
}

/// Separable [1 2 1]/4 smoothing (edges replicated).
Plane smooth121(const Plane& p) {
  Plane tmp(p.w, p.h), out(p.w, p.h);
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x)
      tmp.at(x, y) = 0.25f * p.at(std::max(0, x - 1), y) + 0.5f * p.at(x, y) + 0.25f * p.at(std::min(p.w - 1, x + 1), y);
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x)
      out.at(x, y) = 0.25f * tmp.at(x, std::max(0, y - 1)) + 0.5f * tmp.at(x, y) + 0.25f * tmp.at(x, std::min(p.h - 1, y + 1));
  return out;
}

namespace {
/// Running max (or min) of radius r over `n_in` slots of `width` floats (slot j at
/// in + j·in_stride): out slot i = extreme of in slots [i + offset − r, i + offset + r]
/// clipped to [0, n_in) — the window must meet the input. Van Herk / Gil-Werman: block
/// prefix and suffix extremes, three comparisons per value whatever r, and the inner
/// loops run along `width` contiguous floats (whole image rows for the vertical pass).
void van_herk(const float* in, ptrdiff_t in_stride, int n_in, float* out, ptrdiff_t out_stride, int n_out, int width,
              int offset, int r, bool take_max, std::vector<float>& buf) {
  const float neutral = take_max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  auto ext = [take_max](float a, float b) { return take_max ? std::max(a, b) : std::min(a, b); };
  const int k = 2 * r + 1;
  const int lo = std::min(0, offset - r), hi = std::max(n_in - 1, n_out - 1 + offset + r);
  const int len = (hi - lo + 1 + k - 1) / k * k;
  buf.resize(size_t(3) * len * width);
  float* pad = buf.data();
  float* pre = pad + size_t(len) * width;
  float* suf = pre + size_t(len) * width;
  for (int j = 0; j < len; ++j) {
    const int src = j + lo;
    float* dst = pad + size_t(j) * width;
    if (src >= 0 && src < n_in) std::copy_n(in + src * in_stride, width, dst);
    else std::fill_n(dst, width, neutral);
  }
  for (int b = 0; b < len; b += k) {
    std::copy_n(pad + size_t(b) * width, width, pre + size_t(b) * width);
    for (int j = b + 1; j < b + k; ++j) {
      const float* p = pad + size_t(j) * width;
      const float* g0 = pre + size_t(j - 1) * width;
      float* g = pre + size_t(j) * width;
      for (int x = 0; x < width; ++x) g[x] = ext(g0[x], p[x]);
    }
    std::copy_n(pad + size_t(b + k - 1) * width, width, suf + size_t(b + k - 1) * width);
    for (int j = b + k - 2; j >= b; --j) {
      const float* p = pad + size_t(j) * width;
      const float* h0 = suf + size_t(j + 1) * width;
      float* h = suf + size_t(j) * width;
      for (int x = 0; x < width; ++x) h[x] = ext(h0[x], p[x]);
    }
  }
  for (int i = 0; i < n_out; ++i) {
    const int s0 = i + offset - r - lo;  // window [s0, s0 + k - 1] in padded slots
    const float* h = suf + size_t(s0) * width;
    const float* g = pre + size_t(s0 + k - 1) * width;
    float* o = out + i * out_stride;
    for (int x = 0; x < width; ++x) o[x] = ext(h[x], g[x]);
  }
}

}  // namespace

/// Separable square max/min filter of radius r; the output grows by `grow` px on
/// every side (windows clipped to the input) or, for negative `grow`, shrinks.
/// |grow| <= r, so every window meets the input.
Plane extreme_filter(const Plane& p, int r, bool take_max, int grow) {
  if (r <= 0 && grow == 0) return p;
  const int w = p.w + 2 * grow, h = p.h + 2 * grow;
  Plane tmp(w, p.h), out(w, h);
  std::vector<float> buf;
  for (int y = 0; y < p.h; ++y)
    van_herk(p.v.data() + size_t(y) * p.w, 1, p.w, tmp.v.data() + size_t(y) * w, 1, w, 1, -grow, r, take_max, buf);
  constexpr int kStrip = 256;  // columns per vertical pass: bounded buffer, cache-friendly rows
  for (int x0 = 0; x0 < w; x0 += kStrip)
    van_herk(tmp.v.data() + x0, w, p.h, out.v.data() + x0, w, h, std::min(kStrip, w - x0), -grow, r, take_max, buf);
  return out;
}

/// Morphological closing (max then min) of radius r. Note: the max filter is also
/// evaluated at centres up to r px outside the image (windows clipped), so that the
/// min filter near a border can choose a window that does not reach inward — without
/// this, a lighting gradient rising away from the border would be overestimated there.
Plane closing(const Plane& p, int r) {
  return extreme_filter(extreme_filter(p, r, true, r), r, false, -r);
}

Plane gaussian_blur(const Plane& p, float sigma) {
  if (sigma <= 0.f) return p;
  const int r = std::max(1, int(std::ceil(3.f * sigma)));
  std::vector<float> k(size_t(2 * r + 1));
  float sum = 0.f;
  for (int i = -r; i <= r; ++i) sum += k[size_t(i + r)] = std::exp(-0.5f * float(i * i) / (sigma * sigma));
  for (float& v : k) v /= sum;
  Plane tmp(p.w, p.h), out(p.w, p.h);
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      float s = 0.f;
      for (int i = -r; i <= r; ++i) s += k[size_t(i + r)] * p.at(std::clamp(x + i, 0, p.w - 1), y);
      tmp.at(x, y) = s;
    }
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < p.w; ++x) {
      float s = 0.f;
      for (int i = -r; i <= r; ++i) s += k[size_t(i + r)] * tmp.at(x, std::clamp(y + i, 0, p.h - 1));
      out.at(x, y) = s;
    }
  return out;
}

}  // namespace tape::vision::detail
