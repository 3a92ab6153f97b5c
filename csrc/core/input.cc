#include "core/input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "ukernels/image-row.h"

namespace mbv2 {

size_t padded_image_floats(size_t h, size_t w) { return (h + 1) * (w + 2) * 3; }

bool load_padded_image(mbv2_load_ukernel_fn* load, const float* x, Layout layout, size_t h, size_t w, size_t y0,
                       size_t y1, float* dst) {
  const size_t row_floats = (w + 2) * 3;
  if (y1 == h) std::fill_n(dst + h * row_floats, row_floats, 0.0f);  // the zero row after the last
  bool bad = false;
  for (size_t y = y0; y < y1; y++) {
    float* row = dst + y * row_floats;
    if (layout == Layout::NCHW) {
      bad |= load(w, x + y * w, h * w, row) != 0;
      continue;
    }
    std::fill_n(row, 3, 0.0f);
    std::fill_n(row + (w + 1) * 3, 3, 0.0f);
    std::memcpy(row + 3, x + y * w * 3, w * 3 * sizeof(float));
    bad |= image_row::any_non_finite(x + y * w * 3, w * 3);
  }
  return !bad;
}

size_t count_non_finite(const float* x, size_t n) {
  return std::count_if(x, x + n, [](float v) { return !std::isfinite(v); });
}

}  // namespace mbv2
