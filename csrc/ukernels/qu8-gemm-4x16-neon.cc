// NEON (ARMv8.0) int8 GEMM: 4 pixels x 16 output channels per register tile,
// k one at a time (kr = 1: the panel holds k rows of 16 int8 weights). Both
// operands widen to int16 (uint8 0..255 and int8 fit) and multiply-accumulate
// by lane into int32 (SMLAL): exact, nothing saturates. 16 accumulators + 4 rows
// of A + 2 weight vectors: 22 of the 32 vector registers. Requantization fused.
#include "ukernels/neon-qu8.h"

namespace {

using mbv2::neon_qu8::Acc16;

struct Tile4x16 {
  Acc16 acc[4];

  // Row r += x_r[L] * the 16 weights of one k (widened: wlo, whi); x_r holds 4
  // widened activations of row r.
  template <int L>
  void mlal_lane(int16x8_t wlo, int16x8_t whi, int16x4_t x0, int16x4_t x1, int16x4_t x2, int16x4_t x3) {
    const int16x4_t x[4] = {x0, x1, x2, x3};
    for (int r = 0; r < 4; r++) {
      acc[r].v[0] = vmlal_lane_s16(acc[r].v[0], vget_low_s16(wlo), x[r], L);
      acc[r].v[1] = vmlal_lane_s16(acc[r].v[1], vget_high_s16(wlo), x[r], L);
      acc[r].v[2] = vmlal_lane_s16(acc[r].v[2], vget_low_s16(whi), x[r], L);
      acc[r].v[3] = vmlal_lane_s16(acc[r].v[3], vget_high_s16(whi), x[r], L);
    }
  }

  // One k of the tail: the 16 weights (widened) against one byte of each row.
  void k_step_dup(int16x8_t wlo, int16x8_t whi, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3) {
    const int16x4_t x[4] = {vdup_n_s16(a0), vdup_n_s16(a1), vdup_n_s16(a2), vdup_n_s16(a3)};
    for (int r = 0; r < 4; r++) {
      acc[r].v[0] = vmlal_s16(acc[r].v[0], vget_low_s16(wlo), x[r]);
      acc[r].v[1] = vmlal_s16(acc[r].v[1], vget_high_s16(wlo), x[r]);
      acc[r].v[2] = vmlal_s16(acc[r].v[2], vget_low_s16(whi), x[r]);
      acc[r].v[3] = vmlal_s16(acc[r].v[3], vget_high_s16(whi), x[r]);
    }
  }

  // One k: the 16 weights at w against lane L of each row's activations.
  template <int L>
  void k_step(const int8_t* w, int16x4_t x0, int16x4_t x1, int16x4_t x2, int16x4_t x3) {
    const int8x16_t vw = vld1q_s8(w);
    mlal_lane<L>(vmovl_s8(vget_low_s8(vw)), vmovl_s8(vget_high_s8(vw)), x0, x1, x2, x3);
  }
};

inline int16x8_t widen(uint8x8_t v) { return vreinterpretq_s16_u16(vmovl_u8(v)); }

// The k loop of one tile (the driver, gemm_4x16, is neon-qu8.h's): the kc
// products of rows a0..a3 and the panel's weights wk, k rows of 16.
inline void k_loop(Tile4x16& tile, size_t kc, const uint8_t* a0, const uint8_t* a1, const uint8_t* a2,
                   const uint8_t* a3, const int8_t* wk) {
  constexpr size_t nr = 16;
  size_t k = kc;
  // Eight k at a time: one 8-byte load per row feeds eight by-lane steps.
  for (; k >= 8; k -= 8, a0 += 8, a1 += 8, a2 += 8, a3 += 8, wk += 8 * nr) {
    const int16x8_t x0 = widen(vld1_u8(a0)), x1 = widen(vld1_u8(a1));
    const int16x8_t x2 = widen(vld1_u8(a2)), x3 = widen(vld1_u8(a3));
    const int16x4_t x0l = vget_low_s16(x0), x1l = vget_low_s16(x1), x2l = vget_low_s16(x2), x3l = vget_low_s16(x3);
    const int16x4_t x0h = vget_high_s16(x0), x1h = vget_high_s16(x1), x2h = vget_high_s16(x2),
                    x3h = vget_high_s16(x3);
    tile.k_step<0>(wk + 0 * nr, x0l, x1l, x2l, x3l);
    tile.k_step<1>(wk + 1 * nr, x0l, x1l, x2l, x3l);
    tile.k_step<2>(wk + 2 * nr, x0l, x1l, x2l, x3l);
    tile.k_step<3>(wk + 3 * nr, x0l, x1l, x2l, x3l);
    tile.k_step<0>(wk + 4 * nr, x0h, x1h, x2h, x3h);
    tile.k_step<1>(wk + 5 * nr, x0h, x1h, x2h, x3h);
    tile.k_step<2>(wk + 6 * nr, x0h, x1h, x2h, x3h);
    tile.k_step<3>(wk + 7 * nr, x0h, x1h, x2h, x3h);
  }
  // 1..7 k left, one at a time: each row's byte broadcast (only bytes below
  // kc are read, and only the panel's k rows).
  for (; k != 0; k--, wk += nr) {
    const int8x16_t vw = vld1q_s8(wk);
    tile.k_step_dup(vmovl_s8(vget_low_s8(vw)), vmovl_s8(vget_high_s8(vw)), *a0++, *a1++, *a2++, *a3++);
  }
}

}  // namespace

void mbv2_qu8_gemm_ukernel_4x16__neon(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                      const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                      size_t c_stride) {
  using namespace mbv2::neon_qu8;
  const auto init = [](const char* panel) { return vld_acc16(panel_bias(panel)); };
  const auto tile_k_loop = [kc](Tile4x16& tile, const uint8_t* a0, const uint8_t* a1, const uint8_t* a2,
                                const uint8_t* a3, const int8_t* wq) { k_loop(tile, kc, a0, a1, a2, a3, wq); };
  gemm_4x16<Tile4x16>(m, nc, a, a_stride, w, panel_stride, rq, c, c_stride, init, tile_k_loop);
}
