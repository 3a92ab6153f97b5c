// NEON DotProd (ARMv8.2) int8 GEMM: 4 pixels x 16 output channels per register
// tile, k in groups of 4 (kr = 4): one SDOT adds 4 channels x 4 k products of a
// row. SDOT multiplies int8 by int8 and the activations are uint8, so each is
// flipped to a ^ 0x80 = a - 128 (int8) and the panel's bias gets back what that
// removed, exactly in int32:
//   sum_k a w = sum_k (a - 128) w + 128 sum_k w[k][n]
// where sum_k w[k][n] comes from SDOTs of the weights against all-ones bytes,
// once per panel (the packed zeros past kc add nothing to either sum). Two
// groups (8 k) per step: 16 accumulators + 4 rows of 8 activations + 8 weight
// vectors, 28 of the 32 vector registers.
// Built with -march=armv8.2-a+dotprod (CMakeLists.txt); dispatched only when
// HWCAP_ASIMDDP says so (core/kernel_set.cc).
#include "ukernels/neon-qu8.h"

namespace {

using mbv2::neon_qu8::Acc16;

struct Tile4x16c4 {
  Acc16 acc[4];

  // Row r += the 16 x 4 weights of one k group (at w: channels 4q..4q+3 in
  // its q-th 16 bytes) against group L of row r's 8 flipped activations.
  template <int L>
  void dot_group8(const int8_t* w, int8x8_t x0, int8x8_t x1, int8x8_t x2, int8x8_t x3) {
    const int8x16_t vw[4] = {vld1q_s8(w), vld1q_s8(w + 16), vld1q_s8(w + 32), vld1q_s8(w + 48)};
    const int8x8_t x[4] = {x0, x1, x2, x3};
    for (int r = 0; r < 4; r++) {
      for (int q = 0; q < 4; q++) acc[r].v[q] = vdotq_lane_s32(acc[r].v[q], vw[q], x[r], L);
    }
  }

  // f(r, row r's accumulators) for the first `rows` (1..) rows only: rows past
  // the caller's m were computed from a repeated pointer and are dropped here.
  template <class F>
  void for_rows(size_t rows, F f) const {
    f(0, acc[0]);
    if (rows > 1) f(1, acc[1]);
    if (rows > 2) f(2, acc[2]);
    if (rows > 3) f(3, acc[3]);
  }
};

inline int8x8_t flip8(uint8x8_t v) { return vreinterpret_s8_u8(veor_u8(v, vdup_n_u8(0x80))); }

}  // namespace

void mbv2_qu8_gemm_ukernel_4x16c4__neondot(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                           const void* w, size_t panel_stride, const mbv2_qu8_requant* rq,
                                           uint8_t* c, size_t c_stride) {
  constexpr size_t nr = 16, kr = 4;
  using namespace mbv2::neon_qu8;
  const Requant16 requant(*rq);
  const size_t groups = (kc + kr - 1) / kr;
  const char* panel = static_cast<const char*>(w);
  for (size_t n0 = 0; n0 < nc; n0 += nr, panel += panel_stride) {
    const size_t nn = nc - n0 < nr ? nc - n0 : nr;
    const float* scale = panel_scale(panel, nr);
    const int8_t* wq = panel_weights(panel, nr);
    // bias + 128 * sum_k w[k][n]: the flip's correction, per panel.
    Acc16 vinit = vld_acc16(panel_bias(panel));
    {
      const int8x16_t vones = vdupq_n_s8(1);
      int32x4_t vsum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
      const int8_t* wk = wq;
      for (size_t g = 0; g < groups; g++, wk += nr * kr) {
        for (int q = 0; q < 4; q++) vsum[q] = vdotq_s32(vsum[q], vld1q_s8(wk + 16 * q), vones);
      }
      for (int q = 0; q < 4; q++) vinit.v[q] = vaddq_s32(vinit.v[q], vshlq_n_s32(vsum[q], 7));
    }
    for (size_t i = 0; i < m; i += 4) {
      // Rows past m repeat the last row, so the tile never branches on m.
      const uint8_t* a0 = a + i * a_stride;
      const uint8_t* a1 = i + 1 < m ? a0 + a_stride : a0;
      const uint8_t* a2 = i + 2 < m ? a1 + a_stride : a1;
      const uint8_t* a3 = i + 3 < m ? a2 + a_stride : a2;
      Tile4x16c4 tile{{vinit, vinit, vinit, vinit}};
      const int8_t* wk = wq;
      size_t g = groups;
      // Two groups (8 k) at a time: one 8-byte load per row feeds both.
      for (; g >= 2; g -= 2, a0 += 8, a1 += 8, a2 += 8, a3 += 8, wk += 2 * nr * kr) {
        const int8x8_t x0 = flip8(vld1_u8(a0)), x1 = flip8(vld1_u8(a1));
        const int8x8_t x2 = flip8(vld1_u8(a2)), x3 = flip8(vld1_u8(a3));
        tile.dot_group8<0>(wk, x0, x1, x2, x3);
        tile.dot_group8<1>(wk + nr * kr, x0, x1, x2, x3);
      }
      // A last group: a row is readable up to kc rounded up to 4 bytes.
      if (g != 0) {
        const int8x8_t x0 = flip8(load4_u8(a0)), x1 = flip8(load4_u8(a1));
        const int8x8_t x2 = flip8(load4_u8(a2)), x3 = flip8(load4_u8(a3));
        tile.dot_group8<0>(wk, x0, x1, x2, x3);
      }
      const auto store = [&](size_t r, const Acc16& acc) {  // vst1q_u8_upto: one vst1q_u8 for a whole panel
        vst1q_u8_upto(c + (i + r) * c_stride + n0, requant(acc, scale, requant.residual(i + r, n0), nn), nn);
      };
      tile.for_rows(m - i, store);
    }
  }
}
