// Scalar twin of the projection GEMM: c = bias + src + a chunk of K, so chunks
// of K can arrive one by one (src = c) after the first.
#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_f32_project_acc_ukernel_1x8__ref(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                           const float* w, size_t w_panel_stride, const float* bias,
                                           const float* src, float* c, size_t c_stride) {
  mbv2::ref::project_acc<8, false>(m, nc, kc, a, a_stride, w, w_panel_stride, bias, src, c, c_stride);
}
