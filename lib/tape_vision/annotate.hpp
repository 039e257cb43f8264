#pragma once
/// \file Drawing the digits found on a page: a box and a label per digit, laid
/// out so that labels stay readable and never overlap on dense pages.
#include <cstdint>
#include <string>
#include <vector>

#include "tape_vision/digits.hpp"

namespace tape::vision {

/// A rectangle in image pixels (half-open: covers x .. x + w - 1).
struct PixelRect {
  int x = 0, y = 0, w = 0, h = 0;
  bool empty() const { return w <= 0 || h <= 0; }
};

/// Whether two rectangles share a pixel.
bool overlaps(const PixelRect& a, const PixelRect& b);

/// One digit's label as annotate() draws it.
struct LabelPlacement {
  PixelRect rect;        ///< the filled tag; empty = no room left, not drawn
  std::string text;      ///< "7 93%", or just "7" where there was no room (or no confidence)
  double font_size = 0;  ///< pixels (em size)
};

/// Where the labels go, in the digits' order. Each digit's label ("7") has a
/// font of half the digit's height (9 to 40 px) and goes above the box or else
/// below it, where that covers no digit and no label placed before; failing
/// that, at the first of above, inside the box's top-left corner, or below that
/// covers no label; failing that too, the same in 9 px; only then is it left
/// out. Then, given confidences, each label grows to "7 93%" where the wider tag
/// covers no other label and no other digit. Labels never overlap each other
/// and stay inside the image. `labels` must have one entry per digit;
/// `confidences` one per digit or none.
std::vector<LabelPlacement> layout_labels(const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
                                          const std::vector<float>& confidences, int width, int height);

/// Draws each digit's box (just outside its ink) and its label from
/// layout_labels() on a filled tag, coloured by confidence: green ≥ 0.9, orange
/// ≥ 0.6, red below (green without confidences). A grey image is converted to
/// RGB first.
void annotate(Image& img, const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
              const std::vector<float>& confidences = {});

}  // namespace tape::vision
