#include "tape_vision/annotate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tape/core/error.hpp"
#include "tape_vision/draw.hpp"

namespace tape::vision {

namespace {

constexpr double kMinFont = 9, kMaxFont = 40, kFontPerHeight = 0.5;

/// Rectangles indexed by a uniform grid of 64-px cells, so that a collision
/// query looks at the few rectangles near it, not at all of them: thousands of
/// labels stay linear.
class RectIndex {
 public:
  RectIndex(int width, int height)
      : cols_(std::max(1, (width + kCell - 1) / kCell)),
        rows_(std::max(1, (height + kCell - 1) / kCell)),
        cells_(size_t(cols_) * size_t(rows_)) {}

  void add(const PixelRect& r, size_t id) {
    for (size_t c : cells_of(r)) cells_[c].push_back({r, id});
  }
  /// Whether `r` overlaps a stored rectangle other than those added as `ignore`.
  bool hits(const PixelRect& r, size_t ignore = SIZE_MAX) const {
    for (size_t c : cells_of(r))
      for (const Entry& e : cells_[c])
        if (e.id != ignore && overlaps(e.rect, r)) return true;
    return false;
  }

 private:
  static constexpr int kCell = 64;
  struct Entry {
    PixelRect rect;
    size_t id;
  };
  /// The cells `r` touches (rectangles off the image count in the edge cells).
  std::vector<size_t> cells_of(const PixelRect& r) const {
    std::vector<size_t> out;
    if (r.empty()) return out;
    const int c0 = std::clamp(r.x / kCell, 0, cols_ - 1), c1 = std::clamp((r.x + r.w - 1) / kCell, 0, cols_ - 1);
    const int r0 = std::clamp(r.y / kCell, 0, rows_ - 1), r1 = std::clamp((r.y + r.h - 1) / kCell, 0, rows_ - 1);
    for (int cy = r0; cy <= r1; ++cy)
      for (int cx = c0; cx <= c1; ++cx) out.push_back(size_t(cy) * size_t(cols_) + size_t(cx));
    return out;
  }

  int cols_, rows_;
  std::vector<std::vector<Entry>> cells_;
};

/// Border width for a digit box: thin on small digits so touching boxes stay apart.
int border(const DigitBox& d) { return std::clamp(int(std::lround(std::min(d.w, d.h) / 20.0)), 1, 4); }

PixelRect outer(const DigitBox& d) {
  const int t = border(d);
  return {d.x - t, d.y - t, d.w + 2 * t, d.h + 2 * t};
}

/// A tag of `w` x `h` at (x, y), slid sideways into the image; `clamp_y` also
/// slides it up or down (else a tag off the image is empty: a tag pushed onto
/// its box from above would no longer read as "above").
PixelRect tag_at(int x, int y, int w, int h, int width, int height, bool clamp_y) {
  if (clamp_y) y = std::clamp(y, 0, std::max(0, height - h));
  if (y < 0 || y + h > height) return {};
  return {std::clamp(x, 0, std::max(0, width - w)), y, w, h};
}

/// Where a `w` x `h` tag for digit `d` may go, best first: above the box, below
/// it, and (unless it must keep clear of digits) inside its top-left corner,
/// which is then preferred to below, where the tag would sit on the next digit
/// down and read as its label.
std::vector<PixelRect> spots_for(const DigitBox& d, int w, int h, int width, int height, bool clear_of_digits) {
  const PixelRect o = outer(d);
  const PixelRect above = tag_at(o.x, o.y - h, w, h, width, height, false),
                  below = tag_at(o.x, o.y + o.h, w, h, width, height, false),
                  inside = tag_at(d.x, d.y, w, h, width, height, true);
  std::vector<PixelRect> out = clear_of_digits ? std::vector{above, below} : std::vector{above, inside, below};
  std::erase_if(out, [](const PixelRect& r) { return r.empty(); });
  return out;
}

/// "7 93%".
std::string long_text(int64_t label, const std::vector<float>& confidences, size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, " %d%%", int(std::lround(confidences[i] * 100)));
  return std::to_string(label) + buf;
}

/// Inner padding of a tag.
int tag_pad(double font) { return std::max(1, int(std::lround(0.12 * font))); }
/// A tag is as tall as its text's ink (not the font's full ascent and descent:
/// digits and "%" have none below the baseline), plus padding.
int tag_height(const TextSize& ts, double font) {
  return int(std::ceil(ts.ink_bottom) - std::floor(ts.ink_top)) + 2 * tag_pad(font);
}

/// How a bare label is tried, in order: in its font size clear of the other
/// digits, then in its size anywhere free, then in the smallest size anywhere free.
struct Attempt {
  double font;
  bool clear_of_digits;
};

std::vector<Attempt> attempts(const DigitBox& d) {
  const double font = std::clamp(kFontPerHeight * d.h, kMinFont, kMaxFont);
  std::vector<Attempt> out{{font, true}, {font, false}};
  if (font > kMinFont) out.push_back({kMinFont, false});
  return out;
}

/// The tag for `text` in `font` px: its width and height.
std::pair<int, int> tag_size(const std::string& text, double font) {
  const TextSize ts = measure_text(text, font);
  return {int(std::ceil(ts.width)) + 2 * tag_pad(font), tag_height(ts, font)};
}

void check_sizes(const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
                 const std::vector<float>& confidences) {
  TAPE_CHECK(labels.size() == digits.size(), "annotate: ", digits.size(), " digits but ", labels.size(), " labels");
  TAPE_CHECK(confidences.empty() || confidences.size() == digits.size(), "annotate: ", digits.size(), " digits but ",
             confidences.size(), " confidences");
}

Rgb colour_for(const std::vector<float>& confidences, size_t i) {
  const float c = confidences.empty() ? 1.f : confidences[i];
  return c >= 0.9f ? Rgb{40, 180, 60} : c >= 0.6f ? Rgb{255, 160, 0} : Rgb{225, 45, 45};
}

/// Black or white, whichever reads better on `bg`.
Rgb ink_on(Rgb bg) { return 299 * bg.r + 587 * bg.g + 114 * bg.b > 140'000 ? Rgb{0, 0, 0} : Rgb{255, 255, 255}; }

}  // namespace

bool overlaps(const PixelRect& a, const PixelRect& b) {
  return !a.empty() && !b.empty() && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

std::vector<LabelPlacement> layout_labels(const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
                                          const std::vector<float>& confidences, int width, int height) {
  check_sizes(digits, labels, confidences);
  RectIndex placed(width, height), boxes(width, height);
  for (size_t i = 0; i < digits.size(); ++i) boxes.add({digits[i].x, digits[i].y, digits[i].w, digits[i].h}, i);

  // Two passes, so that a wide "7 93%" never takes the spot the next digit's
  // label needed: first every digit gets its bare label at the best free spot,
  // then labels grow to include the confidence where that covers no other
  // label and no other digit.
  std::vector<LabelPlacement> out(digits.size());
  for (size_t i = 0; i < digits.size(); ++i) {
    const std::string text = std::to_string(labels[i]);
    for (const Attempt& a : attempts(digits[i])) {
      const auto [w, h] = tag_size(text, a.font);
      const std::vector<PixelRect> spots = spots_for(digits[i], w, h, width, height, a.clear_of_digits);
      const auto spot = std::find_if(spots.begin(), spots.end(), [&](const PixelRect& r) {
        return !placed.hits(r) && !(a.clear_of_digits && boxes.hits(r));
      });
      if (spot == spots.end()) continue;
      out[i] = {*spot, text, a.font};
      placed.add(*spot, i);
      break;
    }
  }
  for (size_t i = 0; i < digits.size() && !confidences.empty(); ++i) {
    if (out[i].rect.empty()) continue;
    const std::string text = long_text(labels[i], confidences, i);
    const auto [w, h] = tag_size(text, out[i].font_size);
    const PixelRect wider = tag_at(out[i].rect.x, out[i].rect.y, w, h, width, height, true);
    if (placed.hits(wider, i) || boxes.hits(wider, i)) continue;
    out[i] = {wider, text, out[i].font_size};
    placed.add(wider, i);  // the bare tag it replaces lies inside it and has the same id
  }
  return out;
}

void annotate(Image& img, const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
              const std::vector<float>& confidences) {
  check_sizes(digits, labels, confidences);
  if (img.channels != 3) img = to_rgb(img);
  const std::vector<LabelPlacement> tags = layout_labels(digits, labels, confidences, img.width, img.height);
  Canvas cv(img);
  // Boxes first, then every tag over them: a neighbour's border never cuts a label.
  for (size_t i = 0; i < digits.size(); ++i) {
    const PixelRect o = outer(digits[i]);
    cv.stroke_rect(o.x, o.y, o.w, o.h, colour_for(confidences, i), border(digits[i]));
  }
  for (size_t i = 0; i < digits.size(); ++i) {
    const LabelPlacement& t = tags[i];
    if (t.rect.empty()) continue;
    const Rgb bg = colour_for(confidences, i);
    const int pad = tag_pad(t.font_size);
    const double ink_top = std::floor(cv.measure(t.text, t.font_size).ink_top);
    cv.fill_rect(t.rect.x, t.rect.y, t.rect.w, t.rect.h, bg);
    cv.text({double(t.rect.x + pad), t.rect.y + pad - ink_top}, t.text, t.font_size, ink_on(bg));
  }
}

}  // namespace tape::vision
