// Expand 1x1 conv + bias + ReLU6, bf16 weights and activations, 7x32 register tile: 7 rows x 2 ZMM = 14 accumulators (the float32 tile: 14x32 measured 13% slower on the whole network at 224, its 14 A-row pointers spilled).
#include "ukernels/ukernels.h"
#include "ukernels/x86-bf16.h"

void mbv2_bf16_expand_relu6_ukernel_7x32__avx512bf16(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c, size_t c_stride) {
  mbv2::x86::bf16_expand_relu6<7, 2>(m, nc, kc, a, a_stride, w, c, c_stride);
}
