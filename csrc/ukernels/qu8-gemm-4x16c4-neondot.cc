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
};

inline int8x8_t flip8(uint8x8_t v) { return vreinterpret_s8_u8(veor_u8(v, vdup_n_u8(0x80))); }

constexpr size_t nr = 16, kr = 4;

// A panel's starting accumulators: bias + 128 * sum_k w[k][n], the flip's
// correction, over its `groups` groups of 4 k.
inline Acc16 bias_and_correction(const char* panel, size_t groups) {
  using namespace mbv2::neon_qu8;
  Acc16 vinit = vld_acc16(panel_bias(panel));
  const int8x16_t vones = vdupq_n_s8(1);
  int32x4_t vsum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
  const int8_t* wk = panel_weights(panel, nr);
  for (size_t g = 0; g < groups; g++, wk += nr * kr) {
    for (int q = 0; q < 4; q++) vsum[q] = vdotq_s32(vsum[q], vld1q_s8(wk + 16 * q), vones);
  }
  for (int q = 0; q < 4; q++) vinit.v[q] = vaddq_s32(vinit.v[q], vshlq_n_s32(vsum[q], 7));
  return vinit;
}

// The k loop of one tile (the driver, gemm_4x16, is neon-qu8.h's): `groups`
// groups of 4 k of rows a0..a3, flipped, against the panel's weights wk.
inline void k_loop(Tile4x16c4& tile, size_t groups, const uint8_t* a0, const uint8_t* a1, const uint8_t* a2,
                   const uint8_t* a3, const int8_t* wk) {
  using mbv2::neon_qu8::load4_u8;
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
}

}  // namespace

void mbv2_qu8_gemm_ukernel_4x16c4__neondot(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                           const void* w, size_t panel_stride, const mbv2_qu8_requant* rq,
                                           uint8_t* c, size_t c_stride) {
  const size_t groups = (kc + kr - 1) / kr;
  const auto init = [groups](const char* panel) { return bias_and_correction(panel, groups); };
  const auto tile_k_loop = [groups](Tile4x16c4& tile, const uint8_t* a0, const uint8_t* a1, const uint8_t* a2,
                                    const uint8_t* a3, const int8_t* wq) { k_loop(tile, groups, a0, a1, a2, a3, wq); };
  mbv2::neon_qu8::gemm_4x16<Tile4x16c4>(m, nc, a, a_stride, w, panel_stride, rq, c, c_stride, init, tile_k_loop);
}
