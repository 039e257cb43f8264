#include "tape/data/digits.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <numeric>

#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"

namespace tape::data {

namespace {

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

float clamp01(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }

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

/// Separable square max/min filter of radius r; the output grows by `grow` px on
/// every side (windows clipped to the input) or, for negative `grow`, shrinks.
/// |grow| <= r, so every window meets the input.
Plane extreme_filter(const Plane& p, int r, bool take_max, int grow = 0) {
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

/// Median of the values (copies; upper median for even counts).
float median_of(std::vector<float> v) {
  if (v.empty()) return 0.f;
  auto mid = v.begin() + v.size() / 2;
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

/// Median of a plane-sized array, estimated from at most ~1M evenly spaced samples.
float median_sampled(const std::vector<float>& v) {
  const size_t step = std::max<size_t>(1, v.size() / (1u << 20));
  std::vector<float> sample;
  sample.reserve(v.size() / step + 1);
  for (size_t i = 0; i < v.size(); i += step) sample.push_back(v[i]);
  return median_of(std::move(sample));
}

/// Background level by tile medians, bilinearly interpolated between tile centres.
Plane tile_median(const Plane& g, int tile) {
  const int gx = std::max(1, (g.w + tile - 1) / tile), gy = std::max(1, (g.h + tile - 1) / tile);
  std::vector<float> med(size_t(gx) * gy);
  std::vector<float> buf;
  const int step = std::max(1, tile / 32);  // ≤ ~1024 samples a tile
  for (int ty = 0; ty < gy; ++ty)
    for (int tx = 0; tx < gx; ++tx) {
      buf.clear();
      for (int y = ty * tile; y < std::min(g.h, (ty + 1) * tile); y += step)
        for (int x = tx * tile; x < std::min(g.w, (tx + 1) * tile); x += step) buf.push_back(g.at(x, y));
      med[size_t(ty) * gx + tx] = median_of(buf);
    }
  Plane out(g.w, g.h);
  for (int y = 0; y < g.h; ++y) {
    const float fy = std::clamp((y + 0.5f) / tile - 0.5f, 0.f, float(gy - 1));
    const int y0 = std::min(int(fy), gy - 1), y1 = std::min(y0 + 1, gy - 1);
    const float ay = fy - y0;
    for (int x = 0; x < g.w; ++x) {
      const float fx = std::clamp((x + 0.5f) / tile - 0.5f, 0.f, float(gx - 1));
      const int x0 = std::min(int(fx), gx - 1), x1 = std::min(x0 + 1, gx - 1);
      const float ax = fx - x0;
      const float top = med[size_t(y0) * gx + x0] * (1 - ax) + med[size_t(y0) * gx + x1] * ax;
      const float bot = med[size_t(y1) * gx + x0] * (1 - ax) + med[size_t(y1) * gx + x1] * ax;
      out.at(x, y) = top * (1 - ay) + bot * ay;
    }
  }
  return out;
}

int auto_window(const FindOptions& opt, int w, int h) {
  int win = opt.background_window > 0 ? opt.background_window : std::clamp(std::min(w, h) / 5, 15, 101);
  return win | 1;
}

// Note: the ink is decided by counting pixels that stand out from the local
// background (tile medians) on the dark and on the light side; the background is
// the majority of every tile, and the counter-spaces of digits sit at background
// level, so the side with more outliers is the ink.
Polarity decide_polarity(const Plane& g, int window) {
  // Tiles well above the stroke width, so that ink is a minority in each.
  const Plane bg = tile_median(g, std::max({16, 2 * window, std::min(g.w, g.h) / 4}));
  std::vector<float> dev(g.v.size());
  for (size_t i = 0; i < g.v.size(); ++i) dev[i] = std::fabs(g.v[i] - bg.v[i]);
  const float sigma = 1.4826f * median_sampled(dev);
  const float delta = std::max(0.1f, 5.f * sigma);
  size_t dark = 0, light = 0;
  for (size_t i = 0; i < g.v.size(); ++i) {
    const float d = g.v[i] - bg.v[i];
    dark += d < -delta;
    light += d > delta;
  }
  return light > dark ? Polarity::LightOnDark : Polarity::DarkOnLight;
}

// Note: lighting is multiplicative (reflectance × illumination), so the page is
// normalised by division: `p` (ink made dark) over its background estimate — a
// morphological closing with a window wider than any stroke (it preserves linear
// lighting gradients exactly), smoothed — gives the reflectance, and 1 − that is the
// ink. A light-on-dark image is inverted first, which turns it into the same problem.
struct InkMap {
  Plane ink;    // 0 = background, 1 = full-contrast ink
  Plane floor;  // per-pixel noise floor of `ink` (noise_sigmas noise std-devs)
};

InkMap compute_ink(const Image& img, const FindOptions& opt, Polarity* decided) {
  const Plane g = grey_plane(img);
  const int window = auto_window(opt, g.w, g.h);
  const Polarity pol = opt.polarity == Polarity::Auto ? decide_polarity(g, window) : opt.polarity;
  if (decided) *decided = pol;
  Plane raw = g;
  if (pol == Polarity::LightOnDark)
    for (float& x : raw.v) x = 1.f - x;
  // Pixel noise from the residual against a 3×3 mean (robust: median absolute value).
  const Plane local = box_blur(raw, 1);
  std::vector<float> res(raw.v.size());
  for (size_t i = 0; i < res.size(); ++i) res[i] = std::fabs(raw.v[i] - local.v[i]);
  const float sigma = 1.4826f * median_sampled(res) / 0.943f;
  const Plane p = smooth121(raw);  // light denoising that keeps thin strokes
  const float sigma_p = 0.375f * sigma;  // noise left after [1 2 1]²/16
  const int r = window / 2;
  const Plane pre = box_blur(p, 2);  // less noise bias in the max filter
  Plane bg = closing(pre, r);
  bg = box_blur(bg, r / 2);
  InkMap out{Plane(g.w, g.h), Plane(g.w, g.h)};
  for (size_t i = 0; i < p.v.size(); ++i) {
    const float b = std::max(bg.v[i], 0.1f);  // a near-black "paper" has no contrast to offer
    out.ink.v[i] = clamp01((bg.v[i] - p.v[i]) / b);
    out.floor.v[i] = opt.noise_sigmas * sigma_p / b;
  }
  return out;
}

/// Otsu's threshold of values in [0, 1] (256 bins).
float otsu(const Plane& p) {
  std::array<double, 256> hist{};
  for (float x : p.v) hist[std::min(255, int(x * 255.f + 0.5f))] += 1;
  const double total = double(p.v.size());
  double sum_all = 0;
  for (int i = 0; i < 256; ++i) sum_all += i * hist[i];
  double w0 = 0, sum0 = 0, best = -1;
  int best_t = 128;
  for (int t = 0; t < 255; ++t) {
    w0 += hist[t];
    sum0 += t * hist[t];
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, best_t = t;
  }
  return (best_t + 0.5f) / 255.f;
}

struct Component {
  Rect box;
  int64_t area = 0;
  int group = -1;
};

/// 8-connected components with hysteresis: each grows from a pixel above
/// max(t, noise floor) through pixels above `weak` × that (explicit stack, no recursion).
std::vector<Component> components(const InkMap& map, float t, float weak, std::vector<int>& label) {
  const Plane& ink = map.ink;
  auto strong_at = [&](size_t i) { return std::max(t, map.floor.v[i]); };
  const int w = ink.w, h = ink.h;
  label.assign(size_t(w) * h, -1);
  std::vector<Component> comps;
  std::vector<int> stack;
  for (int y0 = 0; y0 < h; ++y0)
    for (int x0 = 0; x0 < w; ++x0) {
      const size_t i0 = size_t(y0) * w + x0;
      if (label[i0] >= 0 || ink.v[i0] < strong_at(i0)) continue;
      const int id = int(comps.size());
      Component c;
      c.box = {x0, y0, x0 + 1, y0 + 1};
      label[i0] = id;
      stack.assign(1, int(i0));
      while (!stack.empty()) {
        const int i = stack.back();
        stack.pop_back();
        const int x = i % w, y = i / w;
        ++c.area;
        c.box.add({x, y, x + 1, y + 1});
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
            const size_t j = size_t(ny) * w + nx;
            if (label[j] < 0 && ink.v[j] >= weak * strong_at(j)) {
              label[j] = id;
              stack.push_back(int(j));
            }
          }
      }
      comps.push_back(c);
    }
  return comps;
}

struct Group {
  Rect box;
  int64_t area = 0;        // ink pixels
  std::vector<int> comps;  // component ids
};

/// Whether two groups are fragments of one digit. `ref_h` is the typical digit
/// height (median component height); with the fragments' own sizes it caps the size
/// of a merged digit, so two digits of neighbouring rows are not merged. A speck
/// (area < `speck`) joins only a box it overlaps or nearly touches.
bool should_merge(const Group& ga, const Group& gb, float ref_h, float speck, const FindOptions& opt) {
  const Rect& a = ga.box;
  const Rect& b = gb.box;
  Rect m = a;
  m.add(b);
  // No digit is much larger than the typical one; this also stops a wrong merge from
  // snowballing through a crowded page.
  if (std::max(m.w(), m.h()) > opt.merge_max_ref * ref_h) return false;
  const int ix = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);  // < 0: horizontal gap
  const int iy = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);  // < 0: vertical gap
  if (ix > 0 && iy > 0 && double(ix) * iy >= opt.merge_box_overlap * double(std::min(a.area(), b.area())))
    return true;
  const double gap_x = std::max(0, -ix), gap_y = std::max(0, -iy);
  if (ga.area < speck || gb.area < speck)
    return std::max(gap_x, gap_y) <= opt.merge_touch_gap * std::max(m.w(), m.h());
  const bool stacked = ix >= opt.merge_overlap * std::min(a.w(), b.w());
  // Nearly touching stacked fragments (a stroke broken at a thin point).
  if (stacked && gap_y <= opt.merge_touch_gap * m.h()) return true;
  const double cap = opt.merge_max_size * std::max({double(ref_h), double(a.w()), double(a.h()), double(b.w()), double(b.h())});
  if (m.h() > cap || m.w() > opt.merge_max_size * std::max(double(m.h()), double(ref_h))) return false;
  // Stacked fragments (the halves of a broken 8, a bar above the body of a 5).
  if (stacked && gap_y <= opt.merge_gap * m.h()) return true;
  // A fragment at most 0.6 as tall next to a taller one, possibly diagonally (the
  // detached bar of a 5, the stem of a 4).
  return std::min(a.h(), b.h()) <= 0.6 * std::max(a.h(), b.h()) && gap_x <= opt.merge_gap * m.w() &&
         gap_y <= opt.merge_gap * m.h();
}

/// Separable resampling weights from `src` to `dst` samples: area averaging when
/// shrinking, linear interpolation when enlarging.
std::vector<std::vector<std::pair<int, float>>> resample_weights(int src, int dst) {
  std::vector<std::vector<std::pair<int, float>>> wts(dst);
  const double f = double(src) / dst;
  for (int i = 0; i < dst; ++i) {
    if (f >= 1.0) {
      const double a = i * f, b = (i + 1) * f;
      for (int k = int(a); k < std::min(src, int(std::ceil(b))); ++k) {
        const double ov = std::min(b, double(k + 1)) - std::max(a, double(k));
        if (ov > 1e-9) wts[i].push_back({k, float(ov / f)});
      }
    } else {
      const double c = std::clamp((i + 0.5) * f - 0.5, 0.0, double(src - 1));
      const int k0 = int(c), k1 = std::min(k0 + 1, src - 1);
      const float t = float(c - k0);
      wts[i].push_back({k0, 1.f - t});
      if (k1 != k0) wts[i].push_back({k1, t});
    }
  }
  return wts;
}

Plane resample(const Plane& p, int tw, int th) {
  const auto wx = resample_weights(p.w, tw), wy = resample_weights(p.h, th);
  Plane tmp(tw, p.h), out(tw, th);
  for (int y = 0; y < p.h; ++y)
    for (int x = 0; x < tw; ++x) {
      float s = 0;
      for (auto [k, wt] : wx[x]) s += wt * p.at(k, y);
      tmp.at(x, y) = s;
    }
  for (int y = 0; y < th; ++y)
    for (int x = 0; x < tw; ++x) {
      float s = 0;
      for (auto [k, wt] : wy[y]) s += wt * tmp.at(x, k);
      out.at(x, y) = s;
    }
  return out;
}

/// MNIST normalisation of one soft ink crop: fit into 20×20 keeping the aspect
/// ratio, then paste into 28×28 with the centre of mass on (14, 14) (integer shift,
/// as measured on MNIST: its centres of mass lie in [13.5, 14.5]).
std::vector<float> mnist_normalise(const Plane& crop) {
  std::vector<float> out(size_t(kDigitSide) * kDigitSide, 0.f);
  const double s = double(kDigitFit) / std::max(crop.w, crop.h);
  const int tw = std::clamp(int(std::lround(crop.w * s)), 1, kDigitFit);
  const int th = std::clamp(int(std::lround(crop.h * s)), 1, kDigitFit);
  const Plane small = resample(crop, tw, th);
  double m = 0, mx = 0, my = 0;
  for (int y = 0; y < th; ++y)
    for (int x = 0; x < tw; ++x) {
      const double v = small.at(x, y);
      m += v, mx += v * x, my += v * y;
    }
  if (m <= 0) return out;
  // Ties round down, so a symmetric 20-px digit lands on rows 4..23 (the central 20×20).
  const int ox = std::clamp(int(std::ceil(kDigitSide / 2.0 - mx / m - 0.5 - 1e-3)), 0, kDigitSide - tw);
  const int oy = std::clamp(int(std::ceil(kDigitSide / 2.0 - my / m - 0.5 - 1e-3)), 0, kDigitSide - th);
  for (int y = 0; y < th; ++y)
    for (int x = 0; x < tw; ++x) out[size_t(y + oy) * kDigitSide + x + ox] = clamp01(small.at(x, y));
  return out;
}

}  // namespace

const char* polarity_name(Polarity p) {
  switch (p) {
    case Polarity::Auto: return "auto";
    case Polarity::DarkOnLight: return "dark-on-light";
    case Polarity::LightOnDark: return "light-on-dark";
  }
  return "?";
}

Image ink_map(const Image& img, const FindOptions& opt, Polarity* decided) {
  const Plane ink = compute_ink(img, opt, decided).ink;
  Image out(ink.w, ink.h, 1);
  for (size_t i = 0; i < ink.v.size(); ++i) out.pixels[i] = uint8_t(std::lround(ink.v[i] * 255.f));
  return out;
}

std::vector<DigitBox> find_digits(const Image& img, const FindOptions& opt) {
  const InkMap map = compute_ink(img, opt, nullptr);
  const Plane& ink = map.ink;
  const int w = ink.w, h = ink.h;
  const float t = std::clamp(otsu(ink), opt.min_contrast, std::max(opt.min_contrast, 0.5f));
  std::vector<int> label;
  std::vector<Component> comps = components(map, t, opt.hysteresis, label);

  // Merge fragments: groups start as single components; repeat until stable.
  std::vector<float> areas, heights;
  std::vector<Group> groups;
  for (int i = 0; i < int(comps.size()); ++i)
    if (comps[i].area >= opt.min_area) {
      groups.push_back({comps[i].box, comps[i].area, {i}});
      areas.push_back(float(comps[i].area));
    }
  const float speck = opt.speck_area * median_of(areas);
  for (const auto& g : groups)
    if (g.area >= speck) heights.push_back(float(g.box.h()));
  const float ref_h = median_of(heights);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t a = 0; a < groups.size(); ++a)
      for (size_t b = a + 1; b < groups.size(); ++b)
        if (should_merge(groups[a], groups[b], ref_h, speck, opt)) {
          groups[a].box.add(groups[b].box);
          groups[a].area += groups[b].area;
          groups[a].comps.insert(groups[a].comps.end(), groups[b].comps.begin(), groups[b].comps.end());
          groups.erase(groups.begin() + long(b));
          changed = true;
          b = a;  // re-test the grown group against every later one
        }
  }
  // Specks: tiny area or extent relative to the median digit.
  areas.clear();
  std::vector<float> extents;
  for (const auto& g : groups) {
    areas.push_back(float(g.area));
    extents.push_back(float(std::max(g.box.w(), g.box.h())));
  }
  const float med_area = median_of(areas), med_extent = median_of(extents);
  std::erase_if(groups, [&](const Group& g) {
    return g.area < opt.speck_area * med_area || std::max(g.box.w(), g.box.h()) < opt.speck_extent * med_extent;
  });
  if (groups.empty()) return {};

  // Reading order: rows by vertical overlap, then left to right.
  std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    return a.box.y0 != b.box.y0 ? a.box.y0 < b.box.y0 : a.box.x0 < b.box.x0;
  });
  struct Row {
    int y0, y1;
    std::vector<int> members;
  };
  std::vector<Row> rows;
  for (int gi = 0; gi < int(groups.size()); ++gi) {
    const Rect& b = groups[gi].box;
    int best = -1, best_ov = 0;
    for (int r = 0; r < int(rows.size()); ++r) {
      const int ov = std::min(b.y1, rows[r].y1) - std::max(b.y0, rows[r].y0);
      if (ov >= opt.row_overlap * b.h() && ov > best_ov) best = r, best_ov = ov;
    }
    if (best < 0) {
      rows.push_back({b.y0, b.y1, {gi}});
    } else {
      rows[best].y0 = std::min(rows[best].y0, b.y0);
      rows[best].y1 = std::max(rows[best].y1, b.y1);
      rows[best].members.push_back(gi);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.y0 + a.y1 < b.y0 + b.y1; });

  std::vector<DigitBox> out;
  for (auto& row : rows) {
    std::sort(row.members.begin(), row.members.end(),
              [&](int a, int b) { return groups[a].box.x0 + groups[a].box.x1 < groups[b].box.x0 + groups[b].box.x1; });
    for (int gi : row.members) {
      const Group& g = groups[gi];
      // The digit's own pixels, plus a halo of `halo` px to keep the soft edge.
      const int halo = std::max(1, int(std::lround(std::max(g.box.w(), g.box.h()) / 40.0)));
      const Rect reg{std::max(0, g.box.x0 - halo), std::max(0, g.box.y0 - halo), std::min(w, g.box.x1 + halo),
                     std::min(h, g.box.y1 + halo)};
      Plane mask(reg.w(), reg.h());
      std::vector<float> core;
      for (int y = reg.y0; y < reg.y1; ++y)
        for (int x = reg.x0; x < reg.x1; ++x) {
          const int l = label[size_t(y) * w + x];
          if (l >= 0 && std::find(g.comps.begin(), g.comps.end(), l) != g.comps.end()) {
            mask.at(x - reg.x0, y - reg.y0) = 1.f;
            core.push_back(ink.at(x, y));
          }
        }
      mask = extreme_filter(mask, halo, true);
      // Ink level: the 90th percentile inside the strokes maps to 1 (MNIST's 255).
      std::sort(core.begin(), core.end());
      const float hi = core.empty() ? 1.f : core[std::min(core.size() - 1, size_t(0.9 * core.size()))];
      const float lo = 0.4f * t;
      Plane soft(reg.w(), reg.h());
      Rect used{reg.w(), reg.h(), 0, 0};
      for (int y = 0; y < reg.h(); ++y)
        for (int x = 0; x < reg.w(); ++x) {
          const float v = mask.at(x, y) * clamp01((ink.at(x + reg.x0, y + reg.y0) - lo) / std::max(hi - lo, 1e-3f));
          soft.at(x, y) = v;
          if (v > 0) used.add({x, y, x + 1, y + 1});
        }
      if (used.w() <= 0) continue;
      Plane crop(used.w(), used.h());
      for (int y = 0; y < used.h(); ++y)
        for (int x = 0; x < used.w(); ++x) crop.at(x, y) = soft.at(x + used.x0, y + used.y0);
      DigitBox d;
      d.x = g.box.x0, d.y = g.box.y0, d.w = g.box.w(), d.h = g.box.h();
      d.pixels = mnist_normalise(crop);
      out.push_back(std::move(d));
    }
  }
  return out;
}

Tensor digits_to_batch(const std::vector<DigitBox>& digits) {
  const int64_t k = int64_t(digits.size());
  Tensor batch = Tensor::empty({k, 1, kDigitSide, kDigitSide}, Dtype::Float32);
  if (k == 0) return batch;
  float* dst = batch.data<float>();
  const size_t n = size_t(kDigitSide) * kDigitSide;
  for (int64_t i = 0; i < k; ++i) {
    TAPE_CHECK(digits[i].pixels.size() == n, "digits_to_batch: digit ", i, " has ", digits[i].pixels.size(),
               " pixels, expected ", n);
    std::copy(digits[i].pixels.begin(), digits[i].pixels.end(), dst + i * int64_t(n));
  }
  return batch;
}

void annotate(Image& img, const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
              const std::vector<float>& confidences) {
  TAPE_CHECK(labels.size() == digits.size(), "annotate: ", digits.size(), " digits but ", labels.size(), " labels");
  TAPE_CHECK(confidences.empty() || confidences.size() == digits.size(), "annotate: ", digits.size(),
             " digits but ", confidences.size(), " confidences");
  if (img.channels != 3) img = to_rgb(img);
  const int thick = std::max(2, std::min(img.width, img.height) / 400);
  for (size_t i = 0; i < digits.size(); ++i) {
    const DigitBox& d = digits[i];
    Rgb colour{40, 200, 40};  // confident (or no confidence given)
    std::string text = std::to_string(labels[i]);
    if (!confidences.empty()) {
      const float c = confidences[i];
      if (c < 0.6f) colour = {230, 50, 50};
      else if (c < 0.9f) colour = {255, 160, 0};
      char buf[16];
      std::snprintf(buf, sizeof buf, " %d%%", int(std::lround(c * 100)));
      text += buf;
    }
    draw_rect(img, d.x - thick - 1, d.y - thick - 1, d.w + 2 * (thick + 1), d.h + 2 * (thick + 1), colour, thick);
    const int scale = std::clamp(d.h / 25, 2, 5);
    const int pad = scale;
    const int tw = text_width(text, scale) + 2 * pad, th = text_height(text, scale) + 2 * pad;
    int tx = d.x - thick - 1, ty = d.y - thick - 1 - th;  // tag above the box...
    if (ty < 0) ty = d.y + d.h + thick + 1;                // ...or below it
    tx = std::clamp(tx, 0, std::max(0, img.width - tw));
    ty = std::clamp(ty, 0, std::max(0, img.height - th));
    fill_rect(img, tx, ty, tw, th, colour);
    draw_text(img, tx + pad, ty + pad, text, Rgb{0, 0, 0}, scale);
  }
}

// --- synthetic pages -----------------------------------------------------------

namespace {

/// One MNIST digit (28×28 in [0,1]) rendered `height` px tall as an alpha plane:
/// bilinear enlargement, grey dilation by `grow` px, then a soft threshold at `cut`
/// (higher = thinner strokes).
Plane render_digit(const float* src, int height, int grow, float cut) {
  int bx0 = kDigitSide, by0 = kDigitSide, bx1 = -1, by1 = -1;
  for (int y = 0; y < kDigitSide; ++y)
    for (int x = 0; x < kDigitSide; ++x)
      if (src[y * kDigitSide + x] > 0.1f)
        bx0 = std::min(bx0, x), by0 = std::min(by0, y), bx1 = std::max(bx1, x), by1 = std::max(by1, y);
  if (bx1 < 0) return {};
  const double s = double(height) / (by1 - by0 + 1);
  const int pad = grow + 2;
  const int ow = int(std::lround((bx1 - bx0 + 1) * s)) + 2 * pad, oh = height + 2 * pad;
  auto sample = [&](double u, double v) {
    const int x0 = int(std::floor(u)), y0 = int(std::floor(v));
    const double fx = u - x0, fy = v - y0;
    auto px = [&](int x, int y) {
      return (x < 0 || y < 0 || x >= kDigitSide || y >= kDigitSide) ? 0.0 : double(src[y * kDigitSide + x]);
    };
    return (px(x0, y0) * (1 - fx) + px(x0 + 1, y0) * fx) * (1 - fy) + (px(x0, y0 + 1) * (1 - fx) + px(x0 + 1, y0 + 1) * fx) * fy;
  };
  Plane a(ow, oh);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      a.at(x, y) = float(sample(bx0 + (x - pad + 0.5) / s - 0.5, by0 + (y - pad + 0.5) / s - 0.5));
  a = extreme_filter(a, grow, true);
  for (float& v : a.v) {
    const float z = clamp01((v - (cut - 0.2f)) / 0.4f);
    v = z * z * (3 - 2 * z);  // smoothstep
  }
  return a;
}

}  // namespace

Image make_digit_page(const Dataset& digits, const PageOptions& opt, std::vector<TruthBox>* truth) {
  TAPE_CHECK(digits.images.defined() && digits.labels.defined(), "make_digit_page: the dataset is empty");
  const int64_t n = digits.images.size(0);
  TAPE_CHECK(n > 0 && digits.images.numel() == n * kDigitSide * kDigitSide && digits.labels.numel() == n,
             "make_digit_page: expected images [N, 1, 28, 28] and labels [N], got ", digits.images.shape(), " and ",
             digits.labels.shape());
  TAPE_CHECK(opt.count > 0, "make_digit_page: count must be positive, got ", opt.count);
  TAPE_CHECK(opt.min_height >= 8 && opt.max_height >= opt.min_height, "make_digit_page: bad height range [",
             opt.min_height, ", ", opt.max_height, "]");
  TAPE_CHECK(opt.polarity != Polarity::Auto, "make_digit_page: polarity must be dark-on-light or light-on-dark");
  const Tensor images = digits.images.contiguous();
  const std::vector<int64_t> labels = digits.labels.to_vector<int64_t>();
  const float* pix = images.data<float>();

  Generator rng(opt.seed);
  const int cols = opt.columns > 0 ? opt.columns : std::max(1, int(std::ceil(std::sqrt(opt.count * 4.0 / 3.0))));
  const int rows = (opt.count + cols - 1) / cols;
  const int cell = int(std::ceil(opt.max_height * 1.5));
  const int pad = cell / 6;  // ≥ 2·pad between neighbouring boxes
  const int margin = cell / 3;
  const int pw = cols * cell + 2 * margin, ph = rows * cell + 2 * margin;
  const bool dark_ink = opt.polarity == Polarity::DarkOnLight;
  const float paper = dark_ink ? 0.92f : 0.16f;

  Plane refl(pw, ph, paper);  // reflectance (dark-on-light) or emitted level (light-on-dark)
  if (truth) truth->clear();
  auto ink_box = [](const Plane& a) {  // at half alpha
    Rect box{a.w, a.h, 0, 0};
    for (int y = 0; y < a.h; ++y)
      for (int x = 0; x < a.w; ++x)
        if (a.at(x, y) >= 0.5f) box.add({x, y, x + 1, y + 1});
    return box;
  };
  const int room = cell - 2 * pad;  // a digit's box must fit here, so boxes never overlap
  for (int i = 0; i < opt.count; ++i) {
    Plane a;
    int64_t idx = 0;
    int height = opt.min_height + int(rng.below(uint64_t(opt.max_height - opt.min_height + 1)));
    const float stroke = -0.3f + 1.5f * rng.uniform();
    const int grow = std::max(0, int(std::lround(stroke * height / 40.0)));
    const float cut = 0.3f + 0.3f * rng.uniform();
    for (int tries = 0; tries < 100 && a.v.empty(); ++tries) {
      idx = int64_t(rng.below(uint64_t(n)));
      a = render_digit(pix + idx * kDigitSide * kDigitSide, height, grow, cut);
    }
    TAPE_CHECK(!a.v.empty(), "make_digit_page: could not find a non-blank digit");
    Rect box = ink_box(a);
    // A wide (or very bold) digit is drawn smaller so that it fits its cell.
    for (int tries = 0; tries < 8 && std::max(box.w(), box.h()) > room && height > 8; ++tries) {
      height = std::max(8, int(height * double(room) / std::max(box.w(), box.h())) - 1);
      a = render_digit(pix + idx * kDigitSide * kDigitSide, height, grow, cut);
      box = ink_box(a);
    }
    const int cx = margin + (i % cols) * cell, cy = margin + (i / cols) * cell;
    const int room_x = room - box.w(), room_y = room - box.h();
    const int ox = cx + pad + (room_x > 0 ? int(rng.below(uint64_t(room_x + 1))) : room_x / 2) - box.x0;
    const int oy = cy + pad + (room_y > 0 ? int(rng.below(uint64_t(room_y + 1))) : room_y / 2) - box.y0;
    const float ink = dark_ink ? 0.05f + 0.2f * rng.uniform() : 0.75f + 0.2f * rng.uniform();
    for (int y = 0; y < a.h; ++y)
      for (int x = 0; x < a.w; ++x) {
        const int px = ox + x, py = oy + y;
        if (px < 0 || py < 0 || px >= pw || py >= ph) continue;
        float& r = refl.at(px, py);
        r = r * (1 - a.at(x, y)) + ink * a.at(x, y);
      }
    if (truth) truth->push_back({ox + box.x0, oy + box.y0, box.w(), box.h(), labels[size_t(idx)], idx});
  }

  // Lighting: a linear gradient in a random direction times a mild vignette.
  const double theta = 2 * std::numbers::pi * rng.uniform();
  const double dx = std::cos(theta), dy = std::sin(theta);
  const double half = 0.5 * (std::fabs(dx) * pw + std::fabs(dy) * ph);
  const float strength = dark_ink ? opt.gradient : 0.5f * opt.gradient;
  const std::array<float, 3> tint = dark_ink ? std::array<float, 3>{1.f, 0.97f, 0.9f} : std::array<float, 3>{0.92f, 1.f, 0.95f};
  Image page(pw, ph, 3);
  for (int y = 0; y < ph; ++y)
    for (int x = 0; x < pw; ++x) {
      const double proj = ((x - pw / 2.0) * dx + (y - ph / 2.0) * dy) / half;  // [-1, 1]
      const double rr = (std::pow((x - pw / 2.0) / pw, 2) + std::pow((y - ph / 2.0) / ph, 2)) * 4;  // 0 centre, 2 corner
      const float light = float((1 - strength * 0.5 * (proj + 1)) * (1 - 0.08 * rr));
      uint8_t* px = page.at(x, y);
      for (int c = 0; c < 3; ++c) {
        const float v = light * refl.at(x, y) * tint[c] + opt.noise * rng.normal();
        px[c] = uint8_t(std::lround(clamp01(v) * 255.f));
      }
    }
  return page;
}

float box_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh) {
  if (aw <= 0 || ah <= 0 || bw <= 0 || bh <= 0) return 0.f;
  const int ix = std::max(0, std::min(ax + aw, bx + bw) - std::max(ax, bx));
  const int iy = std::max(0, std::min(ay + ah, by + bh) - std::max(ay, by));
  const double inter = double(ix) * iy;
  return float(inter / (double(aw) * ah + double(bw) * bh - inter));
}

std::vector<int> match_boxes(const std::vector<TruthBox>& truth, const std::vector<DigitBox>& found, float min_iou) {
  struct Pair {
    float iou;
    int t, f;
  };
  std::vector<Pair> pairs;
  for (int i = 0; i < int(truth.size()); ++i)
    for (int j = 0; j < int(found.size()); ++j) {
      const float v = box_iou(truth[i].x, truth[i].y, truth[i].w, truth[i].h, found[j].x, found[j].y, found[j].w, found[j].h);
      if (v >= min_iou) pairs.push_back({v, i, j});
    }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<int> match(truth.size(), -1);
  std::vector<bool> used(found.size(), false);
  for (const auto& p : pairs)
    if (match[p.t] < 0 && !used[p.f]) match[p.t] = p.f, used[p.f] = true;
  return match;
}

}  // namespace tape::data
