#pragma once
/// \file Finding handwritten digits in a photo (report quiz 10): locate each digit,
/// crop it and normalise it the way MNIST was made, so a network trained on MNIST
/// can read it. Also a generator of synthetic test pages made of MNIST test digits.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tape/core/tensor.hpp"
#include "tape/data/dataset.hpp"
#include "tape/data/image.hpp"

namespace tape::vision {
using data::TensorDataset;
using data::Image;

/// Side of an MNIST image, and of the box the digit is fitted into.
inline constexpr int kDigitSide = 28;
inline constexpr int kDigitFit = 20;

/// Which way round ink and background are.
enum class Polarity { Auto, DarkOnLight, LightOnDark };

/// "auto", "dark-on-light", "light-on-dark".
const char* polarity_name(Polarity p);

/// Tunables of find_digits(). The defaults were tuned on generated pages with digits
/// 18–150 px tall; set background_window for strokes wider than ~50 px.
struct FindOptions {
  /// Auto compares how many pixels stand out darker / lighter than the local background.
  Polarity polarity = Polarity::Auto;
  /// Side of the window of the morphological closing that estimates the background
  /// (must exceed the stroke width); 0 = min(width, height) / 5 clamped to [15, 101].
  int background_window = 0;
  /// Lowest threshold on the background-normalised ink (0 = background, 1 = black
  /// ink on white); Otsu's threshold is used when it is higher.
  float min_contrast = 0.25f;
  /// Hysteresis: a digit grows from pixels above the threshold through pixels above
  /// hysteresis × the threshold, which keeps faint thin strokes (1 = off).
  float hysteresis = 0.6f;
  /// In dark or noisy regions the threshold rises to this many std-devs of the pixel
  /// noise (estimated from the image) above the background.
  float noise_sigmas = 4.f;
  /// Components with fewer ink pixels are noise.
  int min_area = 6;
  /// Specks: a component with area < speck_area × the median component area joins a
  /// digit only if it overlaps or nearly touches it; after merging, a group with area
  /// < speck_area × the median group area, or whose larger side is < speck_extent ×
  /// the median larger side, is dropped.
  float speck_area = 0.02f;
  float speck_extent = 0.15f;
  /// Fragments of one digit are merged when
  ///  - their boxes overlap by at least merge_box_overlap × the smaller box's area;
  ///  - they are stacked (horizontal overlap ≥ merge_overlap × the narrower width) with
  ///    a vertical gap ≤ merge_touch_gap × the merged height, or ≤ merge_gap × it
  ///    within the size cap;
  ///  - one is at most 0.6 times as tall as the other, both gaps are ≤ merge_gap ×
  ///    the merged size, and the size cap holds.
  /// Size cap: merged height ≤ merge_max_size × the largest of the fragments' sides
  /// and the median component height; merged width ≤ merge_max_size × the larger of
  /// the merged height and that median. Specks merge only when the gap is ≤
  /// merge_touch_gap × the merged size. Nothing merges into a box with a side
  /// longer than merge_max_ref × the median component height.
  float merge_box_overlap = 0.25f;
  float merge_overlap = 0.5f;
  float merge_touch_gap = 0.08f;
  float merge_gap = 0.25f;
  float merge_max_size = 1.4f;
  float merge_max_ref = 2.5f;
  /// Reading order: a digit joins a text row when it overlaps the row's vertical
  /// band by at least row_overlap × its own height.
  float row_overlap = 0.5f;
  /// Merged neighbours: a box wider than split_width × the median digit width (and
  /// wider than split_aspect × its own height) is cut into round(width / median
  /// width) pieces at minima of its column ink profile; a box taller than
  /// split_width × the median height (touching rows) is cut the same way across.
  /// 0 = never split.
  float split_width = 1.6f;
  float split_aspect = 1.25f;
  /// find_digits_verified(): a box of a digit's height (0.6–1.25 median heights)
  /// wider than verify_width × the median width and verify_aspect × its own height is
  /// also tried whole and cut into 2 and 3 pieces; the classifier's confidence picks
  /// one (another choice than the width rule's must beat it by the factor
  /// verify_margin; 1 = the classifier decides, ties go to the rule).
  float verify_width = 1.15f;
  float verify_aspect = 0.9f;
  float verify_margin = 1.f;
  /// Deskew each crop by its image moments (deskew_digit) — only for networks
  /// trained on deskewed digits (mnist_lenet5 --deskew records it in the checkpoint).
  bool deskew = false;
};

/// One digit found in an image.
struct DigitBox {
  int x = 0, y = 0, w = 0, h = 0;  ///< bounding box of the ink, in image pixels
  /// 28*28 MNIST-normalised crop, row-major, 0 = background, 1 = ink (grey edges kept):
  /// fitted into 20×20 keeping the aspect ratio (area-averaging), then shifted by whole
  /// pixels so that the centre of mass (in pixel-index coordinates) is within 0.5 px
  /// of (14, 14), as in MNIST.
  std::vector<float> pixels;
};

/// Finds the digits in `img` (any channel count) and returns them in reading order
/// (rows top to bottom, left to right within a row). No digits → empty vector.
std::vector<DigitBox> find_digits(const Image& img, const FindOptions& opt = {});

/// A classifier for find_digits_verified(): given a [K, 1, 28, 28] batch of crops (as
/// digits_to_batch makes them), the label and its probability (max softmax) per crop.
using ClassifyFn = std::function<std::vector<std::pair<int64_t, float>>(const Tensor& batch)>;

/// find_digits() with classifier-verified splitting of merged neighbours: each wide
/// box (FindOptions::verify_*) is tried whole and cut into 2 and 3 pieces, and the
/// cut whose pieces the classifier is surest of (product of their max-softmax
/// probabilities) is kept. One classifier call per page.
std::vector<DigitBox> find_digits_verified(const Image& img, const ClassifyFn& classify,
                                           const FindOptions& opt = {});

/// The background-normalised ink map find_digits() thresholds: 1 channel,
/// 0 = background, 255 = full-contrast ink. `decided` receives the polarity used.
Image ink_map(const Image& img, const FindOptions& opt = {}, Polarity* decided = nullptr);

/// Where to cut a profile (ink per column, or per row) into `pieces` parts: the
/// pieces − 1 cut positions (a cut at c splits [0, c) from [c, n)), each at a
/// low-ink position near its share of the length. pieces < 2 or a profile
/// shorter than 2·pieces gives no cuts.
std::vector<int> profile_cuts(const std::vector<float>& profile, int pieces);

/// MNIST-style deskewing of a 28×28 digit in place: shears rows horizontally about
/// the centre of mass by −cov(x, y) / var(y), so the principal axis becomes
/// vertical (a slanted stroke comes back upright); the centre of mass stays put.
void deskew_digit(float* pixels);

/// Stacks the crops into a [K, 1, 28, 28] Float32 batch (K may be 0).
Tensor digits_to_batch(const std::vector<DigitBox>& digits);


}  // namespace tape::vision
