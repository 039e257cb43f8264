#include "tape_vision/digits.hpp"
#include "tape_vision/plane.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <numeric>

#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"

namespace tape::vision {
using namespace detail;

namespace {

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

namespace {

constexpr Rect kNoClip{std::numeric_limits<int>::min() / 2, std::numeric_limits<int>::min() / 2,
                       std::numeric_limits<int>::max() / 2, std::numeric_limits<int>::max() / 2};

/// A digit candidate: connected components merged into one, restricted to `clip`
/// (the part of the image it owns once a merged box is split).
struct Candidate {
  Group g;
  Rect clip = kNoClip;
};

/// Calls f(x, y) for each pixel of the candidate (its components, inside its clip and box).
template <class F>
void for_each_pixel(const Candidate& c, const std::vector<int>& label, int w, F&& f) {
  const Rect& b = c.g.box;
  for (int y = std::max(b.y0, c.clip.y0); y < std::min(b.y1, c.clip.y1); ++y)
    for (int x = std::max(b.x0, c.clip.x0); x < std::min(b.x1, c.clip.x1); ++x) {
      const int l = label[size_t(y) * w + x];
      if (l >= 0 && std::find(c.g.comps.begin(), c.g.comps.end(), l) != c.g.comps.end()) f(x, y);
    }
}

/// Fragments of one digit merged into groups (repeated until stable).
std::vector<Group> merge_fragments(const std::vector<Component>& comps, const FindOptions& opt) {
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
      for (size_t b = a + 1; b < groups.size(); ++b) {
        // Boxes far apart never merge (cheap test first: pages hold thousands of groups).
        const Rect &ra = groups[a].box, &rb = groups[b].box;
        const double reach = opt.merge_max_ref * ref_h;
        if (rb.x0 - ra.x1 > reach || ra.x0 - rb.x1 > reach || rb.y0 - ra.y1 > reach || ra.y0 - rb.y1 > reach) continue;
        if (should_merge(groups[a], groups[b], ref_h, speck, opt)) {
          groups[a].box.add(groups[b].box);
          groups[a].area += groups[b].area;
          groups[a].comps.insert(groups[a].comps.end(), groups[b].comps.begin(), groups[b].comps.end());
          groups.erase(groups.begin() + long(b));
          changed = true;
          b = a;  // re-test the grown group against every later one
        }
      }
  }
  return groups;
}

/// Drops specks: tiny area or extent relative to the median group.
void drop_specks(std::vector<Group>& groups, const FindOptions& opt) {
  std::vector<float> areas, extents;
  for (const auto& g : groups) {
    areas.push_back(float(g.area));
    extents.push_back(float(std::max(g.box.w(), g.box.h())));
  }
  const float med_area = median_of(areas), med_extent = median_of(extents);
  std::erase_if(groups, [&](const Group& g) {
    return g.area < opt.speck_area * med_area || std::max(g.box.w(), g.box.h()) < opt.speck_extent * med_extent;
  });
}

/// Splits a candidate into `pieces` along x (columns) or y (rows) at the minima of
/// its ink profile; each piece gets the tight box of its own pixels (empty pieces go).
std::vector<Candidate> split_candidate(const Candidate& c, int pieces, bool columns, const std::vector<int>& label,
                                       int w) {
  const Rect& b = c.g.box;
  const int origin = columns ? b.x0 : b.y0;
  std::vector<float> profile(size_t(columns ? b.w() : b.h()), 0.f);
  for_each_pixel(c, label, w, [&](int x, int y) { profile[size_t((columns ? x : y) - origin)] += 1.f; });
  std::vector<int> cuts = profile_cuts(profile, pieces);
  cuts.insert(cuts.begin(), 0);
  cuts.push_back(int(profile.size()));
  std::vector<Candidate> out;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    Candidate p = c;
    (columns ? p.clip.x0 : p.clip.y0) = std::max(columns ? c.clip.x0 : c.clip.y0, origin + cuts[i]);
    (columns ? p.clip.x1 : p.clip.y1) = std::min(columns ? c.clip.x1 : c.clip.y1, origin + cuts[i + 1]);
    Rect box{std::numeric_limits<int>::max(), std::numeric_limits<int>::max(), std::numeric_limits<int>::min(),
             std::numeric_limits<int>::min()};
    int64_t area = 0;
    for_each_pixel(p, label, w, [&](int x, int y) { box.add({x, y, x + 1, y + 1}), ++area; });
    if (area == 0) continue;
    p.g.box = box;
    p.g.area = area;
    out.push_back(std::move(p));
  }
  return out;
}

// Note: merged neighbours. Touching digits (and digits of touching rows) come out of
// the component stage as one box. Most boxes on a page are single digits, so the
// median width and height are a single digit's; a box much wider than that — and
// wide for its own height, since a wide 0 or 2 is still no wider than tall — is
// cut at the ink minima of its columns into as many pieces as median widths fit
// in it. Rows are split first, so that each row's digits are then cut by columns.
//
// With a classifier (find_digits_verified), a box that is merely somewhat wide gets
// alternatives — whole, or cut into 2 or 3 pieces — and the classifier picks one.

/// One box after row splitting: the ways to cut it into digits, and the one the
/// width rule picks.
struct Choice {
  std::vector<std::vector<Candidate>> alts;
  int pick = 0;
};

std::vector<Choice> split_choices(const std::vector<Group>& groups, const std::vector<int>& label, int w,
                                  const FindOptions& opt, bool verify) {
  std::vector<Choice> out;
  std::vector<float> widths, heights;
  for (const Group& g : groups) widths.push_back(float(g.box.w())), heights.push_back(float(g.box.h()));
  const float med_w = median_of(widths), med_h = median_of(heights);
  for (const Group& g : groups) {
    std::vector<Candidate> parts{{g, kNoClip}};
    // A thin box (a stroke, a 1) is no column of digits, however tall.
    if (opt.split_width > 0 && g.box.h() > opt.split_width * med_h && g.box.w() >= 0.6f * med_w)
      parts = split_candidate(parts[0], std::max(2, int(std::lround(g.box.h() / med_h))), false, label, w);
    for (const Candidate& p : parts) {
      const Rect& b = p.g.box;
      Choice ch;
      // A flat box (a bar, a dash) is no row of digits, however wide.
      const bool tall_enough = b.h() >= 0.6f * med_h;
      const int rule = opt.split_width > 0 && b.w() > opt.split_width * med_w && b.w() > opt.split_aspect * b.h() &&
                               tall_enough
                           ? std::max(2, int(std::lround(b.w() / med_w)))
                           : 1;
      // Only boxes of a digit's height are asked about: a taller box is a bigger digit
      // (pages of mixed sizes), not a row of median ones.
      const bool ask = verify && opt.split_width > 0 && tall_enough && b.h() <= 1.25f * med_h &&
                       b.w() > opt.verify_width * med_w && b.w() > opt.verify_aspect * b.h();
      for (int k = 1; k <= std::max(rule, ask ? 3 : 1); ++k) {
        if (k != rule && (!ask || k > 3 || float(b.w()) / float(k) < 0.3f * med_w)) continue;
        if (k == rule) ch.pick = int(ch.alts.size());
        ch.alts.push_back(k == 1 ? std::vector<Candidate>{p} : split_candidate(p, k, true, label, w));
      }
      out.push_back(std::move(ch));
    }
  }
  return out;
}

/// Reading order: rows by vertical overlap (top to bottom), left to right in a row.
void reading_order(std::vector<Candidate>& cands, const FindOptions& opt) {
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.g.box.y0 != b.g.box.y0 ? a.g.box.y0 < b.g.box.y0 : a.g.box.x0 < b.g.box.x0;
  });
  struct Row {
    int y0, y1;
    std::vector<int> members;
  };
  std::vector<Row> rows;
  for (int ci = 0; ci < int(cands.size()); ++ci) {
    const Rect& b = cands[ci].g.box;
    int best = -1, best_ov = 0;
    // Only recent rows can overlap: candidates come sorted by top edge.
    for (int r = std::max(0, int(rows.size()) - 8); r < int(rows.size()); ++r) {
      const int ov = std::min(b.y1, rows[r].y1) - std::max(b.y0, rows[r].y0);
      if (ov >= opt.row_overlap * b.h() && ov > best_ov) best = r, best_ov = ov;
    }
    if (best < 0) {
      rows.push_back({b.y0, b.y1, {ci}});
    } else {
      rows[best].y0 = std::min(rows[best].y0, b.y0);
      rows[best].y1 = std::max(rows[best].y1, b.y1);
      rows[best].members.push_back(ci);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.y0 + a.y1 < b.y0 + b.y1; });
  std::vector<Candidate> ordered;
  ordered.reserve(cands.size());
  for (auto& row : rows) {
    std::sort(row.members.begin(), row.members.end(), [&](int a, int b) {
      return cands[a].g.box.x0 + cands[a].g.box.x1 < cands[b].g.box.x0 + cands[b].g.box.x1;
    });
    for (int ci : row.members) ordered.push_back(std::move(cands[ci]));
  }
  cands = std::move(ordered);
}

/// The MNIST-normalised crop of one candidate: its own pixels plus a halo that keeps
/// the soft edge, ink scaled so the 90th percentile inside the strokes is 1 (MNIST's
/// 255). False when nothing is left.
bool crop_digit(const Candidate& c, const InkMap& map, const std::vector<int>& label, float t, const FindOptions& opt,
                DigitBox& d) {
  const Plane& ink = map.ink;
  const int w = ink.w, h = ink.h;
  const Rect& box = c.g.box;
  const int halo = std::max(1, int(std::lround(std::max(box.w(), box.h()) / 40.0)));
  const Rect reg{std::max(0, box.x0 - halo), std::max(0, box.y0 - halo), std::min(w, box.x1 + halo),
                 std::min(h, box.y1 + halo)};
  Plane mask(reg.w(), reg.h());
  std::vector<float> core;
  for_each_pixel(c, label, w, [&](int x, int y) {
    mask.at(x - reg.x0, y - reg.y0) = 1.f;
    core.push_back(ink.at(x, y));
  });
  mask = extreme_filter(mask, halo, true);
  // A split piece keeps no halo beyond its cut: that ink is the neighbour's.
  const Rect keep{std::max(reg.x0, c.clip.x0), std::max(reg.y0, c.clip.y0), std::min(reg.x1, c.clip.x1),
                  std::min(reg.y1, c.clip.y1)};
  std::sort(core.begin(), core.end());
  const float hi = core.empty() ? 1.f : core[std::min(core.size() - 1, size_t(0.9 * core.size()))];
  const float lo = 0.4f * t;
  Plane soft(reg.w(), reg.h());
  Rect used{reg.w(), reg.h(), 0, 0};
  for (int y = keep.y0; y < keep.y1; ++y)
    for (int x = keep.x0; x < keep.x1; ++x) {
      const float v = mask.at(x - reg.x0, y - reg.y0) * clamp01((ink.at(x, y) - lo) / std::max(hi - lo, 1e-3f));
      soft.at(x - reg.x0, y - reg.y0) = v;
      if (v > 0) used.add({x - reg.x0, y - reg.y0, x - reg.x0 + 1, y - reg.y0 + 1});
    }
  if (used.w() <= 0) return false;
  Plane crop(used.w(), used.h());
  for (int y = 0; y < used.h(); ++y)
    for (int x = 0; x < used.w(); ++x) crop.at(x, y) = soft.at(x + used.x0, y + used.y0);
  d.x = box.x0, d.y = box.y0, d.w = box.w(), d.h = box.h();
  d.pixels = mnist_normalise(crop);
  if (opt.deskew) deskew_digit(d.pixels.data());
  return true;
}

}  // namespace

namespace {

/// The candidates of a page after merging fragments, and the context to crop them.
struct PageState {
  InkMap map;
  float t = 0;
  std::vector<int> label;
  std::vector<Choice> choices;
};

PageState prepare(const Image& img, const FindOptions& opt, bool verify) {
  PageState st{compute_ink(img, opt, nullptr), 0.f, {}, {}};
  st.t = std::clamp(otsu(st.map.ink), opt.min_contrast, std::max(opt.min_contrast, 0.5f));
  const std::vector<Component> comps = components(st.map, st.t, opt.hysteresis, st.label);
  std::vector<Group> groups = merge_fragments(comps, opt);
  drop_specks(groups, opt);
  if (!groups.empty()) st.choices = split_choices(groups, st.label, st.map.ink.w, opt, verify);
  return st;
}

std::vector<DigitBox> finish(std::vector<Candidate> cands, const PageState& st, const FindOptions& opt) {
  reading_order(cands, opt);
  std::vector<DigitBox> out;
  for (const Candidate& c : cands) {
    DigitBox d;
    if (crop_digit(c, st.map, st.label, st.t, opt, d)) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::vector<DigitBox> find_digits(const Image& img, const FindOptions& opt) {
  const PageState st = prepare(img, opt, false);
  std::vector<Candidate> cands;
  for (const Choice& ch : st.choices)
    for (const Candidate& c : ch.alts[size_t(ch.pick)]) cands.push_back(c);
  return finish(std::move(cands), st, opt);
}

std::vector<DigitBox> find_digits_verified(const Image& img, const ClassifyFn& classify, const FindOptions& opt) {
  TAPE_CHECK(bool(classify), "find_digits_verified: no classifier");
  const PageState st = prepare(img, opt, true);
  // Every piece of every alternative of the ambiguous boxes, classified in one batch.
  std::vector<DigitBox> crops;
  std::vector<std::vector<std::vector<int>>> where(st.choices.size());  // choice → alt → crop index (-1: none)
  for (size_t i = 0; i < st.choices.size(); ++i) {
    const Choice& ch = st.choices[i];
    if (ch.alts.size() < 2) continue;
    where[i].resize(ch.alts.size());
    for (size_t a = 0; a < ch.alts.size(); ++a)
      for (const Candidate& c : ch.alts[a]) {
        DigitBox d;
        const bool ok = crop_digit(c, st.map, st.label, st.t, opt, d);
        where[i][a].push_back(ok ? int(crops.size()) : -1);
        if (ok) crops.push_back(std::move(d));
      }
  }
  std::vector<std::pair<int64_t, float>> verdict;
  if (!crops.empty()) {
    verdict = classify(digits_to_batch(crops));
    TAPE_CHECK(verdict.size() == crops.size(), "find_digits_verified: the classifier returned ", verdict.size(),
               " answers for ", crops.size(), " digits");
  }
  std::vector<Candidate> cands;
  for (size_t i = 0; i < st.choices.size(); ++i) {
    const Choice& ch = st.choices[i];
    size_t best = size_t(ch.pick);
    if (ch.alts.size() > 1) {
      // The product of the pieces' confidences: all of them must look like a digit.
      // The width rule's choice wins ties and small differences.
      auto score = [&](size_t a) {
        double lp = a == size_t(ch.pick) ? std::log(double(opt.verify_margin)) : 0.0;
        for (int j : where[i][a]) lp += j < 0 ? std::log(1e-6) : std::log(std::max(1e-6, double(verdict[size_t(j)].second)));
        return lp;
      };
      double best_s = score(best);
      for (size_t a = 0; a < ch.alts.size(); ++a)
        if (const double v = score(a); v > best_s) best_s = v, best = a;
    }
    for (const Candidate& c : ch.alts[best]) cands.push_back(c);
  }
  return finish(std::move(cands), st, opt);
}

std::vector<int> profile_cuts(const std::vector<float>& profile, int pieces) {
  const int n = int(profile.size());
  if (pieces < 2 || n < 2 * pieces) return {};
  // Smoothed ([1 2 1]) so a one-column gap in a thick stroke is not taken for a cut.
  std::vector<float> s(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    s[size_t(i)] = 0.25f * profile[size_t(std::max(0, i - 1))] + 0.5f * profile[size_t(i)] +
                   0.25f * profile[size_t(std::min(n - 1, i + 1))];
  const float top = std::max(1e-6f, *std::max_element(s.begin(), s.end()));
  const double share = double(n) / pieces;
  std::vector<int> cuts;
  int prev = 0;
  for (int j = 1; j < pieces; ++j) {
    // Search ±40 % of a share around the even cut; the ink there costs, and so does
    // (a little) the distance from the even cut, which breaks ties toward even pieces.
    const double ideal = j * share;
    const int a = std::max(prev + 1, int(std::ceil(ideal - 0.4 * share)));
    const int b = std::min(n - 1, int(std::floor(ideal + 0.4 * share)));
    int best = std::clamp(int(std::lround(ideal)), a, std::max(a, b));
    double best_cost = std::numeric_limits<double>::infinity();
    for (int c = a; c <= b; ++c) {
      const double cost = s[size_t(c)] / top + 0.25 * std::fabs(c - ideal) / share;
      if (cost < best_cost) best_cost = cost, best = c;
    }
    cuts.push_back(best);
    prev = best;
  }
  return cuts;
}

void deskew_digit(float* p) {
  constexpr int n = kDigitSide;
  double m = 0, mx = 0, my = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double v = p[y * n + x];
      m += v, mx += v * x, my += v * y;
    }
  if (m <= 0) return;
  const double cx = mx / m, cy = my / m;
  double mu11 = 0, mu02 = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double v = p[y * n + x];
      mu11 += v * (x - cx) * (y - cy);
      mu02 += v * (y - cy) * (y - cy);
    }
  if (mu02 <= 1e-6 * m) return;  // a flat horizontal stroke has no slant to measure
  // Clamped: a shear beyond 45° is not handwriting slant.
  const double alpha = std::clamp(mu11 / mu02, -1.0, 1.0);
  std::array<float, size_t(n) * n> out{};
  for (int y = 0; y < n; ++y) {
    const double shift = alpha * (y - cy);
    for (int x = 0; x < n; ++x) {
      const double u = x + shift;
      const int x0 = int(std::floor(u));
      const float f = float(u - x0);
      const float a = x0 >= 0 && x0 < n ? p[y * n + x0] : 0.f;
      const float b = x0 + 1 >= 0 && x0 + 1 < n ? p[y * n + x0 + 1] : 0.f;
      out[size_t(y) * n + x] = (1 - f) * a + f * b;
    }
  }
  std::copy(out.begin(), out.end(), p);
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

}  // namespace tape::vision
