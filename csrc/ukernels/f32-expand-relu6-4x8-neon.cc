// NEON expand GEMM: 4 pixels x 8 hidden channels per register tile, bias from
// the panel, ReLU6 fused before the store.
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

using mbv2::neon::Tile4x8;
using mbv2::neon::Vec8;

void mbv2_f32_expand_relu6_ukernel_4x8__neon(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                             const float* w, float* c, size_t c_stride) {
  mbv2::neon::gemm_4x8(m, nc, kc, a, a_stride, w, (kc + 1) * 8, /*biased=*/true,
                       [&](size_t i, size_t rows, size_t n0, size_t nn, const Tile4x8& tile) {
                         tile.for_rows(rows, [&](size_t r, Vec8 vacc) {
                           mbv2::neon::vst8_upto(c + (i + r) * c_stride + n0, mbv2::neon::vrelu6_8(vacc), nn);
                         });
                       });
}
