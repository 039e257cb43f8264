#include "tape_vision/plot.hpp"

#include "tape_vision/draw.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tape::vision {

namespace {

constexpr Rgb kWhite{255, 255, 255}, kAxis{70, 70, 70}, kGrid{228, 228, 228}, kText{35, 35, 35};
// matplotlib's "tab10" palette.
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr int kGlyph = 7;  // cap height of the built-in font at scale 1

Rgb palette(int64_t k) { return kPalette[k % 10]; }
Rgb mix(Rgb c, Rgb to, double t) {
  auto m = [t](int a, int b) { return uint8_t(std::lround(a + (b - a) * t)); };
  return {m(c.r, to.r), m(c.g, to.g), m(c.b, to.b)};
}

struct Range {
  double lo, hi;
};

/// A 1-2-5 step giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

std::vector<double> ticks(Range r, double step) {
  std::vector<double> out;
  for (double k = std::ceil(r.lo / step - 1e-9); k * step <= r.hi + step * 1e-9; k += 1)
    out.push_back(std::abs(k) < 1e-12 ? 0.0 : k * step);
  return out;
}

std::string tick_label(double v, double step) {
  const int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// Text rotated 90° counter-clockwise (reads bottom to top), top-left at (x, y).
void draw_text_up(Image& img, int x, int y, const std::string& text, Rgb c) {
  const int w = text_width(text), h = text_height(text);
  Image tmp(w, h, 1, 255);
  draw_text(tmp, 0, 0, text, {0, 0, 0});
  for (int ty = 0; ty < h; ++ty)
    for (int tx = 0; tx < w; ++tx)
      if (*tmp.at(tx, ty) == 0) set_pixel(img, x + ty, y + w - 1 - tx, c);
}

/// The plotting rectangle and the data ranges it shows.
struct Frame {
  int x, y, w, h;
  Range xr, yr;
  double px(double v) const { return x + (v - xr.lo) / (xr.hi - xr.lo) * (w - 1); }
  double py(double v) const { return y + h - 1 - (v - yr.lo) / (yr.hi - yr.lo) * (h - 1); }
  double dx(double p) const { return xr.lo + (p - x) / (w - 1) * (xr.hi - xr.lo); }
  double dy(double p) const { return yr.lo + (y + h - 1 - p) / (h - 1) * (yr.hi - yr.lo); }
};

/// Widest y tick label, to size the left margin.
int y_label_width(Range yr, double step) {
  int w = 0;
  for (double v : ticks(yr, step)) w = std::max(w, text_width(tick_label(v, step)));
  return w;
}

/// Frame border, tick marks with numbers, optional grid, axis labels.
void draw_axes(Image& img, const Frame& f, double xstep, double ystep, bool grid, const std::string& x_label,
               const std::string& y_label) {
  for (double v : ticks(f.xr, xstep)) {
    const int p = int(std::lround(f.px(v)));
    if (grid) draw_line(img, p, f.y, p, f.y + f.h - 1, kGrid);
    draw_line(img, p, f.y + f.h, p, f.y + f.h + 4, kAxis);
    const std::string s = tick_label(v, xstep);
    draw_text(img, p - text_width(s) / 2, f.y + f.h + 8, s, kText);
  }
  for (double v : ticks(f.yr, ystep)) {
    const int p = int(std::lround(f.py(v)));
    if (grid) draw_line(img, f.x, p, f.x + f.w - 1, p, kGrid);
    draw_line(img, f.x - 5, p, f.x - 1, p, kAxis);
    const std::string s = tick_label(v, ystep);
    draw_text(img, f.x - 8 - text_width(s), p - kGlyph / 2, s, kText);
  }
  draw_rect(img, f.x - 1, f.y - 1, f.w + 2, f.h + 2, kAxis);
  if (!x_label.empty())
    draw_text(img, f.x + (f.w - text_width(x_label)) / 2, f.y + f.h + 24, x_label, kText);
  if (!y_label.empty())
    draw_text_up(img, f.x - 14 - y_label_width(f.yr, ystep) - kGlyph - 4, f.y + (f.h - text_width(y_label)) / 2,
                 y_label, kText);
}

/// A sample: a disc in colour `c` with a darker rim.
void draw_dot(Image& img, float x, float y, float r, Rgb c) {
  draw_line_smooth(img, x, y, x, y, mix(c, {0, 0, 0}, 0.5), 2 * r + 2);
  draw_line_smooth(img, x, y, x, y, c, 2 * r);
}

struct LegendEntry {
  std::string name;
  Rgb color;
  bool dot;  // a dot (scatter) rather than a line sample
};

/// Legend box in whichever corner of the frame covers the fewest of `xs, ys` (pixels).
void draw_legend(Image& img, const Frame& f, const std::vector<LegendEntry>& entries, const std::vector<double>& xs,
                 const std::vector<double>& ys) {
  if (entries.empty()) return;
  int text_w = 0;
  for (const auto& e : entries) text_w = std::max(text_w, text_width(e.name));
  const int row = 15, bw = 36 + text_w, bh = int(entries.size()) * row + 8, pad = 8;
  const int corners[4][2] = {{f.x + f.w - bw - pad, f.y + pad},
                             {f.x + pad, f.y + pad},
                             {f.x + f.w - bw - pad, f.y + f.h - bh - pad},
                             {f.x + pad, f.y + f.h - bh - pad}};
  int best = 0;
  size_t best_hits = SIZE_MAX;
  for (int c = 0; c < 4; ++c) {
    size_t hits = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      hits += xs[i] >= corners[c][0] - 4 && xs[i] <= corners[c][0] + bw + 4 && ys[i] >= corners[c][1] - 4 &&
              ys[i] <= corners[c][1] + bh + 4;
    if (hits < best_hits) best = c, best_hits = hits;
  }
  const int x = corners[best][0], y = corners[best][1];
  fill_rect(img, x, y, bw, bh, kWhite);
  draw_rect(img, x, y, bw, bh, {190, 190, 190});
  for (size_t i = 0; i < entries.size(); ++i) {
    const int cy = y + 4 + int(i) * row + row / 2;
    if (entries[i].dot) {
      draw_dot(img, x + 16.f, float(cy), 4.f, entries[i].color);
    } else {
      draw_line_smooth(img, x + 7.f, float(cy), x + 25.f, float(cy), entries[i].color, 2.5f);
    }
    draw_text(img, x + 31, cy - kGlyph / 2, entries[i].name, kText);
  }
}

void draw_title(Image& img, const std::string& title) {
  if (!title.empty()) draw_text(img, (img.width - text_width(title, 2)) / 2, 10, title, kText, 2);
}

}  // namespace

Image plot_curves(const std::vector<Series>& series, const PlotOptions& opt) {
  TAPE_CHECK(opt.width >= 120 && opt.height >= 100, "plot_curves: image size ", opt.width, "x", opt.height,
             " is too small (need at least 120x100)");
  // Data ranges over the finite points.
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  bool integer_x = true;
  for (const auto& s : series) {
    TAPE_CHECK(s.x.empty() || s.x.size() == s.y.size(), "plot_curves: series '", s.name, "' has ", s.x.size(),
               " x values but ", s.y.size(), " y values");
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? double(i + 1) : s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y), yhi = std::max(yhi, y);
      integer_x = integer_x && x == std::floor(x);
    }
  }
  if (xlo > xhi) xlo = 0, xhi = 1, ylo = 0, yhi = 1;  // nothing to draw: an empty chart
  if (opt.y_from_zero) ylo = std::min(ylo, 0.0), yhi = std::max(yhi, 0.0);
  if (xhi - xlo < 1e-12) xlo -= 1, xhi += 1;
  if (yhi - ylo < 1e-12) {
    const double d = std::max(std::abs(ylo) * 0.1, 1e-3);
    ylo -= d, yhi += d;
  }
  // A little headroom so lines and markers stay off the frame (not below a requested 0).
  const double xpad = 0.02 * (xhi - xlo), ypad = 0.03 * (yhi - ylo);
  xlo -= xpad, xhi += xpad;
  ylo = opt.y_from_zero && ylo == 0 ? 0.0 : ylo - ypad, yhi = opt.y_from_zero && yhi == 0 ? 0.0 : yhi + ypad;
  // The y range snaps outward to whole ticks unless fixed by the caller.
  const double ystep = nice_step((std::isnan(opt.y_max) ? yhi : opt.y_max) - (std::isnan(opt.y_min) ? ylo : opt.y_min), 6);
  const Range yr{std::isnan(opt.y_min) ? std::floor(ylo / ystep + 1e-9) * ystep : opt.y_min,
                 std::isnan(opt.y_max) ? std::ceil(yhi / ystep - 1e-9) * ystep : opt.y_max};
  TAPE_CHECK(yr.hi > yr.lo, "plot_curves: y range [", yr.lo, ", ", yr.hi, "] is empty");
  const Range xr{xlo, xhi};
  const double xstep = std::max(nice_step(xhi - xlo, 8), integer_x ? 1.0 : 0.0);  // integer x: whole ticks

  const int left = 12 + (opt.y_label.empty() ? 0 : kGlyph + 8) + y_label_width(yr, ystep) + 8;
  const int top = opt.title.empty() ? 16 : 40;
  const int bottom = 26 + (opt.x_label.empty() ? 0 : 16);
  Frame f{left, top, opt.width - left - 20, opt.height - top - bottom, xr, yr};
  TAPE_CHECK(f.w > 20 && f.h > 20, "plot_curves: image size ", opt.width, "x", opt.height,
             " leaves no room for the chart");

  Image img(opt.width, opt.height, 3, 255);
  draw_title(img, opt.title);
  draw_axes(img, f, xstep, ystep, true, opt.x_label, opt.y_label);

  std::vector<LegendEntry> legend;
  std::vector<double> all_px, all_py;
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const Rgb c = palette(int64_t(k));
    if (!s.name.empty()) legend.push_back({s.name, c, false});
    const bool markers = s.y.size() <= 40;
    bool have_prev = false;
    float px0 = 0, py0 = 0;
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? double(i + 1) : s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) {
        have_prev = false;
        continue;
      }
      // Clamp to the frame so a fixed y range does not draw outside it.
      const float px = float(std::clamp(f.px(x), double(f.x), double(f.x + f.w - 1)));
      const float py = float(std::clamp(f.py(y), double(f.y), double(f.y + f.h - 1)));
      if (have_prev) draw_line_smooth(img, px0, py0, px, py, c, 2.2f);
      if (markers) draw_line_smooth(img, px, py, px, py, c, 6.5f);
      all_px.push_back(px), all_py.push_back(py);
      px0 = px, py0 = py, have_prev = true;
    }
  }
  draw_legend(img, f, legend, all_px, all_py);
  return img;
}

Image plot_decision_regions(const Classifier& classify, const Tensor& points, const Tensor& labels, int width,
                            int height, const std::string& title) {
  TAPE_CHECK(points.defined() && points.dim() == 2 && points.size(1) == 2 && points.dtype() == Dtype::Float32,
             "plot_decision_regions: points must be Float32 [n, 2], got ",
             points.defined() ? points.shape() : Shape{});
  const int64_t n = points.size(0);
  TAPE_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == n && labels.dtype() == Dtype::Int64,
             "plot_decision_regions: labels must be Int64 [", n, "] to match points ", points.shape(), ", got ",
             labels.defined() ? labels.shape() : Shape{});
  TAPE_CHECK(width >= 120 && height >= 100, "plot_decision_regions: image size ", width, "x", height,
             " is too small (need at least 120x100)");
  const std::vector<float> xy = points.to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();

  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  int64_t num_classes = 0;
  for (int64_t i = 0; i < n; ++i) {
    TAPE_CHECK(y[i] >= 0, "plot_decision_regions: label ", y[i], " at index ", i, " is negative");
    num_classes = std::max(num_classes, y[i] + 1);
    xlo = std::min(xlo, double(xy[2 * i])), xhi = std::max(xhi, double(xy[2 * i]));
    ylo = std::min(ylo, double(xy[2 * i + 1])), yhi = std::max(yhi, double(xy[2 * i + 1]));
  }
  if (n == 0) xlo = ylo = -1, xhi = yhi = 1;
  const double mx = 0.08 * (xhi - xlo) + 0.1, my = 0.08 * (yhi - ylo) + 0.1;
  const Range xr{xlo - mx, xhi + mx}, yr{ylo - my, yhi + my};
  const double xstep = nice_step(xr.hi - xr.lo, 7), ystep = nice_step(yr.hi - yr.lo, 6);

  const int left = 12 + y_label_width(yr, ystep) + 8, top = title.empty() ? 12 : 40, bottom = 28;
  Frame f{left, top, width - left - 14, height - top - bottom, xr, yr};
  TAPE_CHECK(f.w > 20 && f.h > 20, "plot_decision_regions: image size ", width, "x", height,
             " leaves no room for the chart");
  Image img(width, height, 3, 255);

  // One classify() call over the centres of all 2x2-pixel cells of the frame.
  constexpr int kCell = 2;
  const int cols = (f.w + kCell - 1) / kCell, rows = (f.h + kCell - 1) / kCell;
  std::vector<float> grid;
  grid.reserve(size_t(cols) * rows * 2);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      grid.push_back(float(f.dx(f.x + c * kCell + 0.5 * (kCell - 1))));
      grid.push_back(float(f.dy(f.y + r * kCell + 0.5 * (kCell - 1))));
    }
  const std::vector<int64_t> pred = classify(grid);
  TAPE_CHECK(pred.size() == size_t(cols) * rows, "plot_decision_regions: classify returned ", pred.size(),
             " classes for ", size_t(cols) * rows, " points");
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int64_t k = pred[size_t(r) * cols + c];
      const Rgb shade = k >= 0 ? mix(palette(k), kWhite, 0.72) : Rgb{235, 235, 235};
      fill_rect(img, f.x + c * kCell, f.y + r * kCell, std::min(kCell, f.w - c * kCell),
                std::min(kCell, f.h - r * kCell), shade);
    }

  const float radius = std::clamp(float(std::min(f.w, f.h)) / 120.f, 2.5f, 6.f);
  std::vector<double> pxs, pys;
  for (int64_t i = 0; i < n; ++i) {
    const float px = float(f.px(xy[2 * i])), py = float(f.py(xy[2 * i + 1]));
    draw_dot(img, px, py, radius, palette(y[i]));
    pxs.push_back(px), pys.push_back(py);
  }
  draw_title(img, title);
  draw_axes(img, f, xstep, ystep, false, "", "");
  std::vector<LegendEntry> legend;
  for (int64_t k = 0; k < std::min<int64_t>(num_classes, 10); ++k) legend.push_back({cat("class ", k), palette(k), true});
  draw_legend(img, f, legend, pxs, pys);
  return img;
}

}  // namespace tape::vision
