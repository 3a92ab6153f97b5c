// NEON projection GEMM: 4 pixels x 8 output channels per register tile, added
// onto bias + src (either may be null; src may be c, holding the earlier
// chunks' sums).
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

using mbv2::neon::Tile4x8;
using mbv2::neon::Vec8;

void mbv2_f32_project_acc_ukernel_4x8__neon(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                            const float* w, size_t w_panel_stride, const float* bias,
                                            const float* src, float* c, size_t c_stride) {
  mbv2::neon::gemm_4x8(m, nc, kc, a, a_stride, w, w_panel_stride, /*biased=*/false,
                       [&](size_t i, size_t rows, size_t n0, size_t nn, const Tile4x8& tile) {
                         const Vec8 vzero{vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
                         const Vec8 vbias = bias ? mbv2::neon::vld8_upto(bias + n0, nn) : vzero;
                         tile.for_rows(rows, [&](size_t r, Vec8 vacc) {
                           const size_t at = (i + r) * c_stride + n0;
                           Vec8 start = vbias;
                           if (src) {
                             const Vec8 vsrc = mbv2::neon::vld8_upto(src + at, nn);
                             start = bias ? mbv2::neon::vadd8(vbias, vsrc) : vsrc;
                           }
                           mbv2::neon::vst8_upto(c + at, mbv2::neon::vadd8(start, vacc), nn);
                         });
                       });
}
