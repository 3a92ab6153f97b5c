// The int8 kernels' arithmetic, once, in scalar form (ukernels.h says what it
// computes): the scalar twins call it, and every SIMD kernel does the same
// float32 operations in the same order. The project builds with
// -ffp-contract=off, so no compiler fuses the multiply and the add below.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ukernels/ukernels.h"

namespace mbv2::quant {

// The panel's parts (ukernels.h): biases, then scales, then the weights.
inline int32_t panel_bias(const void* panel, size_t j) {
  int32_t b;
  std::memcpy(&b, static_cast<const char*>(panel) + 4 * j, 4);
  return b;
}
inline float panel_scale(const void* panel, size_t nr, size_t j) {
  float s;
  std::memcpy(&s, static_cast<const char*>(panel) + 4 * nr + 4 * j, 4);
  return s;
}
inline const int8_t* panel_weights(const void* panel, size_t nr) {
  return reinterpret_cast<const int8_t*>(static_cast<const char*>(panel) + 8 * nr);
}

// Row i, channel n (the kernel's own numbering) of one output.
inline uint8_t requantize(int32_t acc, float scale, const mbv2_qu8_requant& rq, size_t i, size_t n) {
  float v = static_cast<float>(acc) * scale;
  if (rq.residual) {
    const int32_t r = static_cast<int32_t>(rq.residual[i * rq.residual_stride + n]) - rq.residual_zero_point;
    v = v + static_cast<float>(r) * rq.residual_scale;
  }
  v = std::min(std::max(v, rq.lo), rq.hi);
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + rq.zero_point);
}

// mbv2_qu8_quantize_ukernel_fn (ukernels.h); the SIMD kernels' last n % lanes values too.
inline void quantize(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  for (size_t i = 0; i < n; i++) {
    y[i] = static_cast<uint8_t>(std::nearbyint(std::min(std::max(x[i] * inv_scale, 0.0f), hi)));
  }
}

}  // namespace mbv2::quant

namespace mbv2::quant {

// Both int8 depthwise twins: they differ only in how far an output pixel
// moves the window. The requantization sees the output row as row 0.
template <size_t NR, size_t Stride>
inline void dwconv3x3(size_t wo, size_t channels, const uint8_t* const* rows, size_t in_pixel_stride, const void* w,
                      size_t panel_stride, const mbv2_qu8_requant& rq, uint8_t* out, size_t out_pixel_stride) {
  const char* panel = static_cast<const char*>(w);
  for (size_t c0 = 0; c0 < channels; c0 += NR, panel += panel_stride) {
    const size_t cc = std::min(NR, channels - c0);
    const int8_t* wq = panel_weights(panel, NR);
    for (size_t x = 0; x < wo; x++) {
      for (size_t j = 0; j < cc; j++) {
        int32_t acc = panel_bias(panel, j);
        for (size_t ky = 0; ky < 3; ky++) {
          for (size_t kx = 0; kx < 3; kx++) {
            acc += static_cast<int32_t>(rows[ky][(x * Stride + kx) * in_pixel_stride + c0 + j]) *
                   wq[(ky * 3 + kx) * NR + j];
          }
        }
        out[x * out_pixel_stride + c0 + j] = requantize(acc, panel_scale(panel, NR, j), rq, 0, c0 + j);
      }
    }
  }
}

}  // namespace mbv2::quant
