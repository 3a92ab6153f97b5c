// Expand 1x1 conv + bias + ReLU6, 7x32 register tile: 7 rows x 2 ZMM = 14 accumulators, enough independent FMA chains to cover 2 ports x 4 cycles of latency; 7 divides every late row width (7, 14, 28, 56, 112).
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx512.h"
#include "ukernels/x86-gemm.h"

void mbv2_f32_expand_relu6_ukernel_7x32__avx512(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                              const float* w, float* c, size_t c_stride) {
  mbv2::x86::expand_relu6<mbv2::x86::Avx512, 7, 2>(m, nc, kc, a, a_stride, w, c, c_stride);
}
