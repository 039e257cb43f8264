#pragma once
/// \file Synthetic handwriting pages built from MNIST digits, with their true
/// boxes, and matching found boxes against them (tests and tape-digit-page).
#include <cstdint>
#include <vector>

#include "tape/data/dataset.hpp"
#include "tape_vision/digits.hpp"

namespace tape::vision {

// --- synthetic test pages ----------------------------------------------------

/// How make_digit_page() lays out and renders a page.
struct PageOptions {
  int count = 40;                 ///< digits on the page
  uint64_t seed = 1;              ///< same seed → same page
  Polarity polarity = Polarity::DarkOnLight;  ///< Auto is not allowed
  int min_height = 28;            ///< digit height range in pixels
  int max_height = 90;
  int columns = 0;                ///< grid columns; 0 = about sqrt(4/3 · count)
  float gradient = 0.55f;         ///< lighting falls by this fraction across the page
  float noise = 0.03f;            ///< std-dev of the pixel noise (1 = full scale)
};

/// A digit placed on a generated page: its ink box, label and index in the dataset.
struct TruthBox {
  int x = 0, y = 0, w = 0, h = 0;
  int64_t label = 0;
  int64_t index = 0;
};

/// Renders `count` random digits of `digits` (e.g. the MNIST test split) on an RGB
/// page: a loose grid with jitter (boxes never overlap), heights drawn uniformly from
/// [min_height, max_height] (a digit too wide for its cell is drawn smaller), random
/// stroke weight (dilation and a soft threshold); dark-on-light pages get a lighting
/// gradient, light-on-dark pages look like chalk on a board; both get mild noise.
/// `truth`, when given, receives one TruthBox per digit in placement order.
Image make_digit_page(const Dataset& digits, const PageOptions& opt = {},
                      std::vector<TruthBox>* truth = nullptr);

/// Intersection over union of two boxes (0 when either is empty).
float box_iou(int ax, int ay, int aw, int ah, int bx, int by, int bw, int bh);

/// For each truth box, the index of the found box matched to it (greedy, highest
/// IoU first, one-to-one) or -1 when no box reaches `min_iou`.
std::vector<int> match_boxes(const std::vector<TruthBox>& truth, const std::vector<DigitBox>& found,
                             float min_iou = 0.5f);

}  // namespace tape::vision
