#include "tape_vision/draw.hpp"

#include <algorithm>
#include <cmath>

#include "tape/core/error.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace tape::vision {

namespace {

uint8_t luma(int r, int g, int b) { return uint8_t((299 * r + 587 * g + 114 * b + 500) / 1000); }

/// Replaces characters stb_easy_font has no glyph for (it indexes a table by c - 32).
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& ch : out)
    if (ch != '\n' && (ch < 32 || ch > 126)) ch = '?';
  return out;
}

}  // namespace

void set_pixel(Image& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = img.at(x, y);
  if (img.channels >= 3) {
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
    if (img.channels == 4) p[3] = 255;
  } else {
    p[0] = luma(c.r, c.g, c.b);
    if (img.channels == 2) p[1] = 255;
  }
}

void fill_rect(Image& img, int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(x, 0), x1 = std::min(x + w, img.width);
  const int y0 = std::max(y, 0), y1 = std::min(y + h, img.height);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set_pixel(img, xx, yy, c);
}

void draw_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness) {
  const int t = std::max(1, std::min({thickness, (w + 1) / 2, (h + 1) / 2}));
  fill_rect(img, x, y, w, t, c);
  fill_rect(img, x, y + h - t, w, t, c);
  fill_rect(img, x, y + t, t, h - 2 * t, c);
  fill_rect(img, x + w - t, y + t, t, h - 2 * t, c);
}

void draw_line(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  const int t = std::max(1, thickness), lo = -(t - 1) / 2;
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  for (int err = dx + dy;;) {
    if (t == 1) set_pixel(img, x0, y0, c);
    else fill_rect(img, x0 + lo, y0 + lo, t, t, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void draw_line_smooth(Image& img, float x0, float y0, float x1, float y1, Rgb c, float width) {
  // Coverage of each pixel centre = how far it lies inside the capsule around the segment.
  const float half = std::max(width, 0.f) / 2.f, dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  const int xa = std::max(0, int(std::floor(std::min(x0, x1) - half - 1))), xb = std::min(img.width - 1, int(std::ceil(std::max(x0, x1) + half + 1)));
  const int ya = std::max(0, int(std::floor(std::min(y0, y1) - half - 1))), yb = std::min(img.height - 1, int(std::ceil(std::max(y0, y1) + half + 1)));
  for (int y = ya; y <= yb; ++y)
    for (int x = xa; x <= xb; ++x) {
      const float t = len2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / len2, 0.f, 1.f) : 0.f;
      const float ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
      const float cover = std::clamp(half + 0.5f - std::sqrt(ex * ex + ey * ey), 0.f, 1.f);
      if (cover <= 0.f) continue;
      uint8_t* p = img.at(x, y);
      if (img.channels >= 3) {
        const uint8_t rgb[3] = {c.r, c.g, c.b};
        for (int k = 0; k < 3; ++k) p[k] = uint8_t(std::lround(p[k] + (rgb[k] - p[k]) * cover));
        if (img.channels == 4) p[3] = 255;
      } else {
        p[0] = uint8_t(std::lround(p[0] + (luma(c.r, c.g, c.b) - p[0]) * cover));
        if (img.channels == 2) p[1] = 255;
      }
    }
}

void fill_circle(Image& img, int cx, int cy, int r, Rgb c) {
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
      if (dx * dx + dy * dy <= r * r + r) set_pixel(img, cx + dx, cy + dy, c);
}

void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, int scale) {
  const int s = std::max(1, scale);
  std::string str = printable(text);
  struct Vertex {
    float x, y, z;
    unsigned char rgba[4];
  };
  std::vector<Vertex> buf(str.size() * 64 + 64);  // ~270 bytes per char; 1 KB is plenty
  const int quads = stb_easy_font_print(0, 0, str.data(), nullptr, buf.data(), int(buf.size() * sizeof(Vertex)));
  for (int q = 0; q < quads; ++q) {
    const Vertex* v = &buf[size_t(q) * 4];  // axis-aligned: corners 0 and 2 are opposite
    const int qx0 = int(std::lround(std::min(v[0].x, v[2].x))), qx1 = int(std::lround(std::max(v[0].x, v[2].x)));
    const int qy0 = int(std::lround(std::min(v[0].y, v[2].y))), qy1 = int(std::lround(std::max(v[0].y, v[2].y)));
    fill_rect(img, x + qx0 * s, y + qy0 * s, (qx1 - qx0) * s, (qy1 - qy0) * s, c);
  }
}

int text_width(const std::string& text, int scale) {
  std::string str = printable(text);
  return stb_easy_font_width(str.data()) * std::max(1, scale);
}

int text_height(const std::string& text, int scale) {
  std::string str = printable(text);
  return stb_easy_font_height(str.data()) * std::max(1, scale);
}

}  // namespace tape::vision
