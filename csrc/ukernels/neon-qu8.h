// Building blocks of the int8 NEON kernels (qu8-*-neon.cc, qu8-*-neondot.cc):
// the requantization of quant-common.h on 16 channels at once, lane-exact loads
// and stores for channel remainders, the depthwise loop both ISAs share, and
// the GEMMs' driver (panels, 4-row tiles, requantized stores) around their k
// loops.
//
// Bit-exactness with the scalar twins (ukernels.h): float(acc) * scale, then a
// separate multiply and add for the residual (vmulq_f32 + vaddq_f32, never
// vfmaq/vmlaq: GCC would keep a fused form; the build also passes
// -ffp-contract=off), the clamp, round to nearest even (FCVTNS, i.e.
// std::nearbyint in the default mode), + zero point, then uint8 by truncation
// (vmovn: mod 256, like the twin's static_cast). The integer sums are exact in
// any order: int8 x uint8 products widened to int32 (vmlal_s16) or sdot.
//
// Everything here has internal linkage (the unnamed namespace): the neondot
// files are compiled with -march=armv8.2-a+dotprod, and an out-of-line copy of a
// shared inline function must never be the one the ARMv8.0 kernels link to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ukernels/neon.h"
#include "ukernels/quant-common.h"  // quantize's remainder
#include "ukernels/ukernels.h"

namespace mbv2::neon_qu8 {
namespace {

// The panel's parts (ukernels.h): nr int32 biases, nr float scales, weights.
inline const int32_t* panel_bias(const char* panel) { return reinterpret_cast<const int32_t*>(panel); }
inline const float* panel_scale(const char* panel, size_t nr) {
  return reinterpret_cast<const float*>(panel + 4 * nr);
}
inline const int8_t* panel_weights(const char* panel, size_t nr) {
  return reinterpret_cast<const int8_t*>(panel + 8 * nr);
}

// std::nearbyint on 4 lanes. SIMDe 0.7 has no vcvtnq_s32_f32; FRINTN (ties to
// even) then an exact conversion of an integral value is the same function.
inline int32x4_t vcvtnq_s32_f32_exact(float32x4_t v) {
#if defined(__aarch64__)
  return vcvtnq_s32_f32(v);
#else
  return vcvtq_s32_f32(vrndnq_f32(v));
#endif
}

// The first n (0..16) bytes at p, zeros above: a remainder never reads past the
// caller's last channel (NEON has no masked loads).
inline uint8x16_t vld1q_u8_upto(const uint8_t* p, size_t n) {
  if (n == 16) return vld1q_u8(p);
  uint8_t buf[16] = {};
  std::memcpy(buf, p, n);
  return vld1q_u8(buf);
}

// Stores the first n (0..16) bytes of v.
inline void vst1q_u8_upto(uint8_t* p, uint8x16_t v, size_t n) {
  if (n == 16) {
    vst1q_u8(p, v);
    return;
  }
  uint8x8_t v8 = vget_low_u8(v);
  if (n & 8) {
    vst1_u8(p, v8);
    p += 8;
    v8 = vget_high_u8(v);
  }
  if (n & 4) {
    const uint32_t t = vget_lane_u32(vreinterpret_u32_u8(v8), 0);
    std::memcpy(p, &t, 4);
    p += 4;
    v8 = vext_u8(v8, v8, 4);
  }
  if (n & 2) {
    const uint16_t t = vget_lane_u16(vreinterpret_u16_u8(v8), 0);
    std::memcpy(p, &t, 2);
    p += 2;
    v8 = vext_u8(v8, v8, 2);
  }
  if (n & 1) vst1_lane_u8(p, v8, 0);
}

// 4 bytes at p (any alignment) in the low half of a vector, zeros above.
inline uint8x8_t load4_u8(const uint8_t* p) {
  uint32_t t;
  std::memcpy(&t, p, 4);
  return vreinterpret_u8_u32(vset_lane_u32(t, vdup_n_u32(0), 0));
}

// 16 channels of int32 accumulators (channels 4q..4q+3 in v[q]).
struct Acc16 {
  int32x4_t v[4];
};

inline Acc16 vld_acc16(const int32_t* p) {
  return {{vld1q_s32(p), vld1q_s32(p + 4), vld1q_s32(p + 8), vld1q_s32(p + 12)}};
}

// The requantization's constants, loaded once per call.
class Requant16 {
 public:
  explicit Requant16(const mbv2_qu8_requant& rq)
      : vlo_(vdupq_n_f32(rq.lo)),
        vhi_(vdupq_n_f32(rq.hi)),
        vzp_(vdupq_n_s16(static_cast<int16_t>(rq.zero_point))),
        vrscale_(vdupq_n_f32(rq.residual_scale)),
        vrzp_(vdupq_n_s32(rq.residual_zero_point)),
        residual_(rq.residual),
        residual_stride_(rq.residual_stride) {}

  // Row i's residual at channel n, or null without one.
  const uint8_t* residual(size_t i, size_t n) const {
    return residual_ ? residual_ + i * residual_stride_ + n : nullptr;
  }

  // 16 outputs from 16 accumulators and the channels' 16 scales; r: the
  // residual's row at the first of the nn (1..16) valid channels, or null.
  uint8x16_t operator()(const Acc16& acc, const float* scale, const uint8_t* r, size_t nn) const {
    float32x4_t v[4];
    for (size_t q = 0; q < 4; q++) v[q] = vmulq_f32(vcvtq_f32_s32(acc.v[q]), vld1q_f32(scale + 4 * q));
    if (r) {
      const uint8x16_t vr = vld1q_u8_upto(r, nn);
      const int16x8_t vr_lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vr)));
      const int16x8_t vr_hi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(vr)));
      const int32x4_t vri[4] = {vmovl_s16(vget_low_s16(vr_lo)), vmovl_s16(vget_high_s16(vr_lo)),
                                vmovl_s16(vget_low_s16(vr_hi)), vmovl_s16(vget_high_s16(vr_hi))};
      for (size_t q = 0; q < 4; q++) {
        // A product, then a sum: two roundings, as the twin.
        const float32x4_t vres = vmulq_f32(vcvtq_f32_s32(vsubq_s32(vri[q], vrzp_)), vrscale_);
        v[q] = vaddq_f32(v[q], vres);
      }
    }
    int32x4_t vi[4];
    for (size_t q = 0; q < 4; q++) vi[q] = vcvtnq_s32_f32_exact(vminq_f32(vmaxq_f32(v[q], vlo_), vhi_));
    // Narrowing and the zero point modulo 2^16, then modulo 2^8: the twin's
    // int32 sum cast to uint8, for any value.
    const int16x8_t v01 = vaddq_s16(vcombine_s16(vmovn_s32(vi[0]), vmovn_s32(vi[1])), vzp_);
    const int16x8_t v23 = vaddq_s16(vcombine_s16(vmovn_s32(vi[2]), vmovn_s32(vi[3])), vzp_);
    return vcombine_u8(vmovn_u16(vreinterpretq_u16_s16(v01)), vmovn_u16(vreinterpretq_u16_s16(v23)));
  }

 private:
  float32x4_t vlo_, vhi_;
  int16x8_t vzp_;
  float32x4_t vrscale_;
  int32x4_t vrzp_;
  const uint8_t* residual_;
  size_t residual_stride_;
};

// mbv2_qu8_quantize_ukernel_fn, 16 values at a time: the twin's multiply, clamp
// and round to nearest even, then narrowed (the values are 0..255); the last
// n % 16 values through the twin.
inline void quantize_16(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  const float32x4_t inv = vdupq_n_f32(inv_scale), lo = vdupq_n_f32(0.0f), top = vdupq_n_f32(hi);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t v[4];
    for (size_t q = 0; q < 4; q++) {
      v[q] = vcvtnq_s32_f32_exact(vminq_f32(vmaxq_f32(vmulq_f32(vld1q_f32(x + i + 4 * q), inv), lo), top));
    }
    const uint16x8_t v01 = vreinterpretq_u16_s16(vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1])));
    const uint16x8_t v23 = vreinterpretq_u16_s16(vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3])));
    vst1q_u8(y + i, vcombine_u8(vmovn_u16(v01), vmovn_u16(v23)));
  }
  mbv2::quant::quantize(n - i, x + i, inv_scale, hi, y + i);
}

// acc += x (16 uint8 inputs, widened) * k (16 int8 weights, widened to the
// int16 pairs klo, khi): exact int32 products, no saturation.
inline void vmlal16(Acc16& acc, uint8x16_t x, int16x8_t klo, int16x8_t khi) {
  const int16x8_t xlo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x)));
  const int16x8_t xhi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(x)));
  acc.v[0] = vmlal_s16(acc.v[0], vget_low_s16(xlo), vget_low_s16(klo));
  acc.v[1] = vmlal_s16(acc.v[1], vget_high_s16(xlo), vget_high_s16(klo));
  acc.v[2] = vmlal_s16(acc.v[2], vget_low_s16(xhi), vget_low_s16(khi));
  acc.v[3] = vmlal_s16(acc.v[3], vget_high_s16(xhi), vget_high_s16(khi));
}

// Both int8 depthwise 3x3 kernels, for both ISAs (no dot product needed): 16
// channel tiles outer, pixels inner, so a tile's nine taps stay in registers,
// widened to int16, across the whole row. Only the last tile may hold fewer
// than 16 channels; it takes the lane-exact loads and stores. The residual,
// as in the twin (quant-common.h), is read as row 0 for every pixel.
template <size_t Stride>
inline void dwconv3x3_16c(size_t wo, size_t channels, const uint8_t* const* rows, size_t in_pixel_stride,
                          const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* out,
                          size_t out_pixel_stride) {
  constexpr size_t nr = 16;
  const Requant16 requant(*rq);
  const char* panel = static_cast<const char*>(w);
  for (size_t c0 = 0; c0 < channels; c0 += nr, panel += panel_stride) {
    const size_t cc = channels - c0 < nr ? channels - c0 : nr;
    const int8_t* wq = panel_weights(panel, nr);
    int16x8_t vk_lo[9], vk_hi[9];
    for (size_t t = 0; t < 9; t++) {
      const int8x16_t vk = vld1q_s8(wq + t * nr);
      vk_lo[t] = vmovl_s8(vget_low_s8(vk));
      vk_hi[t] = vmovl_s8(vget_high_s8(vk));
    }
    const int32_t* bias = panel_bias(panel);
    const float* scale = panel_scale(panel, nr);
    const uint8_t* residual = requant.residual(0, c0);
    const uint8_t* i0 = rows[0] + c0;
    const uint8_t* i1 = rows[1] + c0;
    const uint8_t* i2 = rows[2] + c0;
    uint8_t* o = out + c0;
    const size_t step = Stride * in_pixel_stride;
    if (cc == nr) {
      for (size_t x = 0; x < wo; x++, i0 += step, i1 += step, i2 += step, o += out_pixel_stride) {
        Acc16 acc = vld_acc16(bias);
        for (size_t kx = 0; kx < 3; kx++) {
          vmlal16(acc, vld1q_u8(i0 + kx * in_pixel_stride), vk_lo[kx], vk_hi[kx]);
          vmlal16(acc, vld1q_u8(i1 + kx * in_pixel_stride), vk_lo[3 + kx], vk_hi[3 + kx]);
          vmlal16(acc, vld1q_u8(i2 + kx * in_pixel_stride), vk_lo[6 + kx], vk_hi[6 + kx]);
        }
        vst1q_u8(o, requant(acc, scale, residual, nr));
      }
    } else {
      for (size_t x = 0; x < wo; x++, i0 += step, i1 += step, i2 += step, o += out_pixel_stride) {
        Acc16 acc = vld_acc16(bias);
        for (size_t kx = 0; kx < 3; kx++) {
          vmlal16(acc, vld1q_u8_upto(i0 + kx * in_pixel_stride, cc), vk_lo[kx], vk_hi[kx]);
          vmlal16(acc, vld1q_u8_upto(i1 + kx * in_pixel_stride, cc), vk_lo[3 + kx], vk_hi[3 + kx]);
          vmlal16(acc, vld1q_u8_upto(i2 + kx * in_pixel_stride, cc), vk_lo[6 + kx], vk_hi[6 + kx]);
        }
        vst1q_u8_upto(o, requant(acc, scale, residual, cc), cc);
      }
    }
  }
}

// The driver of both int8 GEMMs (qu8-gemm-4x16-neon.cc, qu8-gemm-4x16c4-neondot.cc;
// the arguments are ukernels.h's): panels of 16 output channels outer, tiles of
// 4 rows inner, each tile requantized and stored. What the two differ in:
//   Tile: the kernel's 4 x 16 register tile, an aggregate whose one member is
//     Acc16 acc[4] (row r's 16 channels in acc[r]), with its k steps;
//   init(panel) -> Acc16: every row's starting accumulators for the panel (its
//     bias, plus what the kernel's k loop needs);
//   k_loop(tile, a0, a1, a2, a3, weights): adds the kc products of the four A
//     rows a0..a3 and the panel's weights into tile.
template <class Tile, class Init, class KLoop>
inline void gemm_4x16(size_t m, size_t nc, const uint8_t* a, size_t a_stride, const void* w, size_t panel_stride,
                      const mbv2_qu8_requant* rq, uint8_t* c, size_t c_stride, Init&& init, KLoop&& k_loop) {
  constexpr size_t nr = 16;
  const Requant16 requant(*rq);
  const char* panel = static_cast<const char*>(w);
  for (size_t n0 = 0; n0 < nc; n0 += nr, panel += panel_stride) {
    const size_t nn = nc - n0 < nr ? nc - n0 : nr;
    const float* scale = panel_scale(panel, nr);
    const int8_t* wq = panel_weights(panel, nr);
    const Acc16 vinit = init(panel);
    for (size_t i = 0; i < m; i += 4) {
      // Rows past m repeat the last row, so the tile never branches on m.
      const uint8_t* a0 = a + i * a_stride;
      const uint8_t* a1 = i + 1 < m ? a0 + a_stride : a0;
      const uint8_t* a2 = i + 2 < m ? a1 + a_stride : a1;
      const uint8_t* a3 = i + 3 < m ? a2 + a_stride : a2;
      Tile tile{{vinit, vinit, vinit, vinit}};
      k_loop(tile, a0, a1, a2, a3, wq);
      const auto store = [&](size_t r) {  // vst1q_u8_upto: one vst1q_u8 for a whole panel
        vst1q_u8_upto(c + (i + r) * c_stride + n0, requant(tile.acc[r], scale, requant.residual(i + r, n0), nn),
                      nn);
      };
      // Rows past m (computed from a repeated pointer) are dropped here; each
      // row by a constant index, so the tile stays in registers.
      store(0);
      if (m - i > 1) store(1);
      if (m - i > 2) store(2);
      if (m - i > 3) store(3);
    }
  }
}

}  // namespace
}  // namespace mbv2::neon_qu8
