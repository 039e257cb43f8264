#pragma once
/// \file Small raster charts: training curves and 2-D decision regions.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"
#include "tape/data/image.hpp"

namespace tape::vision {
using data::Image;

/// One line of a chart. Non-finite y values leave a gap.
struct Series {
  std::string name;  ///< legend entry ("" = not listed)
  std::vector<double> y;
  std::vector<double> x;  ///< empty → 1, 2, ..., y.size() (e.g. epochs)
};

struct PlotOptions {
  int width = 640, height = 400;
  std::string title, x_label, y_label;
  bool y_from_zero = false;  ///< stretch the y range to include 0
  /// Fixed y range where set (e.g. 0..1 for accuracy); NaN = fit the data.
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
};

/// Line chart in matplotlib's default look, drawn with cairo: white, tab10
/// colours, anti-aliased lines (with dots when a series has at most 40 points),
/// light grid, ticks with labels, title and axis labels in DejaVu Sans, and a
/// legend of the named series where it hides the least data (upper right first).
/// Throws tape::Error for an image under 120x100, a series whose x and y sizes
/// differ, a series of NaNs only, or no point at all.
Image plot_curves(const std::vector<Series>& series, const PlotOptions& options = {});

/// Maps k points [x0, y0, x1, y1, ...] to k class ids.
using Classifier = std::function<std::vector<int64_t>(const std::vector<float>& xy)>;

/// The plane around `points` [n, 2] in light class colours by `classify` (called
/// once, on the whole grid), with the samples drawn as dark-edged dots in their
/// `labels` [n] (Int64) class colour, axes with numbered ticks, and a legend.
Image plot_decision_regions(const Classifier& classify, const Tensor& points, const Tensor& labels, int width = 600,
                            int height = 480, const std::string& title = "");

}  // namespace tape::vision
