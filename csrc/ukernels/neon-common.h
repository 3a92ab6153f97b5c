// Building blocks shared by the NEON kernels (*-neon.cc): lane-exact loads and
// stores for channel remainders, the ReLU6 clamp, the 4x8 register tile of the
// GEMM-like kernels and the depthwise loop. ARMv8.0 baseline: AArch64 always
// has FMA (vfmaq_f32) and by-lane FMA on 128-bit vectors (vfmaq_laneq_f32).
#pragma once

#include <algorithm>
#include <cstddef>

#include "ukernels/neon.h"

namespace mbv2::neon {

inline float32x4_t vrelu6q_f32(float32x4_t v) {
  return vminq_f32(vmaxq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(6.0f));
}

// The first n (0..4) floats at p, zeros above: a remainder never reads past the
// caller's last channel (NEON has no masked loads).
inline float32x4_t vld1q_f32_upto(const float* p, size_t n) {
  if (n == 4) return vld1q_f32(p);
  float32x4_t v = vdupq_n_f32(0.0f);
  if (n > 0) v = vld1q_lane_f32(p, v, 0);
  if (n > 1) v = vld1q_lane_f32(p + 1, v, 1);
  if (n > 2) v = vld1q_lane_f32(p + 2, v, 2);
  return v;
}

// Stores the first n (0..4) lanes of v.
inline void vst1q_f32_upto(float* p, float32x4_t v, size_t n) {
  if (n == 4) {
    vst1q_f32(p, v);
    return;
  }
  float32x2_t vlo = vget_low_f32(v);
  if (n & 2) {
    vst1_f32(p, vlo);
    p += 2;
    vlo = vget_high_f32(v);
  }
  if (n & 1) vst1_lane_f32(p, vlo, 0);
}

// Eight channels as two vectors, for n (0..8) valid ones.
struct Vec8 {
  float32x4_t v0123, v4567;
};

inline Vec8 vld8_upto(const float* p, size_t n) {
  const size_t lo = std::min<size_t>(n, 4);
  return {vld1q_f32_upto(p, lo), vld1q_f32_upto(p + 4, n - lo)};
}

inline void vst8_upto(float* p, Vec8 v, size_t n) {
  const size_t lo = std::min<size_t>(n, 4);
  vst1q_f32_upto(p, v.v0123, lo);
  vst1q_f32_upto(p + 4, v.v4567, n - lo);
}

inline Vec8 vadd8(Vec8 a, Vec8 b) { return {vaddq_f32(a.v0123, b.v0123), vaddq_f32(a.v4567, b.v4567)}; }
inline Vec8 vrelu6_8(Vec8 v) { return {vrelu6q_f32(v.v0123), vrelu6q_f32(v.v4567)}; }

// 4 rows x 8 channels of accumulators: 8 of the 32 vector registers, leaving
// room for 4 rows of A and 2 weight vectors with no spills.
struct Tile4x8 {
  float32x4_t vacc0x0123, vacc0x4567, vacc1x0123, vacc1x4567;
  float32x4_t vacc2x0123, vacc2x4567, vacc3x0123, vacc3x4567;

  explicit Tile4x8(Vec8 init)
      : vacc0x0123(init.v0123), vacc0x4567(init.v4567), vacc1x0123(init.v0123), vacc1x4567(init.v4567),
        vacc2x0123(init.v0123), vacc2x4567(init.v4567), vacc3x0123(init.v0123), vacc3x4567(init.v4567) {}

  // Row r += lane L of va_r times the 8 weights at w.
  template <int L>
  void fma_lane(const float* w, float32x4_t va0, float32x4_t va1, float32x4_t va2, float32x4_t va3) {
    const float32x4_t vw0123 = vld1q_f32(w);
    const float32x4_t vw4567 = vld1q_f32(w + 4);
    vacc0x0123 = vfmaq_laneq_f32(vacc0x0123, vw0123, va0, L);
    vacc0x4567 = vfmaq_laneq_f32(vacc0x4567, vw4567, va0, L);
    vacc1x0123 = vfmaq_laneq_f32(vacc1x0123, vw0123, va1, L);
    vacc1x4567 = vfmaq_laneq_f32(vacc1x4567, vw4567, va1, L);
    vacc2x0123 = vfmaq_laneq_f32(vacc2x0123, vw0123, va2, L);
    vacc2x4567 = vfmaq_laneq_f32(vacc2x4567, vw4567, va2, L);
    vacc3x0123 = vfmaq_laneq_f32(vacc3x0123, vw0123, va3, L);
    vacc3x4567 = vfmaq_laneq_f32(vacc3x4567, vw4567, va3, L);
  }

  // Row r += a_r[0..kc) times the kc x 8 panel at w, in k order like the twins.
  // Four k at a time: one 128-bit load per row feeds four by-lane FMAs.
  void gemm(size_t kc, const float* a0, const float* a1, const float* a2, const float* a3, const float* w) {
    for (; kc >= 4; kc -= 4, a0 += 4, a1 += 4, a2 += 4, a3 += 4, w += 32) {
      const float32x4_t va0 = vld1q_f32(a0);
      const float32x4_t va1 = vld1q_f32(a1);
      const float32x4_t va2 = vld1q_f32(a2);
      const float32x4_t va3 = vld1q_f32(a3);
      fma_lane<0>(w, va0, va1, va2, va3);
      fma_lane<1>(w + 8, va0, va1, va2, va3);
      fma_lane<2>(w + 16, va0, va1, va2, va3);
      fma_lane<3>(w + 24, va0, va1, va2, va3);
    }
    for (; kc != 0; kc--, w += 8) {
      fma_lane<0>(w, vld1q_dup_f32(a0++), vld1q_dup_f32(a1++), vld1q_dup_f32(a2++), vld1q_dup_f32(a3++));
    }
  }

  // f(r, row r's 8 accumulators) for the first `rows` rows only: rows past the
  // caller's m were computed from a clamped pointer and are dropped here.
  template <class F>
  void for_rows(size_t rows, F f) const {
    f(0, Vec8{vacc0x0123, vacc0x4567});
    if (rows > 1) f(1, Vec8{vacc1x0123, vacc1x4567});
    if (rows > 2) f(2, Vec8{vacc2x0123, vacc2x4567});
    if (rows > 3) f(3, Vec8{vacc3x0123, vacc3x4567});
  }
};

// The loop of the expand, project and head kernels: 8-channel panels outer, so
// each panel's weights are read once per call; tiles of 4 rows of A inner (a
// row of pixels, which stays in L1). A panel is [8 biases] then kc rows of 8
// when `biased`, else kc rows of 8 seeded with zeros. For each tile,
// epilogue(i, rows, n0, nn, tile) consumes `rows` rows x `nn` valid channels.
template <class Epilogue>
inline void gemm_4x8(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                     size_t w_panel_stride, bool biased, Epilogue epilogue) {
  for (size_t n0 = 0; n0 < nc; n0 += 8, w += w_panel_stride) {
    const size_t nn = std::min<size_t>(8, nc - n0);
    const Vec8 vinit = biased ? Vec8{vld1q_f32(w), vld1q_f32(w + 4)} : Vec8{vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    const float* wk = biased ? w + 8 : w;
    for (size_t i = 0; i < m; i += 4) {
      // Rows past m repeat the last row, so the tile never branches on m.
      const float* a0 = a + i * a_stride;
      const float* a1 = i + 1 < m ? a0 + a_stride : a0;
      const float* a2 = i + 2 < m ? a1 + a_stride : a1;
      const float* a3 = i + 3 < m ? a2 + a_stride : a2;
      Tile4x8 tile(vinit);
      tile.gemm(kc, a0, a1, a2, a3, wk);
      epilogue(i, std::min<size_t>(4, m - i), n0, nn, tile);
    }
  }
}

// Depthwise 3x3 + bias + ReLU6 on 4 channels of one output pixel: vk holds the
// bias then the taps ky * 3 + kx; `load` reads 4 (or fewer) input channels.
template <class Load>
inline float32x4_t dwconv3x3_4c(const float* i0, const float* i1, const float* i2, size_t in_pixel_stride,
                                const float32x4_t* vk, Load load) {
  const float* const in[3] = {i0, i1, i2};
  float32x4_t vacc = vk[0];
  for (size_t ky = 0; ky < 3; ky++) {
    for (size_t kx = 0; kx < 3; kx++) vacc = vfmaq_f32(vacc, load(in[ky] + kx * in_pixel_stride), vk[1 + ky * 3 + kx]);
  }
  return vrelu6q_f32(vacc);
}

// Both depthwise kernels, one output row: 8-channel tiles outer, pixels inner,
// so a tile's 20 weight vectors stay in registers across the whole row. Only
// the last tile may hold fewer than 8 channels; it takes the lane-exact path.
template <size_t Stride>
inline void dwconv3x3_relu6_8c_row(size_t wo, size_t channels, const float* const* rows, size_t in_pixel_stride,
                                   const float* w, float* out, size_t out_pixel_stride) {
  constexpr size_t nr = 8;
  for (size_t c0 = 0; c0 < channels; c0 += nr, w += 10 * nr) {
    float32x4_t vk0123[10], vk4567[10];
    for (size_t t = 0; t < 10; t++) {
      vk0123[t] = vld1q_f32(w + t * nr);
      vk4567[t] = vld1q_f32(w + t * nr + 4);
    }
    const float* i0 = rows[0] + c0;
    const float* i1 = rows[1] + c0;
    const float* i2 = rows[2] + c0;
    float* o = out + c0;
    const size_t step = Stride * in_pixel_stride;
    const size_t lo = std::min<size_t>(channels - c0, 4);
    const size_t hi = std::min<size_t>(channels - c0, nr) - lo;
    const auto load_full = [](const float* p) { return vld1q_f32(p); };
    const auto load_lo = [lo](const float* p) { return vld1q_f32_upto(p, lo); };
    const auto load_hi = [hi](const float* p) { return vld1q_f32_upto(p, hi); };
    for (size_t x = 0; x < wo; x++, i0 += step, i1 += step, i2 += step, o += out_pixel_stride) {
      if (hi == 4) {
        vst1q_f32(o, dwconv3x3_4c(i0, i1, i2, in_pixel_stride, vk0123, load_full));
        vst1q_f32(o + 4, dwconv3x3_4c(i0 + 4, i1 + 4, i2 + 4, in_pixel_stride, vk4567, load_full));
        continue;
      }
      vst1q_f32_upto(o, dwconv3x3_4c(i0, i1, i2, in_pixel_stride, vk0123, load_lo), lo);
      if (hi != 0) {
        vst1q_f32_upto(o + 4, dwconv3x3_4c(i0 + 4, i1 + 4, i2 + 4, in_pixel_stride, vk4567, load_hi), hi);
      }
    }
  }
}

// The rows of a tile one at a time: with 20 weight registers of 32 there is no
// room for a second row's accumulators.
template <size_t Stride>
inline void dwconv3x3_relu6_8c(size_t wo, size_t channels, const float* const* rows, size_t in_pixel_stride,
                               const float* w, float* out, size_t out_pixel_stride, size_t out_rows,
                               size_t out_row_stride) {
  for (size_t r = 0; r < out_rows; r++) {
    dwconv3x3_relu6_8c_row<Stride>(wo, channels, rows + r * Stride, in_pixel_stride, w, out + r * out_row_stride,
                                   out_pixel_stride);
  }
}

}  // namespace mbv2::neon
