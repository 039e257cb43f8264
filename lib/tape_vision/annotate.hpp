#pragma once
/// \file Drawing the digits found on a page: a box and a label per digit.
#include <cstdint>
#include <vector>

#include "tape_vision/digits.hpp"

namespace tape::vision {

/// Draws each digit's box and its predicted label (with the confidence, if given)
/// on a filled tag; a grey image is converted to RGB first. `labels` must have one
/// entry per digit; `confidences` one per digit or none.
void annotate(Image& img, const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
              const std::vector<float>& confidences = {});

}  // namespace tape::vision
