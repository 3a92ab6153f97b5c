// NEON stem: 3x3 stride-2 conv from the 3-channel image, 4 output pixels x 8
// channels per register tile. The 27 taps are broadcast one by one: with only
// 3 interleaved input channels there is no vector along K to load, and the stem
// is under 4% of the network's MACs.
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

using mbv2::neon::Vec8;

void mbv2_f32_stem3x3s2_relu6_ukernel_4x8__neon(size_t wo, size_t nc, const float* const* rows, const float* w,
                                                float* out, size_t out_pixel_stride) {
  constexpr size_t nr = 8;
  constexpr size_t kc = 27;
  for (size_t n0 = 0; n0 < nc; n0 += nr, w += (kc + 1) * nr) {
    const size_t nn = std::min(nr, nc - n0);
    for (size_t x = 0; x < wo; x += 4) {
      // Pixels past wo repeat the last one; their results are not stored.
      const size_t x0 = x * 6;  // 2 columns x 3 channels per output pixel
      const size_t x1 = std::min(x + 1, wo - 1) * 6;
      const size_t x2 = std::min(x + 2, wo - 1) * 6;
      const size_t x3 = std::min(x + 3, wo - 1) * 6;
      mbv2::neon::Tile4x8 tile(Vec8{vld1q_f32(w), vld1q_f32(w + 4)});
      const float* wk = w + nr;
      for (size_t ci = 0; ci < 3; ci++) {
        for (size_t ky = 0; ky < 3; ky++) {
          for (size_t kx = 0; kx < 3; kx++, wk += nr) {
            const float* i = rows[ky] + kx * 3 + ci;
            tile.fma_lane<0>(wk, vld1q_dup_f32(i + x0), vld1q_dup_f32(i + x1), vld1q_dup_f32(i + x2),
                             vld1q_dup_f32(i + x3));
          }
        }
      }
      tile.for_rows(std::min<size_t>(4, wo - x), [&](size_t p, Vec8 vacc) {
        mbv2::neon::vst8_upto(out + (x + p) * out_pixel_stride + n0, mbv2::neon::vrelu6_8(vacc), nn);
      });
    }
  }
}
