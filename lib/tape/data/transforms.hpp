#pragma once
/// \file Per-sample image transforms (torchvision semantics) and Compose.
///
///   data::DataLoader loader(train, {.batch_size = 128, .shuffle = true, .num_workers = 2,
///       .transform = data::Compose{data::RandomAffine(10, {0.1, 0.1}),
///                                  data::Normalize({0.1307}, {0.3081})}});
///
/// A transform maps one example's image [C, H, W] (Float32) to a new tensor and
/// never writes its input (dataset views stay intact). Random transforms draw
/// only from the Generator they are given; the DataLoader seeds one per sample
/// from (seed, epoch, sample index), so results do not depend on the worker count.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::data {

/// Any transform: (image, generator) → image. Must be safe to call from several
/// threads at once on different inputs (loader workers do).
using Transform = std::function<Tensor(const Tensor& image, Generator& gen)>;

/// A height and width: one int (square) or {h, w}.
struct Size2 {
  int64_t h, w;
  Size2(int64_t s) : h(s), w(s) {}  // NOLINT(google-explicit-constructor): RandomCrop(24)
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

/// out[c] = (x[c] - mean[c]) / std[c] per channel (one value broadcasts to all channels).
class Normalize {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor operator()(const Tensor& image) const;
  Tensor operator()(const Tensor& image, Generator&) const { return (*this)(image); }

 private:
  std::vector<double> mean_, std_;
};

/// Zero-pads each side by `padding`, then crops a size.h x size.w window at a
/// uniformly random position (torchvision RandomCrop(size, padding), fill 0).
class RandomCrop {
 public:
  RandomCrop(Size2 size, int64_t padding = 0);
  Tensor operator()(const Tensor& image, Generator& gen) const;
  /// The crop with its top-left corner at (top, left) of the padded image (what
  /// operator() does after drawing top and left).
  Tensor crop(const Tensor& image, int64_t top, int64_t left) const;

 private:
  Size2 size_;
  int64_t padding_;
};

/// Rotation by an angle drawn from U(-degrees, degrees) and a translation by
/// round(U(-tx·W, tx·W)), round(U(-ty·H, ty·H)) pixels about the image centre,
/// nearest-neighbour sampling, zero fill (torchvision RandomAffine(degrees,
/// translate) with the default NEAREST interpolation).
class RandomAffine {
 public:
  RandomAffine(double degrees, std::pair<double, double> translate = {0.0, 0.0});
  Tensor operator()(const Tensor& image, Generator& gen) const;
  /// The fixed map torchvision's F.affine(image, angle, [dx, dy], 1, 0) applies:
  /// rotate by `angle` degrees clockwise about the centre, then shift by (dx, dy)
  /// pixels (right, down).
  static Tensor apply(const Tensor& image, double angle, double dx, double dy);

 private:
  double degrees_;
  std::pair<double, double> translate_;
};

/// Applies transforms in order: Compose{RandomCrop(28, 2), Normalize({0.5}, {0.5})}.
class Compose {
 public:
  Compose(std::initializer_list<Transform> transforms) : transforms_(transforms) {}
  explicit Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {}
  Tensor operator()(const Tensor& image, Generator& gen) const;

 private:
  std::vector<Transform> transforms_;
};

}  // namespace tape::data
