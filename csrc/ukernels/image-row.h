// The input image's rows into the stem's padded NHWC rows (mbv2_load_ukernel_fn,
// ukernels.h), with the test that finds NaN and infinite values. Plain loops:
// each ISA's f32-load-nchw-*.cc compiles them with that ISA's flags, which is
// what makes them fast (GCC vectorises the interleave and the test; for SSE2
// alone it keeps the interleave scalar, 3.3 times slower on Zen 5 than with
// AVX-512), and the scalar twin is the same code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mbv2::image_row {

// True if x[0 .. n) holds NaN or an infinity. Adding 1 to the exponent field
// carries into the sign bit only when the field is all ones: integer adds and
// ors vectorise on any ISA (float compares with NaN, or unsigned max, would not).
inline bool any_non_finite(const float* x, size_t n) {
  constexpr uint32_t kExponentBits = 0x7f800000u;
  uint32_t carries = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    carries |= (bits & kExponentBits) + 0x00800000u;
  }
  return (carries & 0x80000000u) != 0;
}

// mbv2_load_ukernel_fn: one pass over the three planes' rows, writing each
// pixel whole; the test reads the rows right after, in L1.
inline int load_nchw(size_t w, const float* x, size_t plane_stride, float* row) {
  const float* r = x;
  const float* g = r + plane_stride;
  const float* b = g + plane_stride;
  for (size_t c = 0; c < 3; c++) row[c] = row[(w + 1) * 3 + c] = 0.0f;
  float* px = row + 3;
  for (size_t i = 0; i < w; i++) {
    px[3 * i] = r[i];
    px[3 * i + 1] = g[i];
    px[3 * i + 2] = b[i];
  }
  return any_non_finite(r, w) || any_non_finite(g, w) || any_non_finite(b, w);
}

}  // namespace mbv2::image_row
