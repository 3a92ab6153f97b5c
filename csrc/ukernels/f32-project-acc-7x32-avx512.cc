// Projection 1x1 conv onto bias + residual or onto c, 7x32 register tile (the expand tile: same register budget).
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx512.h"
#include "ukernels/x86-gemm.h"

void mbv2_f32_project_acc_ukernel_7x32__avx512(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                               const float* w, size_t w_panel_stride, const float* bias,
                                               const float* src, float* c, size_t c_stride) {
  mbv2::x86::project_acc<mbv2::x86::Avx512, 7, 2>(m, nc, kc, a, a_stride, w, w_panel_stride, bias, src, c, c_stride);
}
