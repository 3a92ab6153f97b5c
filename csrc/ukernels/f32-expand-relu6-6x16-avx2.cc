// Expand 1x1 conv + bias + ReLU6, 6x16 register tile: 6 rows x 2 YMM = 12 accumulators + 2 weight vectors + 1 broadcast: 15 of the 16 YMM registers.
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx2.h"
#include "ukernels/x86-gemm.h"

void mbv2_f32_expand_relu6_ukernel_6x16__avx2(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                              const float* w, float* c, size_t c_stride) {
  mbv2::x86::expand_relu6<mbv2::x86::Avx2, 6, 2>(m, nc, kc, a, a_stride, w, c, c_stride);
}
