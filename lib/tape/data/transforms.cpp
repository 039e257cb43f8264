#include "tape/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tape::data {

namespace {

/// An image [..., H, W] Float32 seen as `channels` planes of h x w (contiguous).
struct Planes {
  Tensor t;
  int64_t channels, h, w;
};

Planes planes(const char* fn, const Tensor& image) {
  TAPE_CHECK(image.defined(), fn, ": the image is undefined");
  TAPE_CHECK(image.dim() >= 2 && image.dtype() == Dtype::Float32, fn,
             ": expected a Float32 image [C, H, W], got shape ", image.shape(), " ", dtype_name(image.dtype()));
  const int64_t h = image.size(-2), w = image.size(-1);
  return {image.contiguous(), h * w > 0 ? image.numel() / (h * w) : 0, h, w};
}

}  // namespace

// --- Normalize ----------------------------------------------------------------

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  TAPE_CHECK(!mean_.empty() && mean_.size() == std_.size(), "Normalize: mean and std need the same number (>= 1) of ",
             "values, got ", mean_.size(), " and ", std_.size());
  for (double s : std_) TAPE_CHECK(s != 0.0 && std::isfinite(s), "Normalize: std must be finite and nonzero, got ", s);
}

// Forward: out[c] = (x[c] - mean[c]) / std[c], in float like torchvision on a Float32 tensor.
Tensor Normalize::operator()(const Tensor& image) const {
  TAPE_CHECK(image.defined() && image.dim() == 3 && image.dtype() == Dtype::Float32,
             "Normalize: expected a Float32 image [C, H, W], got shape ",
             image.defined() ? image.shape() : Shape{}, " ", image.defined() ? dtype_name(image.dtype()) : "undefined");
  const int64_t c = image.size(0), hw = image.size(1) * image.size(2);
  TAPE_CHECK(mean_.size() == 1 || int64_t(mean_.size()) == c, "Normalize: ", mean_.size(),
             " mean/std values for an image of ", c, " channels, shape ", image.shape());
  const Tensor in = image.contiguous();
  Tensor out = Tensor::empty(image.shape());
  const float* x = in.data<float>();
  float* y = out.data<float>();
  for (int64_t k = 0; k < c; ++k) {
    const size_t j = mean_.size() == 1 ? 0 : size_t(k);
    const float m = float(mean_[j]), s = float(std_[j]);
    for (int64_t i = k * hw; i < (k + 1) * hw; ++i) y[i] = (x[i] - m) / s;
  }
  return out;
}

// --- RandomCrop ---------------------------------------------------------------

RandomCrop::RandomCrop(Size2 size, int64_t padding) : size_(size), padding_(padding) {
  TAPE_CHECK(size_.h > 0 && size_.w > 0, "RandomCrop: size must be positive, got ", size_.h, "x", size_.w);
  TAPE_CHECK(padding_ >= 0, "RandomCrop: padding must be >= 0, got ", padding_);
}

Tensor RandomCrop::operator()(const Tensor& image, Generator& gen) const {
  TAPE_CHECK(image.defined() && image.dim() >= 2, "RandomCrop: expected an image [C, H, W], got shape ",
             image.defined() ? image.shape() : Shape{});
  const int64_t ph = image.size(-2) + 2 * padding_, pw = image.size(-1) + 2 * padding_;
  TAPE_CHECK(size_.h <= ph && size_.w <= pw, "RandomCrop: crop ", size_.h, "x", size_.w,
             " is larger than the padded image ", ph, "x", pw, " (shape ", image.shape(), ", padding ", padding_, ")");
  const int64_t top = int64_t(gen.below(uint64_t(ph - size_.h + 1)));  // torchvision draws top, then left
  const int64_t left = int64_t(gen.below(uint64_t(pw - size_.w + 1)));
  return crop(image, top, left);
}

Tensor RandomCrop::crop(const Tensor& image, int64_t top, int64_t left) const {
  const Planes p = planes("RandomCrop", image);
  TAPE_CHECK(0 <= top && top + size_.h <= p.h + 2 * padding_ && 0 <= left && left + size_.w <= p.w + 2 * padding_,
             "RandomCrop::crop: a ", size_.h, "x", size_.w, " window at (", top, ", ", left,
             ") leaves the padded image of shape ", image.shape(), " and padding ", padding_);
  Shape shape = image.shape();
  shape[shape.size() - 2] = size_.h, shape[shape.size() - 1] = size_.w;
  Tensor out = Tensor::empty(shape);
  const float* x = p.t.data<float>();
  float* y = out.data<float>();
  // Source columns [c0, c1) of the image land in the window; the rest is padding.
  const int64_t c0 = std::clamp(left - padding_, int64_t(0), p.w), c1 = std::clamp(left - padding_ + size_.w, int64_t(0), p.w);
  for (int64_t c = 0; c < p.channels; ++c)
    for (int64_t r = 0; r < size_.h; ++r) {
      float* row = y + (c * size_.h + r) * size_.w;
      const int64_t sr = top - padding_ + r;
      std::fill(row, row + size_.w, 0.f);
      if (sr < 0 || sr >= p.h || c0 >= c1) continue;
      std::copy(x + (c * p.h + sr) * p.w + c0, x + (c * p.h + sr) * p.w + c1, row + (c0 - (left - padding_)));
    }
  return out;
}

// --- RandomAffine -------------------------------------------------------------

RandomAffine::RandomAffine(double degrees, std::pair<double, double> translate)
    : degrees_(degrees), translate_(translate) {
  TAPE_CHECK(degrees_ >= 0 && std::isfinite(degrees_), "RandomAffine: degrees must be >= 0, got ", degrees_);
  TAPE_CHECK(translate_.first >= 0 && translate_.first <= 1 && translate_.second >= 0 && translate_.second <= 1,
             "RandomAffine: translate fractions must be in [0, 1], got (", translate_.first, ", ", translate_.second, ")");
}

Tensor RandomAffine::operator()(const Tensor& image, Generator& gen) const {
  TAPE_CHECK(image.defined() && image.dim() >= 2, "RandomAffine: expected an image [C, H, W], got shape ",
             image.defined() ? image.shape() : Shape{});
  // torchvision's get_params: the angle, then dx, then dy, each uniform; shifts rounded half to even.
  const double angle = -degrees_ + 2 * degrees_ * double(gen.uniform());
  const double max_dx = translate_.first * double(image.size(-1)), max_dy = translate_.second * double(image.size(-2));
  const double dx = std::nearbyint(-max_dx + 2 * max_dx * double(gen.uniform()));
  const double dy = std::nearbyint(-max_dy + 2 * max_dy * double(gen.uniform()));
  return apply(image, angle, dx, dy);
}

// Note: the sampling is torchvision's for tensors (F.affine → _gen_affine_grid →
// grid_sample, align_corners=False, nearest, zeros): output pixel (i, j) has
// centre (x, y) = (j - W/2 + 0.5, i - H/2 + 0.5) relative to the image centre;
// the inverse map M = [cos a, sin a, -cos a·dx - sin a·dy; -sin a, cos a,
// sin a·dx - cos a·dy] gives the source point, read at pixel
// round(M·(x, y, 1) + (W/2 - 0.5, H/2 - 0.5)) (half to even), zero outside.
Tensor RandomAffine::apply(const Tensor& image, double angle, double dx, double dy) {
  const Planes p = planes("RandomAffine", image);
  const double a = angle * std::numbers::pi / 180.0, cs = std::cos(a), sn = std::sin(a);
  const double m0 = cs, m1 = sn, m2 = -cs * dx - sn * dy;
  const double m3 = -sn, m4 = cs, m5 = sn * dx - cs * dy;
  const double ox = 0.5 * double(p.w) - 0.5, oy = 0.5 * double(p.h) - 0.5;
  Tensor out = Tensor::empty(image.shape());
  const float* x = p.t.data<float>();
  float* out_p = out.data<float>();
  const int64_t hw = p.h * p.w;
  for (int64_t i = 0; i < p.h; ++i) {
    const double yc = double(i) - oy, bx = m1 * yc + m2 + ox, by = m4 * yc + m5 + oy;  // the row's share
    for (int64_t j = 0; j < p.w; ++j) {
      const double xc = double(j) - ox;
      const long sj = std::lrint(m0 * xc + bx), si = std::lrint(m3 * xc + by);
      const bool inside = uint64_t(si) < uint64_t(p.h) && uint64_t(sj) < uint64_t(p.w);
      const int64_t src = inside ? int64_t(si) * p.w + sj : 0;
      if (p.channels == 1) out_p[i * p.w + j] = inside ? x[src] : 0.f;  // the common grey image
      else
        for (int64_t c = 0; c < p.channels; ++c) out_p[c * hw + i * p.w + j] = inside ? x[c * hw + src] : 0.f;
    }
  }
  return out;
}

// --- Compose ------------------------------------------------------------------

Tensor Compose::operator()(const Tensor& image, Generator& gen) const {
  Tensor t = image;
  for (const auto& f : transforms_) {
    TAPE_CHECK(f != nullptr, "Compose: an empty transform (a default-constructed std::function)");
    t = f(t, gen);
  }
  return t;
}

}  // namespace tape::data
