#include "tape_vision/draw.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "tape/core/error.hpp"

namespace tape::vision {

namespace {

uint8_t luma(int r, int g, int b) { return uint8_t((299 * r + 587 * g + 114 * b + 500) / 1000); }

void check(cairo_status_t status, const char* what) {
  TAPE_CHECK(status == CAIRO_STATUS_SUCCESS, "cairo: ", what, " failed: ", cairo_status_to_string(status));
}

double unit(uint8_t v) { return v / 255.0; }

/// cairo's RGB24/ARGB32 pixel (native-endian 32-bit word, alpha premultiplied)
/// from an Image pixel, and back.
uint32_t to_cairo(const uint8_t* p, int channels) {
  uint32_t r, g, b, a = 255;
  if (channels >= 3)
    r = p[0], g = p[1], b = p[2];
  else
    r = g = b = p[0];
  if (channels == 2 || channels == 4) {
    a = p[channels - 1];
    r = (r * a + 127) / 255, g = (g * a + 127) / 255, b = (b * a + 127) / 255;
  }
  return a << 24 | r << 16 | g << 8 | b;
}

void from_cairo(uint32_t px, uint8_t* p, int channels) {
  uint32_t a = px >> 24, r = px >> 16 & 255, g = px >> 8 & 255, b = px & 255;
  if (channels == 2 || channels == 4) {
    if (a > 0 && a < 255) r = (r * 255 + a / 2) / a, g = (g * 255 + a / 2) / a, b = (b * 255 + a / 2) / a;
    p[channels - 1] = uint8_t(a);
  }
  if (channels >= 3)
    p[0] = uint8_t(r), p[1] = uint8_t(g), p[2] = uint8_t(b);
  else
    p[0] = luma(int(r), int(g), int(b));
}

/// Splits at '\n'.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out(1);
  for (char ch : text) {
    if (ch == '\n')
      out.emplace_back();
    else
      out.back() += ch;
  }
  return out;
}

void select_font(cairo_t* cr, double size) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

TextSize measure_on(cairo_t* cr, const std::string& text, double size) {
  select_font(cr, size);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const std::vector<std::string> lines = lines_of(text);
  const double line_h = fe.ascent + fe.descent;
  TextSize out{0, double(lines.size()) * line_h, fe.ascent, INFINITY, -INFINITY};
  for (size_t i = 0; i < lines.size(); ++i) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, lines[i].c_str(), &te);
    // The advance, or the ink's right edge where a glyph overhangs it.
    out.width = std::max({out.width, te.x_advance, te.x_bearing + te.width});
    if (te.height <= 0) continue;  // blank line
    const double baseline = double(i) * line_h + fe.ascent;
    out.ink_top = std::min(out.ink_top, baseline + te.y_bearing);
    out.ink_bottom = std::max(out.ink_bottom, baseline + te.y_bearing + te.height);
  }
  if (out.ink_top > out.ink_bottom) out.ink_top = out.ink_bottom = 0;  // no ink at all
  check(cairo_status(cr), "measuring text");
  return out;
}

/// A context on a 1x1 surface, for measuring text without an image.
struct Scratch {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t* cr = cairo_create(surface);
  ~Scratch() {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
  }
};

}  // namespace

struct Canvas::Impl {
  Image* img = nullptr;
  int x0 = 0, y0 = 0, w = 0, h = 0;  // the region of img this canvas covers
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
  std::vector<uint32_t> before;  // the region as first copied in, to leave untouched pixels alone

  bool has_alpha() const { return img->channels == 2 || img->channels == 4; }
  uint32_t* row(int y) const {
    return reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(surface) +
                                       size_t(y) * size_t(cairo_image_surface_get_stride(surface)));
  }
  void set_source(Rgb c, double alpha = 1.0) const {
    cairo_set_source_rgba(cr, unit(c.r), unit(c.g), unit(c.b), alpha);
  }
  /// Raises any error of the drawing call just made.
  void done(const char* what) const { check(cairo_status(cr), what); }
  /// Fills the current path, strokes its rim in `edge` if edge_width > 0, and clears it.
  void fill_and_edge(Rgb fill, double alpha, Rgb edge, double edge_width, const char* what) const {
    set_source(fill, alpha);
    cairo_fill_preserve(cr);
    if (edge_width > 0) {
      cairo_set_line_width(cr, edge_width);
      set_source(edge);
      cairo_stroke_preserve(cr);
    }
    cairo_new_path(cr);
    done(what);
  }
};

Canvas::Canvas(Image& img) : Canvas(img, 0, 0, img.width, img.height) {}

Canvas::Canvas(Image& img, int x, int y, int w, int h) : impl_(std::make_unique<Impl>()) {
  TAPE_CHECK(img.channels >= 1 && img.channels <= 4, "Canvas: image has ", img.channels, " channels (need 1 to 4)");
  Impl& m = *impl_;
  m.img = &img;
  m.x0 = std::clamp(x, 0, img.width), m.y0 = std::clamp(y, 0, img.height);
  m.w = std::clamp(x + w, 0, img.width) - m.x0, m.h = std::clamp(y + h, 0, img.height) - m.y0;
  m.surface = cairo_image_surface_create(m.has_alpha() ? CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24, m.w, m.h);
  check(cairo_surface_status(m.surface), "creating a surface");
  m.cr = cairo_create(m.surface);
  check(cairo_status(m.cr), "creating a context");
  cairo_translate(m.cr, -m.x0, -m.y0);  // callers use image coordinates
  m.before.resize(size_t(m.w) * size_t(m.h));
  cairo_surface_flush(m.surface);
  for (int yy = 0; yy < m.h; ++yy) {
    uint32_t* dst = m.row(yy);
    for (int xx = 0; xx < m.w; ++xx) dst[xx] = to_cairo(img.at(m.x0 + xx, m.y0 + yy), img.channels);
    std::memcpy(&m.before[size_t(yy) * size_t(m.w)], dst, size_t(m.w) * sizeof(uint32_t));
  }
  cairo_surface_mark_dirty(m.surface);
}

Canvas::~Canvas() {
  if (!impl_) return;
  flush();
  cairo_destroy(impl_->cr);
  cairo_surface_destroy(impl_->surface);
}

void Canvas::flush() {
  Impl& m = *impl_;
  cairo_surface_flush(m.surface);
  for (int yy = 0; yy < m.h; ++yy) {
    const uint32_t* src = m.row(yy);
    uint32_t* old = &m.before[size_t(yy) * size_t(m.w)];
    for (int xx = 0; xx < m.w; ++xx)
      if (src[xx] != old[xx]) {  // a round trip through premultiplied alpha is lossy: skip untouched pixels
        from_cairo(src[xx], m.img->at(m.x0 + xx, m.y0 + yy), m.img->channels);
        old[xx] = src[xx];
      }
  }
}

void Canvas::set_antialias(bool on) {
  cairo_set_antialias(impl_->cr, on ? CAIRO_ANTIALIAS_DEFAULT : CAIRO_ANTIALIAS_NONE);
}

void Canvas::clip(double x, double y, double w, double h) {
  cairo_reset_clip(impl_->cr);
  cairo_rectangle(impl_->cr, x, y, std::max(w, 0.0), std::max(h, 0.0));
  cairo_clip(impl_->cr);
}

void Canvas::unclip() { cairo_reset_clip(impl_->cr); }

void Canvas::fill_rect(double x, double y, double w, double h, Rgb c, double alpha) {
  if (w <= 0 || h <= 0) return;
  cairo_t* cr = impl_->cr;
  cairo_rectangle(cr, x, y, w, h);
  impl_->set_source(c, alpha);
  cairo_fill(cr);
  impl_->done("fill_rect");
}

void Canvas::stroke_rect(double x, double y, double w, double h, Rgb c, double width) {
  // Inside the rectangle: the stroke's centre line runs width/2 in from its edges;
  // an outline wider than half the rectangle is a filled rectangle.
  if (w <= 0 || h <= 0 || width <= 0) return;
  if (2 * width >= std::min(w, h)) return fill_rect(x, y, w, h, c);
  cairo_t* cr = impl_->cr;
  cairo_rectangle(cr, x + width / 2, y + width / 2, w - width, h - width);
  cairo_set_line_width(cr, width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
  impl_->set_source(c);
  cairo_stroke(cr);
  impl_->done("stroke_rect");
}

void Canvas::rounded_rect(double x, double y, double w, double h, double radius, Rgb fill, double alpha, Rgb edge,
                          double edge_width) {
  cairo_t* cr = impl_->cr;
  const double r = std::clamp(radius, 0.0, std::min(w, h) / 2), pi = std::numbers::pi;
  cairo_new_sub_path(cr);
  cairo_arc(cr, x + w - r, y + r, r, -pi / 2, 0);
  cairo_arc(cr, x + w - r, y + h - r, r, 0, pi / 2);
  cairo_arc(cr, x + r, y + h - r, r, pi / 2, pi);
  cairo_arc(cr, x + r, y + r, r, pi, 3 * pi / 2);
  cairo_close_path(cr);
  impl_->fill_and_edge(fill, alpha, edge, edge_width, "rounded_rect");
}

void Canvas::line(Point a, Point b, Rgb c, double width, bool round) {
  cairo_t* cr = impl_->cr;
  cairo_move_to(cr, a.x, a.y);
  cairo_line_to(cr, b.x, b.y);
  cairo_set_line_width(cr, width);
  cairo_set_line_cap(cr, round ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_SQUARE);
  impl_->set_source(c);
  cairo_stroke(cr);
  impl_->done("line");
}

void Canvas::polyline(const std::vector<Point>& points, Rgb c, double width) {
  if (points.empty()) return;
  cairo_t* cr = impl_->cr;
  cairo_move_to(cr, points[0].x, points[0].y);
  for (size_t i = 1; i < points.size(); ++i) cairo_line_to(cr, points[i].x, points[i].y);
  cairo_set_line_width(cr, width);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  impl_->set_source(c);
  cairo_stroke(cr);
  impl_->done("polyline");
}

void Canvas::circle(Point centre, double r, Rgb fill, double edge_width, Rgb edge) {
  cairo_t* cr = impl_->cr;
  cairo_new_sub_path(cr);
  cairo_arc(cr, centre.x, centre.y, std::max(r, 0.0), 0, 2 * std::numbers::pi);
  impl_->fill_and_edge(fill, 1.0, edge, edge_width, "circle");
}

void Canvas::image(const Image& src, double x, double y, double scale) {
  TAPE_CHECK(src.channels == 3, "Canvas::image: need a 3-channel image, got ", src.channels, " channels");
  if (src.width == 0 || src.height == 0) return;
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, src.width, src.height);
  check(cairo_surface_status(s), "creating an image surface");
  const auto stride = size_t(cairo_image_surface_get_stride(s));
  for (int yy = 0; yy < src.height; ++yy) {
    auto* dst = reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(s) + size_t(yy) * stride);
    for (int xx = 0; xx < src.width; ++xx) dst[xx] = to_cairo(src.at(xx, yy), 3);
  }
  cairo_surface_mark_dirty(s);
  cairo_t* cr = impl_->cr;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, src.width * scale, src.height * scale);
  cairo_clip(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, s, 0, 0);
  // Bilinear, with the edge pixels repeated outward so the border does not fade.
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(s);
  impl_->done("image");
}

void Canvas::text(Point at, const std::string& text, double size, Rgb c, Anchor anchor, bool vertical) {
  cairo_t* cr = impl_->cr;
  const TextSize ts = measure_on(cr, text, size);
  const double box_w = vertical ? ts.height : ts.width, box_h = vertical ? ts.width : ts.height;
  const double left = at.x - anchor.x * box_w, top = at.y - anchor.y * box_h;
  cairo_save(cr);
  // Text space: origin at the text's top-left, x along the reading direction.
  if (vertical) {
    cairo_translate(cr, left, top + box_h);
    cairo_rotate(cr, -std::numbers::pi / 2);
  } else {
    cairo_translate(cr, left, top);
  }
  impl_->set_source(c);
  const std::vector<std::string> lines = lines_of(text);
  const double line_h = ts.height / double(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    cairo_move_to(cr, 0, ts.ascent + double(i) * line_h);
    cairo_show_text(cr, lines[i].c_str());
  }
  cairo_restore(cr);
  impl_->done("drawing text");
}

TextSize Canvas::measure(const std::string& text, double size) const { return measure_on(impl_->cr, text, size); }

TextSize measure_text(const std::string& text, double size) {
  Scratch s;
  return measure_on(s.cr, text, size);
}

void set_pixel(Image& img, int x, int y, Rgb c) {
  // One pixel is a plain store; a cairo surface for it would cost far more.
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = img.at(x, y);
  if (img.channels >= 3) {
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  } else {
    p[0] = luma(c.r, c.g, c.b);
  }
  if (img.channels == 2 || img.channels == 4) p[img.channels - 1] = 255;
}

// Each free function opens a canvas over just the pixels it may touch.

void fill_rect(Image& img, int x, int y, int w, int h, Rgb c) {
  Canvas cv(img, x, y, w, h);
  cv.fill_rect(x, y, w, h, c);
}

void draw_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness) {
  Canvas cv(img, x, y, w, h);
  cv.stroke_rect(x, y, w, h, c, std::max(1, thickness));
}

void draw_line(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  const int t = std::max(1, thickness);
  Canvas cv(img, std::min(x0, x1) - t, std::min(y0, y1) - t, std::abs(x1 - x0) + 2 * t + 1,
            std::abs(y1 - y0) + 2 * t + 1);
  cv.set_antialias(false);
  cv.line({x0 + 0.5, y0 + 0.5}, {x1 + 0.5, y1 + 0.5}, c, t, false);
}

void draw_line_smooth(Image& img, float x0, float y0, float x1, float y1, Rgb c, float width) {
  const int m = int(std::ceil(width / 2)) + 2;
  const int xa = int(std::floor(std::min(x0, x1))) - m, ya = int(std::floor(std::min(y0, y1))) - m;
  Canvas cv(img, xa, ya, int(std::ceil(std::max(x0, x1))) + m - xa + 1, int(std::ceil(std::max(y0, y1))) + m - ya + 1);
  // A zero-length round-capped line is drawn by cairo as a dot of the line width.
  cv.line({x0 + 0.5, y0 + 0.5}, {x1 + 0.5, y1 + 0.5}, c, std::max(width, 0.f));
}

void fill_circle(Image& img, int cx, int cy, int r, Rgb c) {
  Canvas cv(img, cx - r - 1, cy - r - 1, 2 * r + 3, 2 * r + 3);
  cv.circle({cx + 0.5, cy + 0.5}, r + 0.5, c);
}

void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, double size) {
  const TextSize ts = measure_text(text, size);
  Canvas cv(img, x - 2, y - 2, int(std::ceil(ts.width)) + 4, int(std::ceil(ts.height)) + 4);
  cv.text({double(x), double(y)}, text, size, c);
}

int text_width(const std::string& text, double size) { return int(std::ceil(measure_text(text, size).width)); }
int text_height(const std::string& text, double size) { return int(std::ceil(measure_text(text, size).height)); }

}  // namespace tape::vision
