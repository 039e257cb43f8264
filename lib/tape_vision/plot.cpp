#include "tape_vision/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tape_vision/draw.hpp"

namespace tape::vision {

namespace {

// The look follows matplotlib's default style at 100 dpi: 10 pt text (~13 px),
// a 12 pt title, 3.5 pt ticks, 1.5 pt lines, tab10 colours, a rounded legend box.
constexpr double kTickFont = 13, kLabelFont = 13, kTitleFont = 16, kLegendFont = 12.5;
constexpr double kTickLen = 5, kPad = 5, kEdge = 8, kLineWidth = 1.75;
constexpr Rgb kWhite{255, 255, 255}, kSpine{38, 38, 38}, kGrid{225, 225, 225}, kText{20, 20, 20};
// matplotlib's "tab10" palette.
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

Rgb palette(int64_t k) { return kPalette[k % 10]; }
Rgb mix(Rgb c, Rgb to, double t) {
  auto m = [t](int a, int b) { return uint8_t(std::lround(a + (b - a) * t)); };
  return {m(c.r, to.r), m(c.g, to.g), m(c.b, to.b)};
}

struct Range {
  double lo, hi;
};

/// A 1-2-2.5-5 step giving about `target` intervals over `span` (matplotlib's steps).
double nice_step(double span, double target) {
  const double raw = span / std::max(target, 1.0), mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7 ? 5 : 10) * mag;
}

/// Tick positions and their labels along one axis.
struct Axis {
  Range r;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

Axis make_axis(Range r, double step) {
  Axis a{r, {}, {}};
  // Decimals enough for the step (2.5 needs one more than 2 or 5).
  const double mag = std::floor(std::log10(step) + 1e-9);
  const bool two_and_a_half = std::abs(step / std::pow(10.0, mag) - 2.5) < 1e-9;
  const int decimals = std::max(0, int(-mag) + (two_and_a_half ? 1 : 0));
  for (double k = std::ceil(r.lo / step - 1e-9); k * step <= r.hi + step * 1e-9; k += 1) {
    const double v = std::abs(k) < 1e-12 ? 0.0 : k * step;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    a.ticks.push_back(v);
    a.labels.push_back(buf);
  }
  return a;
}

double widest(const Canvas& cv, const std::vector<std::string>& texts, double size) {
  double w = 0;
  for (const auto& t : texts) w = std::max(w, cv.measure(t, size).width);
  return w;
}

/// The plotting rectangle (whole pixels) and the data ranges it shows.
struct Frame {
  int x, y, w, h;
  Range xr, yr;
  double px(double v) const { return x + (v - xr.lo) / (xr.hi - xr.lo) * w; }
  double py(double v) const { return y + h - (v - yr.lo) / (yr.hi - yr.lo) * h; }
  double dx(double p) const { return xr.lo + (p - x) / w * (xr.hi - xr.lo); }
  double dy(double p) const { return yr.lo + (y + h - p) / h * (yr.hi - yr.lo); }
};

struct Texts {
  std::string title, x_label, y_label;
};

/// Ticks for an x axis `pixels` wide: about 8 intervals, fewer where the labels
/// would crowd; whole steps for integer data (epochs).
Axis x_axis_for(const Canvas& cv, Range r, double pixels, bool integer) {
  const double label_w = widest(cv, make_axis(r, nice_step(r.hi - r.lo, 8)).labels, kTickFont);
  const double step = nice_step(r.hi - r.lo, std::min(8.0, pixels / (label_w + 20)));
  return make_axis(r, integer ? std::max(step, 1.0) : step);
}

/// The frame and the x axis. Margins come from the text extents: the y label,
/// the widest y tick label and the ticks on the left; tick labels and the x
/// label below; the title above; half the last x tick label on the right.
std::pair<Frame, Axis> layout(const Canvas& cv, int width, int height, Range xr, bool integer_x, const Axis& ya,
                              const Texts& t, const char* who) {
  const double tick_h = cv.measure("0", kTickFont).height, label_h = cv.measure("Ag", kLabelFont).height;
  const double left =
      kEdge + (t.y_label.empty() ? 0 : label_h + kPad) + widest(cv, ya.labels, kTickFont) + kPad + kTickLen;
  const double top = t.title.empty() ? kEdge + tick_h / 2 : kEdge + cv.measure(t.title, kTitleFont).height + 2 * kPad;
  const double bottom = kEdge + kTickLen + kPad + tick_h + (t.x_label.empty() ? 0 : kPad + label_h);
  const int x = int(std::ceil(left)), y = int(std::ceil(top)), h = height - y - int(std::ceil(bottom));
  // The right margin depends on the last x label, which depends on the width: estimate, then settle.
  const Axis probe = x_axis_for(cv, xr, width - x - 2 * kEdge, integer_x);
  const double right = kEdge + (probe.labels.empty() ? 0 : cv.measure(probe.labels.back(), kTickFont).width / 2);
  const int w = width - x - int(std::ceil(std::max(right, 2 * kEdge)));
  TAPE_CHECK(w > 20 && h > 20, who, ": image size ", width, "x", height, " leaves no room for the chart");
  return {Frame{x, y, w, h, xr, ya.r}, x_axis_for(cv, xr, w, integer_x)};
}

/// Light grid (optional), spines, ticks with labels, axis labels and title.
void draw_axes(Canvas& cv, const Frame& f, const Axis& xa, const Axis& ya, bool grid, const Texts& t) {
  // 1-px lines sit on pixel centres to stay crisp.
  auto snap = [](double p) { return std::floor(p) + 0.5; };
  const double bottom = f.y + f.h, right = f.x + f.w;
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    const double p = snap(std::min(f.px(xa.ticks[i]), right - 0.5));
    if (grid) cv.line({p, double(f.y)}, {p, bottom}, kGrid, 1, false);
    cv.line({p, bottom + 0.5}, {p, bottom + kTickLen}, kSpine, 1, false);
    cv.text({p, bottom + kTickLen + kPad}, xa.labels[i], kTickFont, kText, {0.5, 0});
  }
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    const double p = snap(std::min(f.py(ya.ticks[i]), bottom - 0.5));
    if (grid) cv.line({double(f.x), p}, {right, p}, kGrid, 1, false);
    cv.line({f.x - kTickLen, p}, {f.x - 0.5, p}, kSpine, 1, false);
    cv.text({f.x - kTickLen - kPad, p}, ya.labels[i], kTickFont, kText, {1, 0.5});
  }
  cv.stroke_rect(f.x - 1, f.y - 1, f.w + 2, f.h + 2, kSpine, 1);
  const double cx = f.x + f.w / 2.0, cy = f.y + f.h / 2.0;
  if (!t.x_label.empty())
    cv.text({cx, bottom + kTickLen + 2 * kPad + cv.measure("0", kTickFont).height}, t.x_label, kLabelFont, kText,
            {0.5, 0});
  if (!t.y_label.empty()) cv.text({kEdge, cy}, t.y_label, kLabelFont, kText, {0, 0.5}, true);
  if (!t.title.empty()) cv.text({cx, f.y - 2 * kPad}, t.title, kTitleFont, kText, {0.5, 1});
}

struct LegendEntry {
  std::string name;
  Rgb color;
  bool dot;  // a dot (scatter) rather than a line sample
};

/// Points every ~2 px along a polyline, for counting what a legend would hide.
void sample_segment(Point a, Point b, std::vector<Point>& out) {
  const int n = std::max(1, int(std::hypot(b.x - a.x, b.y - a.y) / 2));
  for (int i = 1; i <= n; ++i) out.push_back({a.x + (b.x - a.x) * i / n, a.y + (b.y - a.y) * i / n});
}

/// Legend box (matplotlib's "best" location): the first of upper right, upper
/// left, lower left, lower right, right, left, lower centre, upper centre that
/// covers the fewest of the `data` points.
void draw_legend(Canvas& cv, const Frame& f, const std::vector<LegendEntry>& entries, const std::vector<Point>& data) {
  if (entries.empty()) return;
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  const double em = kLegendFont, pad = 0.4 * em, handle = 2 * em, gap = 0.8 * em, spacing = 0.5 * em, margin = 0.5 * em;
  const double row = cv.measure("Ag", kLegendFont).height, n = double(entries.size());
  const double bw = 2 * pad + handle + gap + widest(cv, names, kLegendFont), bh = 2 * pad + n * row + (n - 1) * spacing;
  const double where[8][2] = {{1, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 0.5}, {0, 0.5}, {0.5, 1}, {0.5, 0}};
  double bx = 0, by = 0;
  size_t best = SIZE_MAX;
  for (const auto& [fx, fy] : where) {
    const double x = f.x + margin + fx * (f.w - 2 * margin - bw), y = f.y + margin + fy * (f.h - 2 * margin - bh);
    const size_t hits = size_t(std::count_if(data.begin(), data.end(), [&](Point p) {
      return p.x >= x - 2 && p.x <= x + bw + 2 && p.y >= y - 2 && p.y <= y + bh + 2;
    }));
    if (hits < best) best = hits, bx = x, by = y;
  }
  bx = std::round(bx), by = std::round(by);
  cv.rounded_rect(bx + 0.5, by + 0.5, bw, bh, 0.2 * em, kWhite, 0.8, {204, 204, 204}, 1);
  for (size_t i = 0; i < entries.size(); ++i) {
    const double cy = by + pad + double(i) * (row + spacing) + row / 2, hx = bx + pad;
    if (entries[i].dot)
      cv.circle({hx + handle / 2, cy}, 4.5, entries[i].color, 0.8, {25, 25, 25});
    else
      cv.line({hx, cy}, {hx + handle, cy}, entries[i].color, kLineWidth, false);
    cv.text({hx + handle + gap, cy}, entries[i].name, kLegendFont, kText, {0, 0.5});
  }
}

/// Data range of the finite points of `series`; throws on mismatched or NaN-only series.
struct Extent {
  Range x{INFINITY, -INFINITY}, y{INFINITY, -INFINITY};
  bool integer_x = true;
};

Extent extent_of(const std::vector<Series>& series) {
  Extent e;
  for (const auto& s : series) {
    TAPE_CHECK(s.x.empty() || s.x.size() == s.y.size(), "plot_curves: series '", s.name, "' has ", s.x.size(),
               " x values but ", s.y.size(), " y values");
    bool any = false;
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? double(i + 1) : s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      e.x = {std::min(e.x.lo, x), std::max(e.x.hi, x)}, e.y = {std::min(e.y.lo, y), std::max(e.y.hi, y)};
      e.integer_x = e.integer_x && x == std::floor(x);
      any = true;
    }
    TAPE_CHECK(any || s.y.empty(), "plot_curves: series '", s.name, "' has no finite point (all ", s.y.size(),
               " values are NaN or infinite)");
  }
  TAPE_CHECK(e.x.lo <= e.x.hi, "plot_curves: nothing to plot (", series.size(), " series, no points)");
  return e;
}

/// The y range: the data with a little headroom (none below a requested 0),
/// snapped outward to whole ticks unless fixed by the caller.
Axis y_axis_for(Range y, const PlotOptions& opt, double frame_h) {
  if (opt.y_from_zero) y = {std::min(y.lo, 0.0), std::max(y.hi, 0.0)};
  if (y.hi - y.lo < 1e-12) {
    const double d = std::max(std::abs(y.lo) * 0.1, 1e-3);
    y = {y.lo - d, y.hi + d};
  }
  const double pad = 0.03 * (y.hi - y.lo);
  y = {opt.y_from_zero && y.lo == 0 ? 0.0 : y.lo - pad, opt.y_from_zero && y.hi == 0 ? 0.0 : y.hi + pad};
  const Range fixed{std::isnan(opt.y_min) ? y.lo : opt.y_min, std::isnan(opt.y_max) ? y.hi : opt.y_max};
  const double step = nice_step(fixed.hi - fixed.lo, std::clamp(frame_h / 55, 3.0, 8.0));
  const Range r{std::isnan(opt.y_min) ? std::floor(y.lo / step + 1e-9) * step : opt.y_min,
                std::isnan(opt.y_max) ? std::ceil(y.hi / step - 1e-9) * step : opt.y_max};
  TAPE_CHECK(r.hi > r.lo, "plot_curves: y range [", r.lo, ", ", r.hi, "] is empty");
  return make_axis(r, step);
}

/// A series' finite points in pixels, split into runs at the gaps.
std::vector<std::vector<Point>> runs_of(const Series& s, const Frame& f) {
  std::vector<std::vector<Point>> runs(1);
  for (size_t i = 0; i < s.y.size(); ++i) {
    const double x = s.x.empty() ? double(i + 1) : s.x[i], y = s.y[i];
    if (std::isfinite(x) && std::isfinite(y))
      runs.back().push_back({f.px(x), f.py(y)});
    else if (!runs.back().empty())
      runs.emplace_back();
  }
  return runs;
}

/// One series' lines, and dots where it has few points (e.g. epochs), as
/// `plot(..., marker="o")` would; adds points along what it drew to `drawn`.
void draw_series(Canvas& cv, const Frame& f, const Series& s, Rgb c, std::vector<Point>& drawn) {
  for (const auto& run : runs_of(s, f)) {
    cv.polyline(run, c, kLineWidth);
    if (s.y.size() <= 40)
      for (Point p : run) cv.circle(p, 2.75, c);
    if (!run.empty()) drawn.push_back(run[0]);
    for (size_t i = 1; i < run.size(); ++i) sample_segment(run[i - 1], run[i], drawn);
  }
}

/// Side of the square cells the decision regions are computed on, in pixels.
constexpr int kCell = 2;

/// The frame's decision regions in light class colours, one pixel per cell,
/// from one classify() call over the centres of all cells (cairo scales the
/// image up with bilinear filtering, which smooths the borders).
Image region_cells(const Classifier& classify, const Frame& f) {
  const int cols = (f.w + kCell - 1) / kCell, rows = (f.h + kCell - 1) / kCell;
  std::vector<float> grid;
  grid.reserve(size_t(cols) * size_t(rows) * 2);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      grid.push_back(float(f.dx(f.x + (c + 0.5) * kCell)));
      grid.push_back(float(f.dy(f.y + (r + 0.5) * kCell)));
    }
  const std::vector<int64_t> pred = classify(grid);
  TAPE_CHECK(pred.size() == size_t(cols) * size_t(rows), "plot_decision_regions: classify returned ", pred.size(),
             " classes for ", size_t(cols) * size_t(rows), " points");
  Image cells(cols, rows, 3);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int64_t k = pred[size_t(r) * size_t(cols) + size_t(c)];
      const Rgb shade = k >= 0 ? mix(palette(k), kWhite, 0.7) : Rgb{235, 235, 235};
      uint8_t* p = cells.at(c, r);
      p[0] = shade.r, p[1] = shade.g, p[2] = shade.b;
    }
  return cells;
}

/// A white RGB image with `draw(canvas)` on it. The canvas writes its pixels
/// back when it goes out of scope, before the image is returned.
template <class Draw>
Image render(int width, int height, Draw draw) {
  Image img(width, height, 3, 255);
  {
    Canvas cv(img);
    draw(cv);
  }
  return img;
}

void check_size(int width, int height, const char* who) {
  TAPE_CHECK(width >= 120 && height >= 100, who, ": image size ", width, "x", height,
             " is too small (need at least 120x100)");
}

}  // namespace

Image plot_curves(const std::vector<Series>& series, const PlotOptions& opt) {
  check_size(opt.width, opt.height, "plot_curves");
  Extent e = extent_of(series);
  if (e.x.hi - e.x.lo < 1e-12) e.x = {e.x.lo - 1, e.x.hi + 1};
  const double xpad = 0.02 * (e.x.hi - e.x.lo);
  const Range xr{e.x.lo - xpad, e.x.hi + xpad};

  return render(opt.width, opt.height, [&](Canvas& cv) {
    const Texts texts{opt.title, opt.x_label, opt.y_label};
    const Axis ya = y_axis_for(e.y, opt, opt.height - 90.0);
    const auto [f, xa] = layout(cv, opt.width, opt.height, xr, e.integer_x, ya, texts, "plot_curves");
    draw_axes(cv, f, xa, ya, true, texts);

    std::vector<LegendEntry> legend;
    std::vector<Point> drawn;
    cv.clip(f.x, f.y, f.w, f.h);  // a fixed y range cuts the lines at the frame, as matplotlib does
    for (size_t k = 0; k < series.size(); ++k) {
      if (!series[k].name.empty()) legend.push_back({series[k].name, palette(int64_t(k)), false});
      draw_series(cv, f, series[k], palette(int64_t(k)), drawn);
    }
    cv.unclip();
    draw_legend(cv, f, legend, drawn);
  });
}

Image plot_decision_regions(const Classifier& classify, const Tensor& points, const Tensor& labels, int width,
                            int height, const std::string& title) {
  TAPE_CHECK(points.defined() && points.dim() == 2 && points.size(1) == 2 && points.dtype() == Dtype::Float32,
             "plot_decision_regions: points must be Float32 [n, 2], got ", points.defined() ? points.shape() : Shape{});
  const int64_t n = points.size(0);
  TAPE_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == n && labels.dtype() == Dtype::Int64,
             "plot_decision_regions: labels must be Int64 [", n, "] to match points ", points.shape(), ", got ",
             labels.defined() ? labels.shape() : Shape{});
  check_size(width, height, "plot_decision_regions");
  const std::vector<float> xy = points.to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();

  Range xs{INFINITY, -INFINITY}, ys{INFINITY, -INFINITY};
  int64_t num_classes = 0;
  for (int64_t i = 0; i < n; ++i) {
    TAPE_CHECK(y[i] >= 0, "plot_decision_regions: label ", y[i], " at index ", i, " is negative");
    num_classes = std::max(num_classes, y[i] + 1);
    xs = {std::min(xs.lo, double(xy[2 * i])), std::max(xs.hi, double(xy[2 * i]))};
    ys = {std::min(ys.lo, double(xy[2 * i + 1])), std::max(ys.hi, double(xy[2 * i + 1]))};
  }
  if (n == 0) xs = ys = {-1, 1};
  const double mx = 0.08 * (xs.hi - xs.lo) + 0.1, my = 0.08 * (ys.hi - ys.lo) + 0.1;
  const Range xr{xs.lo - mx, xs.hi + mx}, yr{ys.lo - my, ys.hi + my};

  return render(width, height, [&](Canvas& cv) {
    const Texts texts{title, "", ""};
    const Axis ya = make_axis(yr, nice_step(yr.hi - yr.lo, std::clamp((height - 90.0) / 50, 3.0, 7.0)));
    const auto [f, xa] = layout(cv, width, height, xr, false, ya, texts, "plot_decision_regions");
    cv.clip(f.x, f.y, f.w, f.h);
    cv.image(region_cells(classify, f), f.x, f.y, kCell);

    const double radius = std::clamp(std::min(f.w, f.h) / 110.0, 2.5, 5.5);
    std::vector<Point> drawn;
    for (int64_t i = 0; i < n; ++i) {
      const Point p{f.px(xy[2 * i]), f.py(xy[2 * i + 1])};
      cv.circle(p, radius, palette(y[i]), 0.8, {25, 25, 25});
      drawn.push_back(p);
    }
    cv.unclip();
    draw_axes(cv, f, xa, ya, false, texts);
    std::vector<LegendEntry> legend;
    for (int64_t k = 0; k < std::min<int64_t>(num_classes, 10); ++k)
      legend.push_back({str_cat("class ", k), palette(k), true});
    draw_legend(cv, f, legend, drawn);
  });
}

}  // namespace tape::vision
