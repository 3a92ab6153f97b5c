#include "core/input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mbv2 {

size_t padded_image_floats(size_t h, size_t w) { return (h + 1) * (w + 2) * 3; }

namespace {

constexpr uint32_t kExponentBits = 0x7f800000u;

// True if x[0 .. n) holds NaN or an infinity. Adding 1 to the exponent field
// carries into the sign bit only when the field is all ones: integer adds and
// ors vectorise with plain SSE2 (float compares with NaN, or unsigned max,
// would not), so this costs a few microseconds per image, on a row just read.
bool any_non_finite(const float* x, size_t n) {
  uint32_t carries = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    carries |= (bits & kExponentBits) + 0x00800000u;
  }
  return (carries & 0x80000000u) != 0;
}

}  // namespace

bool load_padded_image(const float* x, Layout layout, size_t h, size_t w, size_t y0, size_t y1, float* dst) {
  const size_t row_floats = (w + 2) * 3;
  if (y1 == h) std::fill_n(dst + h * row_floats, row_floats, 0.0f);  // the zero row after the last
  bool bad = false;
  for (size_t y = y0; y < y1; y++) {
    float* row = dst + y * row_floats;
    std::fill_n(row, 3, 0.0f);
    std::fill_n(row + (w + 1) * 3, 3, 0.0f);
    float* px = row + 3;
    if (layout == Layout::NHWC) {
      std::memcpy(px, x + y * w * 3, w * 3 * sizeof(float));
      bad |= any_non_finite(x + y * w * 3, w * 3);
      continue;
    }
    // One pass over the three planes' rows, writing each pixel whole.
    const float* r = x + y * w;
    const float* g = r + h * w;
    const float* b = g + h * w;
    for (size_t i = 0; i < w; i++) {
      px[3 * i] = r[i];
      px[3 * i + 1] = g[i];
      px[3 * i + 2] = b[i];
    }
    bad |= any_non_finite(r, w) || any_non_finite(g, w) || any_non_finite(b, w);
  }
  return !bad;
}

size_t count_non_finite(const float* x, size_t n) {
  return std::count_if(x, x + n, [](float v) { return !std::isfinite(v); });
}

}  // namespace mbv2
