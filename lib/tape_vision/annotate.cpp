#include "tape_vision/annotate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tape/core/error.hpp"
#include "tape_vision/draw.hpp"

namespace tape::vision {

void annotate(Image& img, const std::vector<DigitBox>& digits, const std::vector<int64_t>& labels,
              const std::vector<float>& confidences) {
  TAPE_CHECK(labels.size() == digits.size(), "annotate: ", digits.size(), " digits but ", labels.size(), " labels");
  TAPE_CHECK(confidences.empty() || confidences.size() == digits.size(), "annotate: ", digits.size(),
             " digits but ", confidences.size(), " confidences");
  if (img.channels != 3) img = to_rgb(img);
  const int thick = std::max(2, std::min(img.width, img.height) / 400);
  for (size_t i = 0; i < digits.size(); ++i) {
    const DigitBox& d = digits[i];
    Rgb colour{40, 200, 40};  // confident (or no confidence given)
    std::string text = std::to_string(labels[i]);
    if (!confidences.empty()) {
      const float c = confidences[i];
      if (c < 0.6f) colour = {230, 50, 50};
      else if (c < 0.9f) colour = {255, 160, 0};
      char buf[16];
      std::snprintf(buf, sizeof buf, " %d%%", int(std::lround(c * 100)));
      text += buf;
    }
    draw_rect(img, d.x - thick - 1, d.y - thick - 1, d.w + 2 * (thick + 1), d.h + 2 * (thick + 1), colour, thick);
    const int scale = std::clamp(d.h / 25, 2, 5);
    const int pad = scale;
    const int tw = text_width(text, scale) + 2 * pad, th = text_height(text, scale) + 2 * pad;
    int tx = d.x - thick - 1, ty = d.y - thick - 1 - th;  // tag above the box...
    if (ty < 0) ty = d.y + d.h + thick + 1;                // ...or below it
    tx = std::clamp(tx, 0, std::max(0, img.width - tw));
    ty = std::clamp(ty, 0, std::max(0, img.height - th));
    fill_rect(img, tx, ty, tw, th, colour);
    draw_text(img, tx + pad, ty + pad, text, Rgb{0, 0, 0}, scale);
  }
}

}  // namespace tape::vision
