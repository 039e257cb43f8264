#pragma once
/// \file Drawing on an Image (boxes, lines, dots, text), for the pictures the
/// examples and tools write. Part of tape_vision, not of libtape.
#include <string>

#include "tape/data/image.hpp"

namespace tape::vision {
using data::Image;
using data::Rgb;

// Drawing: coordinates may lie partly outside the image (clipped). On 1- or
// 2-channel images the colour's luma is drawn; alpha is set opaque.

/// Sets one pixel (ignored outside the image).
void set_pixel(Image& img, int x, int y, Rgb c);
/// Filled rectangle with top-left (x, y).
void fill_rect(Image& img, int x, int y, int w, int h, Rgb c);
/// Rectangle outline, `thickness` pixels wide, drawn inside (x, y, w, h).
void draw_rect(Image& img, int x, int y, int w, int h, Rgb c, int thickness = 1);
/// Straight line (Bresenham) with square pen of `thickness` pixels.
void draw_line(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
/// Anti-aliased line of `width` pixels with round caps, at sub-pixel positions;
/// a zero-length line is a disc of diameter `width`.
void draw_line_smooth(Image& img, float x0, float y0, float x1, float y1, Rgb c, float width = 1.f);
/// Filled disc of radius `r` centred at (cx, cy).
void fill_circle(Image& img, int cx, int cy, int r, Rgb c);
/// Text in a small built-in font (stb_easy_font), top-left at (x, y), glyphs
/// magnified `scale` times; '\n' starts a new line.
void draw_text(Image& img, int x, int y, const std::string& text, Rgb c, int scale = 1);
/// Size in pixels of `text` as draw_text would render it.
int text_width(const std::string& text, int scale = 1);
int text_height(const std::string& text, int scale = 1);

}  // namespace tape::vision
