#include "tape_vision/digit_page.hpp"
#include "tape_vision/plane.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <numeric>

#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"

namespace tape::vision {
using namespace detail;

// --- synthetic pages -----------------------------------------------------------

namespace {

/// One MNIST digit (28×28 in [0,1]) rendered `height` px tall as an alpha plane:
/// bilinear enlargement, sheared by `shear` (x px per y px, positive leans right),
/// grey dilation by `grow` px, then a soft threshold at `cut` (higher = thinner strokes).
Plane render_digit(const float* src, int height, int grow, float cut, float shear = 0.f) {
  int bx0 = kDigitSide, by0 = kDigitSide, bx1 = -1, by1 = -1;
  for (int y = 0; y < kDigitSide; ++y)
    for (int x = 0; x < kDigitSide; ++x)
      if (src[y * kDigitSide + x] > 0.1f)
        bx0 = std::min(bx0, x), by0 = std::min(by0, y), bx1 = std::max(bx1, x), by1 = std::max(by1, y);
  if (bx1 < 0) return {};
  const double s = double(height) / (by1 - by0 + 1);
  const int pad = grow + 2;
  const int lean = int(std::ceil(std::fabs(shear) * height / 2));  // extra columns each side
  const int ow = int(std::lround((bx1 - bx0 + 1) * s)) + 2 * pad + 2 * lean, oh = height + 2 * pad;
  const double mid_y = (by1 - by0 + 1) / 2.0;
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
      a.at(x, y) = float(sample(bx0 + (x - pad - lean + 0.5) / s - 0.5 + shear * ((y - pad + 0.5) / s - mid_y),
                                by0 + (y - pad + 0.5) / s - 0.5));
  a = extreme_filter(a, grow, true);
  for (float& v : a.v) {
    const float z = clamp01((v - (cut - 0.2f)) / 0.4f);
    v = z * z * (3 - 2 * z);  // smoothstep
  }
  return a;
}

/// The images and labels of a dataset of 28×28 digits, checked.
struct Source {
  Tensor images;  // contiguous [N, 1, 28, 28]
  std::vector<int64_t> labels;
  const float* pix = nullptr;
  int64_t n = 0;
};

Source checked_source(const TensorDataset& digits, const char* who) {
  TAPE_CHECK(digits.images.defined() && digits.labels.defined(), who, ": the dataset is empty");
  Source src;
  src.n = digits.images.size(0);
  TAPE_CHECK(src.n > 0 && digits.images.numel() == src.n * kDigitSide * kDigitSide && digits.labels.numel() == src.n,
             who, ": expected images [N, 1, 28, 28] and labels [N], got ", digits.images.shape(), " and ",
             digits.labels.shape());
  src.images = digits.images.contiguous();
  src.labels = digits.labels.to_vector<int64_t>();
  src.pix = src.images.data<float>();
  return src;
}

/// The box of the pixels at half alpha or more.
Rect ink_box(const Plane& a) {
  Rect box{a.w, a.h, 0, 0};
  for (int y = 0; y < a.h; ++y)
    for (int x = 0; x < a.w; ++x)
      if (a.at(x, y) >= 0.5f) box.add({x, y, x + 1, y + 1});
  return box;
}

}  // namespace

Image make_digit_page(const TensorDataset& digits, const PageOptions& opt, std::vector<TruthBox>* truth) {
  const Source src = checked_source(digits, "make_digit_page");
  TAPE_CHECK(opt.count > 0, "make_digit_page: count must be positive, got ", opt.count);
  TAPE_CHECK(opt.min_height >= 8 && opt.max_height >= opt.min_height, "make_digit_page: bad height range [",
             opt.min_height, ", ", opt.max_height, "]");
  TAPE_CHECK(opt.polarity != Polarity::Auto, "make_digit_page: polarity must be dark-on-light or light-on-dark");
  const int64_t n = src.n;
  const std::vector<int64_t>& labels = src.labels;
  const float* pix = src.pix;

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

// --- handwriting sheets ---------------------------------------------------------

namespace {

/// A smooth random field of std-dev ~`amp`: normal values on a grid of `cell` px,
/// bilinearly interpolated (paper mottling, uneven ink absorption).
Plane value_noise(int w, int h, int cell, float amp, Generator& rng) {
  const int gx = w / cell + 2, gy = h / cell + 2;
  std::vector<float> g(size_t(gx) * gy);
  for (float& v : g) v = amp * rng.normal();
  Plane out(w, h);
  for (int y = 0; y < h; ++y) {
    const float fy = float(y) / cell;
    const int y0 = int(fy);
    const float ay = fy - y0;
    for (int x = 0; x < w; ++x) {
      const float fx = float(x) / cell;
      const int x0 = int(fx);
      const float ax = fx - x0;
      auto at = [&](int i, int j) { return g[size_t(j) * gx + i]; };
      out.at(x, y) = (at(x0, y0) * (1 - ax) + at(x0 + 1, y0) * ax) * (1 - ay) +
                     (at(x0, y0 + 1) * (1 - ax) + at(x0 + 1, y0 + 1) * ax) * ay;
    }
  }
  return out;
}

/// Paper fibres: short, gently curving 1-px threads, slightly darker or lighter
/// than the paper (about one per 3 000 px²), added to the reflectance `paper`.
void add_fibres(Plane& paper, Generator& rng) {
  const int64_t count = int64_t(paper.w) * paper.h / 3000;
  for (int64_t f = 0; f < count; ++f) {
    double x = paper.w * rng.uniform(), y = paper.h * rng.uniform();
    double angle = 2 * std::numbers::pi * rng.uniform();
    const double bend = 0.08 * rng.normal();
    const float tone = 0.05f * (rng.uniform() < 0.7f ? -1.f : 1.f) * (0.4f + 0.6f * rng.uniform());
    const int steps = 20 + int(rng.below(80));  // half-pixel steps: 10–50 px long
    for (int s = 0; s < steps; ++s, angle += bend / 2) {
      x += 0.5 * std::cos(angle), y += 0.5 * std::sin(angle);
      const int px = int(x), py = int(y);
      if (px >= 0 && py >= 0 && px < paper.w && py < paper.h) paper.at(px, py) += tone / 2;
    }
  }
}

/// Lighting of a phone photo: a gradient (1 → 0.5–0.7 in a random direction), a
/// vignette (−30 % in the corners) and the soft shadow of the phone across one
/// side of the page (×0.55–0.7, edge 50–110 px wide).
Plane photo_light(int w, int h, Generator& rng) {
  const double theta = 2 * std::numbers::pi * rng.uniform();
  const double gdx = std::cos(theta), gdy = std::sin(theta);
  const double half = 0.5 * (std::fabs(gdx) * w + std::fabs(gdy) * h);
  const double fall = 0.3 + 0.2 * rng.uniform();
  // The shadow: the side of a line through a point near a random edge, at a random angle.
  const double phi = 2 * std::numbers::pi * rng.uniform();
  const double sdx = std::cos(phi), sdy = std::sin(phi);
  const double reach = (0.55 + 0.25 * rng.uniform()) * (std::fabs(sdx) * w + std::fabs(sdy) * h) / 2;
  const double dark = 0.55 + 0.15 * rng.uniform(), edge = 50 + 60 * rng.uniform();
  Plane light(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double cx = x - w / 2.0, cy = y - h / 2.0;
      const double grad = 1 - fall * 0.5 * ((cx * gdx + cy * gdy) / half + 1);
      const double vig = 1 - 0.3 * (std::pow(cx / w, 2) + std::pow(cy / h, 2)) * 2;
      const double z = std::clamp(((cx * sdx + cy * sdy) - reach) / edge + 0.5, 0.0, 1.0);
      const double shade = 1 - (1 - dark) * z * z * (3 - 2 * z);
      light.at(x, y) = float(grad * vig * shade);
    }
  return light;
}

/// JPEG-like blockiness: each 8×8 block is pulled 25 % toward its own mean.
void blockiness(Plane& p) {
  for (int by = 0; by < p.h; by += 8)
    for (int bx = 0; bx < p.w; bx += 8) {
      const int x1 = std::min(p.w, bx + 8), y1 = std::min(p.h, by + 8);
      float sum = 0;
      for (int y = by; y < y1; ++y)
        for (int x = bx; x < x1; ++x) sum += p.at(x, y);
      const float mean = sum / float((x1 - bx) * (y1 - by));
      for (int y = by; y < y1; ++y)
        for (int x = bx; x < x1; ++x) p.at(x, y) += 0.25f * (mean - p.at(x, y));
    }
}

/// A uniform integer in [lo, hi].
int uniform_int(Generator& rng, int lo, int hi) { return lo + int(rng.below(uint64_t(hi - lo + 1))); }

}  // namespace

Image make_handwriting_page(const TensorDataset& digits, const HandwritingOptions& opt, std::vector<TruthBox>* truth) {
  const Source src = checked_source(digits, "make_handwriting_page");
  TAPE_CHECK(opt.count > 0 && opt.count <= 100000, "make_handwriting_page: count must be in [1, 100000], got ",
             opt.count);
  TAPE_CHECK(opt.min_height >= 8 && opt.max_height >= opt.min_height && opt.max_height <= 400,
             "make_handwriting_page: bad height range [", opt.min_height, ", ", opt.max_height, "]");
  TAPE_CHECK(opt.width >= 4 * opt.max_height && opt.width <= 20000, "make_handwriting_page: width ", opt.width,
             " must be in [4 × max_height, 20000]");
  TAPE_CHECK(opt.min_group >= 1 && opt.max_group >= opt.min_group, "make_handwriting_page: bad group size range [",
             opt.min_group, ", ", opt.max_group, "]");
  TAPE_CHECK(opt.touching >= 0 && opt.touching <= 1 && opt.slant >= 0 && opt.slant <= 1 && opt.jitter >= 0 &&
                 opt.jitter <= 0.5f && opt.min_space >= 0 && opt.max_space >= opt.min_space && opt.max_space <= 3 && opt.line_spacing >= 1 && opt.blur >= 0 && opt.blur <= 5,
             "make_handwriting_page: touching, slant, jitter, spacing, line_spacing or blur out of range");
  Generator rng(opt.seed);

  // Writing: positions and alpha planes first, so the page height is known.
  struct Placed {
    Plane alpha;
    int x, y;
    float ink;  // reflectance of the ink
  };
  std::vector<Placed> placed;
  if (truth) truth->clear();
  const int margin = opt.width / 16, pitch = int(std::lround(opt.line_spacing * opt.max_height));
  int x = margin, row = 0, left = 0, group_h = 0;
  float slant = 0, tilt = 0, pen = 0;
  int prev_right = -1;  // right edge of the previous digit of this number (-1: none)
  auto new_row = [&] {
    ++row, x = margin, prev_right = -1;
    tilt = 0.004f * (2 * rng.uniform() - 1);  // rows drift up or down a little
  };
  tilt = 0.004f * (2 * rng.uniform() - 1);
  for (int i = 0; i < opt.count; ++i) {
    if (left == 0) {  // a new number: its size, slant and pen pressure
      left = uniform_int(rng, opt.min_group, opt.max_group);
      group_h = uniform_int(rng, opt.min_height, opt.max_height);
      slant = opt.slant * (2 * rng.uniform() - 1);
      pen = rng.uniform();
      if (prev_right >= 0) x = prev_right + int(group_h * (0.7 + 0.8 * rng.uniform()));  // word space
      prev_right = -1;
    }
    --left;
    const int height = std::clamp(int(std::lround(group_h * (0.9 + 0.2 * rng.uniform()))), opt.min_height, opt.max_height);
    const int grow = pen > 0.7f ? 1 : 0;              // heavy writers: strokes one px wider
    const float cut = 0.65f - 0.3f * pen + 0.1f * rng.uniform();  // light writers: thinner strokes
    Plane a;
    int64_t idx = 0;
    for (int tries = 0; tries < 100 && a.v.empty(); ++tries) {
      idx = int64_t(rng.below(uint64_t(src.n)));
      a = render_digit(src.pix + idx * kDigitSide * kDigitSide, height, grow, cut,
                       slant + 0.04f * rng.normal());
    }
    TAPE_CHECK(!a.v.empty(), "make_handwriting_page: could not find a non-blank digit");
    const Rect box = ink_box(a);
    // Gap to the previous digit of the number: touching / overlapping by up to 15 %
    // of this digit's width, or a space of [min_space, max_space] × height (+2 px).
    int gap = 2 + int(height * (opt.min_space + (opt.max_space - opt.min_space) * rng.uniform()));
    if (rng.uniform() < opt.touching) gap = -int(std::lround(0.15f * box.w() * rng.uniform()));
    int ink_x0 = prev_right >= 0 ? prev_right + gap : x;
    if (ink_x0 + box.w() > opt.width - margin) {
      new_row();
      ink_x0 = x;
    }
    const int baseline = margin + opt.max_height + row * pitch + int(std::lround(tilt * (ink_x0 - margin)));
    const int ink_y1 = baseline + int(std::lround(opt.jitter * height * rng.normal()));
    const int ox = ink_x0 - box.x0, oy = ink_y1 - box.y1;
    placed.push_back({std::move(a), ox, oy, 0.05f + 0.2f * (1 - pen) + 0.05f * rng.uniform()});
    if (truth) truth->push_back({ox + box.x0, oy + box.y0, box.w(), box.h(), src.labels[size_t(idx)], idx});
    prev_right = ink_x0 + box.w();
  }
  const int pw = opt.width, ph = margin + opt.max_height + row * pitch + margin;

  // Paper: reflectance with mottling at two scales and fibres.
  const Plane coarse = value_noise(pw, ph, 160, 0.02f, rng), fine = value_noise(pw, ph, 12, 0.008f, rng);
  Plane refl(pw, ph);
  for (size_t i = 0; i < refl.v.size(); ++i) refl.v[i] = 0.9f + coarse.v[i] + fine.v[i];
  add_fibres(refl, rng);
  for (const Placed& p : placed)
    for (int y = 0; y < p.alpha.h; ++y)
      for (int xx = 0; xx < p.alpha.w; ++xx) {
        const int px = p.x + xx, py = p.y + y;
        if (px < 0 || py < 0 || px >= pw || py >= ph) continue;
        const float al = p.alpha.at(xx, y);
        float& r = refl.at(px, py);
        r = r * (1 - al) + p.ink * al;
      }
  refl = gaussian_blur(refl, opt.blur);

  // Light and sensor: a scan is even and clean; a photo is not.
  const Plane light = opt.photo ? photo_light(pw, ph, rng) : Plane(pw, ph, 1.f);
  const float contrast = opt.photo ? 0.6f : 1.f;  // a photo lifts the blacks (flare)
  const float noise = opt.photo ? 0.035f : 0.012f;
  Plane lum(pw, ph);
  for (size_t i = 0; i < lum.v.size(); ++i) {
    const float r = 0.9f - contrast * (0.9f - refl.v[i]);
    lum.v[i] = light.v[i] * r + noise * rng.normal();
  }
  if (opt.photo) blockiness(lum);
  // Blue-black ink on slightly warm paper: the tint only changes the colour.
  const std::array<float, 3> tint = opt.photo ? std::array<float, 3>{1.f, 0.96f, 0.88f} : std::array<float, 3>{0.99f, 0.98f, 0.96f};
  Image page(pw, ph, 3);
  for (int y = 0; y < ph; ++y)
    for (int xx = 0; xx < pw; ++xx) {
      uint8_t* px = page.at(xx, y);
      for (int c = 0; c < 3; ++c) px[c] = uint8_t(std::lround(clamp01(lum.at(xx, y) * tint[c]) * 255.f));
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
