#pragma once
/// \file Drawing on an Image with cairo (anti-aliased lines, discs, text in
/// DejaVu Sans), for the pictures the examples and tools write. Part of
/// tape_vision, not of libtape. cairo stays out of this header.
#include <memory>
#include <string>
#include <vector>

#include "tape/data/image.hpp"

namespace tape::vision {
using data::Image;
using data::Rgb;

/// The typeface of every picture (fontconfig picks a fallback if it is missing).
inline constexpr const char* kFontFamily = "DejaVu Sans";

struct Point {
  double x = 0, y = 0;
};

/// Size of a piece of text in pixels: `width` is the widest line's advance,
/// `height` = lines x (ascent + descent), `ascent` of the first line; the inked
/// part of the box spans rows ink_top .. ink_bottom from its top (tighter than
/// the font's ascent and descent: "42" has no descender).
struct TextSize {
  double width = 0, height = 0, ascent = 0, ink_top = 0, ink_bottom = 0;
};

/// Where a text is placed relative to its anchor point: fractions of its box
/// (0, 0) = top-left at the point, (0.5, 1) = centred above it, ...
struct Anchor {
  double x = 0, y = 0;
};

/// A cairo drawing surface over (a region of) an Image. The pixels are copied
/// into a cairo image surface on construction and back by flush() or the
/// destructor; pixels that no drawing touched are left exactly as they were.
/// 1- and 3-channel images are drawn as RGB (a grey image receives the luma),
/// 2- and 4-channel ones as RGBA (drawing is composited over their alpha).
/// Coordinates are the image's, in pixels: (0, 0) is the top-left corner of the
/// top-left pixel, so a pixel's centre is at (x + 0.5, y + 0.5). Drawing is
/// anti-aliased unless set_antialias(false). A failing cairo call throws
/// tape::Error.
class Canvas {
 public:
  /// The whole image; `img` must outlive the canvas.
  explicit Canvas(Image& img);
  /// Only the pixels of (x, y, w, h), clipped to the image: cheaper for a small
  /// drawing on a large image. Coordinates stay those of the image.
  Canvas(Image& img, int x, int y, int w, int h);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  void set_antialias(bool on);
  /// Restricts drawing to the rectangle (x, y, w, h) until unclip().
  void clip(double x, double y, double w, double h);
  void unclip();
  /// Filled rectangle; `alpha` < 1 blends it over what is below.
  void fill_rect(double x, double y, double w, double h, Rgb c, double alpha = 1.0);
  /// Rectangle outline `width` pixels wide, drawn inside (x, y, w, h).
  void stroke_rect(double x, double y, double w, double h, Rgb c, double width = 1.0);
  /// Filled rectangle with corners rounded by `radius`, outlined in `edge` (if edge_width > 0).
  void rounded_rect(double x, double y, double w, double h, double radius, Rgb fill, double alpha, Rgb edge,
                    double edge_width);
  /// Straight line with round caps (square ones if `round` is false).
  void line(Point a, Point b, Rgb c, double width = 1.0, bool round = true);
  /// Connected line through `points` with round joins and caps.
  void polyline(const std::vector<Point>& points, Rgb c, double width = 1.0);
  /// Disc of radius `r`; if edge_width > 0 its rim is stroked in `edge`.
  void circle(Point centre, double r, Rgb fill, double edge_width = 0, Rgb edge = {});
  /// `img` (3-channel) scaled by `scale` with bilinear filtering, top-left at (x, y).
  void image(const Image& img, double x, double y, double scale);
  /// Text of `size` px (the em size) at `at`, placed by `anchor`; '\n' starts a
  /// new line. `vertical` turns it 90° counter-clockwise (reading bottom to top;
  /// the anchor then refers to the turned box). Text must be UTF-8.
  void text(Point at, const std::string& text, double size, Rgb c, Anchor anchor = {}, bool vertical = false);
  /// Size of `text` as text() draws it.
  TextSize measure(const std::string& text, double size) const;
  /// Copies the drawing into the image (also done by the destructor).
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Size of `text` at `size` px without an image to draw on.
TextSize measure_text(const std::string& text, double size);

// Free functions for one-off drawing: coordinates may lie partly outside the
// image (clipped). On 1- or 2-channel images the colour's luma is drawn; alpha
// is set opaque where drawn.

/// Sets one pixel (ignored outside the image).
void set_pixel(Image& img, int x, int y, Rgb c);
/// Filled rectangle with top-left (x, y), whole pixels.
void fill_rect(Image& img, int x, int y, int w, int h, Rgb c);
/// Rectangle outline, `thickness` whole pixels wide, drawn inside (x, y, w, h).
void draw_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness = 1);
/// Aliased straight line between pixel centres with a square pen of `thickness`
/// pixels: crisp, for masks and synthetic test images.
void draw_line(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
/// Anti-aliased line of `width` pixels with round caps, between the sub-pixel
/// positions (x0, y0) and (x1, y1) given as pixel-centre coordinates (pixel
/// (x, y) is the point (x, y)); a zero-length line is a disc of diameter `width`.
void draw_line_smooth(Image& img, float x0, float y0, float x1, float y1, Rgb c, float width = 1.f);
/// Anti-aliased disc of radius `r` centred on pixel (cx, cy).
void fill_circle(Image& img, int cx, int cy, int r, Rgb c);
/// Text in DejaVu Sans of `size` px, its box's top-left at (x, y); '\n' starts a new line.
void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, double size = 13);
/// Size in whole pixels (rounded up) of `text` as draw_text renders it at `size` px.
int text_width(const std::string& text, double size = 13);
int text_height(const std::string& text, double size = 13);

}  // namespace tape::vision
