#include "tape_vision/digit_page.hpp"
#include "tape_vision/plane.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"

namespace tape::vision {
using namespace detail;

// --- synthetic pages -----------------------------------------------------------

namespace {

/// One MNIST digit (28×28 in [0,1]) rendered `height` px tall as an alpha plane:
/// bilinear enlargement, grey dilation by `grow` px, then a soft threshold at `cut`
/// (higher = thinner strokes).
Plane render_digit(const float* src, int height, int grow, float cut) {
  int bx0 = kDigitSide, by0 = kDigitSide, bx1 = -1, by1 = -1;
  for (int y = 0; y < kDigitSide; ++y)
    for (int x = 0; x < kDigitSide; ++x)
      if (src[y * kDigitSide + x] > 0.1f)
        bx0 = std::min(bx0, x), by0 = std::min(by0, y), bx1 = std::max(bx1, x), by1 = std::max(by1, y);
  if (bx1 < 0) return {};
  const double s = double(height) / (by1 - by0 + 1);
  const int pad = grow + 2;
  const int ow = int(std::lround((bx1 - bx0 + 1) * s)) + 2 * pad, oh = height + 2 * pad;
  auto sample = [&](double u, double v) {
    const int x0 = int(std::floor(u)), y0 = int(std::floor(v));
    const double fx = u - x0, fy = v - y0;
    auto px = [&](int x, int y) {
      return (x < 0 || y < 0 || x >= kDigitSide || y >= kDigitSide) ? 0.0 : double(src[y * kDigitSide + x]);
    };
    return (px(x0, y0) * (1 - fx) + px(x0 + 1, y0) * fx) * (1 - fy) + (px(x0, y0 + 1) * (1 - fx) + px(x0 + 1, y0 + 1) * fx) * fy;
  };
  Plane a(ow, oh);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      a.at(x, y) = float(sample(bx0 + (x - pad + 0.5) / s - 0.5, by0 + (y - pad + 0.5) / s - 0.5));
  a = extreme_filter(a, grow, true);
  for (float& v : a.v) {
    const float z = clamp01((v - (cut - 0.2f)) / 0.4f);
    v = z * z * (3 - 2 * z);  // smoothstep
  }
  return a;
}

}  // namespace

Image make_digit_page(const Dataset& digits, const PageOptions& opt, std::vector<TruthBox>* truth) {
  TAPE_CHECK(digits.images.defined() && digits.labels.defined(), "make_digit_page: the dataset is empty");
  const int64_t n = digits.images.size(0);
  TAPE_CHECK(n > 0 && digits.images.numel() == n * kDigitSide * kDigitSide && digits.labels.numel() == n,
             "make_digit_page: expected images [N, 1, 28, 28] and labels [N], got ", digits.images.shape(), " and ",
             digits.labels.shape());
  TAPE_CHECK(opt.count > 0, "make_digit_page: count must be positive, got ", opt.count);
  TAPE_CHECK(opt.min_height >= 8 && opt.max_height >= opt.min_height, "make_digit_page: bad height range [",
             opt.min_height, ", ", opt.max_height, "]");
  TAPE_CHECK(opt.polarity != Polarity::Auto, "make_digit_page: polarity must be dark-on-light or light-on-dark");
  const Tensor images = digits.images.contiguous();
  const std::vector<int64_t> labels = digits.labels.to_vector<int64_t>();
  const float* pix = images.data<float>();

  Generator rng(opt.seed);
  const int cols = opt.columns > 0 ? opt.columns : std::max(1, int(std::ceil(std::sqrt(opt.count * 4.0 / 3.0))));
  const int rows = (opt.count + cols - 1) / cols;
  const int cell = int(std::ceil(opt.max_height * 1.5));
  const int pad = cell / 6;  // ≥ 2·pad between neighbouring boxes
  const int margin = cell / 3;
  const int pw = cols * cell + 2 * margin, ph = rows * cell + 2 * margin;
  const bool dark_ink = opt.polarity == Polarity::DarkOnLight;
  const float paper = dark_ink ? 0.92f : 0.16f;

  Plane refl(pw, ph, paper);  // reflectance (dark-on-light) or emitted level (light-on-dark)
  if (truth) truth->clear();
  auto ink_box = [](const Plane& a) {  // at half alpha
    Rect box{a.w, a.h, 0, 0};
    for (int y = 0; y < a.h; ++y)
      for (int x = 0; x < a.w; ++x)
        if (a.at(x, y) >= 0.5f) box.add({x, y, x + 1, y + 1});
    return box;
  };
  const int room = cell - 2 * pad;  // a digit's box must fit here, so boxes never overlap
  for (int i = 0; i < opt.count; ++i) {
    Plane a;
    int64_t idx = 0;
    int height = opt.min_height + int(rng.below(uint64_t(opt.max_height - opt.min_height + 1)));
    const float stroke = -0.3f + 1.5f * rng.uniform();
    const int grow = std::max(0, int(std::lround(stroke * height / 40.0)));
    const float cut = 0.3f + 0.3f * rng.uniform();
    for (int tries = 0; tries < 100 && a.v.empty(); ++tries) {
      idx = int64_t(rng.below(uint64_t(n)));
      a = render_digit(pix + idx * kDigitSide * kDigitSide, height, grow, cut);
    }
    TAPE_CHECK(!a.v.empty(), "make_digit_page: could not find a non-blank digit");
    Rect box = ink_box(a);
    // A wide (or very bold) digit is drawn smaller so that it fits its cell.
    for (int tries = 0; tries < 8 && std::max(box.w(), box.h()) > room && height > 8; ++tries) {
      height = std::max(8, int(height * double(room) / std::max(box.w(), box.h())) - 1);
      a = render_digit(pix + idx * kDigitSide * kDigitSide, height, grow, cut);
      box = ink_box(a);
    }
    const int cx = margin + (i % cols) * cell, cy = margin + (i / cols) * cell;
    const int room_x = room - box.w(), room_y = room - box.h();
    const int ox = cx + pad + (room_x > 0 ? int(rng.below(uint64_t(room_x + 1))) : room_x / 2) - box.x0;
    const int oy = cy + pad + (room_y > 0 ? int(rng.below(uint64_t(room_y + 1))) : room_y / 2) - box.y0;
    const float ink = dark_ink ? 0.05f + 0.2f * rng.uniform() : 0.75f + 0.2f * rng.uniform();
    for (int y = 0; y < a.h; ++y)
      for (int x = 0; x < a.w; ++x) {
        const int px = ox + x, py = oy + y;
        if (px < 0 || py < 0 || px >= pw || py >= ph) continue;
        float& r = refl.at(px, py);
        r = r * (1 - a.at(x, y)) + ink * a.at(x, y);
      }
    if (truth) truth->push_back({ox + box.x0, oy + box.y0, box.w(), box.h(), labels[size_t(idx)], idx});
  }

  // Lighting: a linear gradient in a random direction times a mild vignette.
  const double theta = 2 * std::numbers::pi * rng.uniform();
  const double dx = std::cos(theta), dy = std::sin(theta);
  const double half = 0.5 * (std::fabs(dx) * pw + std::fabs(dy) * ph);
  const float strength = dark_ink ? opt.gradient : 0.5f * opt.gradient;
  const std::array<float, 3> tint = dark_ink ? std::array<float, 3>{1.f, 0.97f, 0.9f} : std::array<float, 3>{0.92f, 1.f, 0.95f};
  Image page(pw, ph, 3);
  for (int y = 0; y < ph; ++y)
    for (int x = 0; x < pw; ++x) {
      const double proj = ((x - pw / 2.0) * dx + (y - ph / 2.0) * dy) / half;  // [-1, 1]
      const double rr = (std::pow((x - pw / 2.0) / pw, 2) + std::pow((y - ph / 2.0) / ph, 2)) * 4;  // 0 centre, 2 corner
      const float light = float((1 - strength * 0.5 * (proj + 1)) * (1 - 0.08 * rr));
      uint8_t* px = page.at(x, y);
      for (int c = 0; c < 3; ++c) {
        const float v = light * refl.at(x, y) * tint[c] + opt.noise * rng.normal();
        px[c] = uint8_t(std::lround(clamp01(v) * 255.f));
      }
    }
  return page;
}

float box_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh) {
  if (aw <= 0 || ah <= 0 || bw <= 0 || bh <= 0) return 0.f;
  const int ix = std::max(0, std::min(ax + aw, bx + bw) - std::max(ax, bx));
  const int iy = std::max(0, std::min(ay + ah, by + bh) - std::max(ay, by));
  const double inter = double(ix) * iy;
  return float(inter / (double(aw) * ah + double(bw) * bh - inter));
}

std::vector<int> match_boxes(const std::vector<TruthBox>& truth, const std::vector<DigitBox>& found, float min_iou) {
  struct Pair {
    float iou;
    int t, f;
  };
  std::vector<Pair> pairs;
  for (int i = 0; i < int(truth.size()); ++i)
    for (int j = 0; j < int(found.size()); ++j) {
      const float v = box_iou(truth[i].x, truth[i].y, truth[i].w, truth[i].h, found[j].x, found[j].y, found[j].w, found[j].h);
      if (v >= min_iou) pairs.push_back({v, i, j});
    }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<int> match(truth.size(), -1);
  std::vector<bool> used(found.size(), false);
  for (const auto& p : pairs)
    if (match[p.t] < 0 && !used[p.f]) match[p.t] = p.f, used[p.f] = true;
  return match;
}

}  // namespace tape::vision
