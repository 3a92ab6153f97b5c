// NEON projection GEMM: 4 pixels x 8 output channels per register tile, added
// onto c, which already holds bias (+ residual) and the earlier chunks' sums.
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

using mbv2::neon::Tile4x8;
using mbv2::neon::Vec8;

void mbv2_f32_project_acc_ukernel_4x8__neon(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                            const float* w, size_t w_panel_stride, float* c, size_t c_stride) {
  mbv2::neon::gemm_4x8(m, nc, kc, a, a_stride, w, w_panel_stride, /*biased=*/false,
                       [&](size_t i, size_t rows, size_t n0, size_t nn, const Tile4x8& tile) {
                         tile.for_rows(rows, [&](size_t r, Vec8 vacc) {
                           float* cr = c + (i + r) * c_stride + n0;
                           mbv2::neon::vst8_upto(cr, mbv2::neon::vadd8(mbv2::neon::vld8_upto(cr, nn), vacc), nn);
                         });
                       });
}
