// NEON head: 1x1 conv + ReLU6 on 4 pixels x 8 channels per register tile, the
// rows summed into the pooled sum in the scalar twin's order.
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

using mbv2::neon::Tile4x8;
using mbv2::neon::Vec8;

void mbv2_f32_head_relu6_rowsum_ukernel_4x8__neon(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                                  const float* w, float* sum) {
  mbv2::neon::gemm_4x8(m, nc, kc, a, a_stride, w, (kc + 1) * 8, /*biased=*/true,
                       [&](size_t, size_t rows, size_t n0, size_t nn, const Tile4x8& tile) {
                         Vec8 vsum = mbv2::neon::vld8_upto(sum + n0, nn);
                         tile.for_rows(rows, [&](size_t, Vec8 vacc) {
                           vsum = mbv2::neon::vadd8(vsum, mbv2::neon::vrelu6_8(vacc));
                         });
                         mbv2::neon::vst8_upto(sum + n0, vsum, nn);
                       });
}
