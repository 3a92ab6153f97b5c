// Building blocks shared by the scalar reference kernels (and only by them):
// the plain loops every SIMD kernel is tested against.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "ukernels/bf16-common.h"

namespace mbv2::ref {

inline float relu6(float v) { return std::min(std::max(v, 0.0f), 6.0f); }

// acc[j] += sum_k a[k] * w[k * NR + j]: one pixel times one packed panel.
template <size_t NR>
inline void dot_panel(size_t kc, const float* a, const float* w, float* acc) {
  for (size_t k = 0; k < kc; k++) {
    for (size_t j = 0; j < NR; j++) acc[j] += a[k] * w[k * NR + j];
  }
}

// The bf16 dot_panel (ukernels.h, bf16): a's pairs rounded to bf16, times the
// panel's packed pairs; an odd kc's last pair is (a[kc - 1], 0).
template <size_t NR>
inline void dot_panel_bf16(size_t kc, const float* a, const float* w, float* acc) {
  const uint32_t* pairs = reinterpret_cast<const uint32_t*>(w);
  for (size_t k = 0; k < kc; k += 2, pairs += NR) {
    const uint32_t ak = bf16::pair(a[k], k + 1 < kc ? a[k + 1] : 0.0f);
    for (size_t j = 0; j < NR; j++) acc[j] = bf16::dot_pair(acc[j], ak, pairs[j]);
  }
}

// The biased GEMM of the expand and head kernels: for every pixel i and panel
// of NR output channels starting at n0, acc = bias + a_i . panel; the caller's
// epilogue(i, n0, nn, acc) consumes the nn valid channels.
// Bf16 = true: the bf16 panels (kc rounded up to pairs) and dot_panel_bf16.
template <size_t NR, bool Bf16 = false, class Epilogue>
inline void biased_gemm(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                        Epilogue epilogue) {
  const size_t rows = Bf16 ? (kc + 1) / 2 : kc;
  for (size_t n0 = 0; n0 < nc; n0 += NR, w += (rows + 1) * NR) {
    const size_t nn = std::min(NR, nc - n0);
    for (size_t i = 0; i < m; i++) {
      float acc[NR];
      std::memcpy(acc, w, sizeof(acc));
      if constexpr (Bf16) {
        dot_panel_bf16<NR>(kc, a + i * a_stride, w + NR, acc);
      } else {
        dot_panel<NR>(kc, a + i * a_stride, w + NR, acc);
      }
      epilogue(i, n0, nn, acc);
    }
  }
}

// The projection twins: c = bias + src + a chunk of K (a null bias or src
// counts as zeros). The float32 twin sums the chunk from zero and adds the
// start last; the bf16 twin starts its accumulator from bias + src, as the
// AVX512-BF16 kernel does, so that both add the same float32 sums in the same
// order.
template <size_t NR, bool Bf16>
inline void project_acc(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                        size_t w_panel_stride, const float* bias, const float* src, float* c, size_t c_stride) {
  for (size_t n0 = 0; n0 < nc; n0 += NR, w += w_panel_stride) {
    const size_t nn = std::min(NR, nc - n0);
    for (size_t i = 0; i < m; i++) {
      float start[NR] = {}, acc[NR] = {};
      for (size_t j = 0; j < nn; j++) {
        const float b = bias ? bias[n0 + j] : 0.0f;
        start[j] = src ? (bias ? b + src[i * c_stride + n0 + j] : src[i * c_stride + n0 + j]) : b;
      }
      if constexpr (Bf16) {
        std::memcpy(acc, start, sizeof(acc));
        dot_panel_bf16<NR>(kc, a + i * a_stride, w, acc);
      } else {
        dot_panel<NR>(kc, a + i * a_stride, w, acc);
      }
      for (size_t j = 0; j < nn; j++) c[i * c_stride + n0 + j] = Bf16 ? acc[j] : start[j] + acc[j];
    }
  }
}

// The depthwise 3x3 kernels differ only in how far one output pixel moves the
// input window, so both twins instantiate this one loop, an output row at a time.
template <size_t NR, size_t Stride>
inline void dwconv3x3_relu6_row(size_t wo, size_t channels, const float* const* rows, size_t in_pixel_stride,
                                const float* w, float* out, size_t out_pixel_stride) {
  for (size_t c0 = 0; c0 < channels; c0 += NR, w += 10 * NR) {
    const size_t cc = std::min(NR, channels - c0);
    for (size_t x = 0; x < wo; x++) {
      for (size_t j = 0; j < cc; j++) {
        float acc = w[j];
        for (size_t ky = 0; ky < 3; ky++) {
          for (size_t kx = 0; kx < 3; kx++) {
            acc += rows[ky][(x * Stride + kx) * in_pixel_stride + c0 + j] * w[NR + (ky * 3 + kx) * NR + j];
          }
        }
        out[x * out_pixel_stride + c0 + j] = relu6(acc);
      }
    }
  }
}

template <size_t NR, size_t Stride>
inline void dwconv3x3_relu6(size_t wo, size_t channels, const float* const* rows, size_t in_pixel_stride,
                            const float* w, float* out, size_t out_pixel_stride, size_t out_rows,
                            size_t out_row_stride) {
  for (size_t r = 0; r < out_rows; r++) {
    dwconv3x3_relu6_row<NR, Stride>(wo, channels, rows + r * Stride, in_pixel_stride, w, out + r * out_row_stride,
                                    out_pixel_stride);
  }
}

}  // namespace mbv2::ref
