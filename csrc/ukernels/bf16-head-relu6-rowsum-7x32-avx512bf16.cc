// Head 1x1 conv + ReLU6 summed over the row, bf16 weights and activations, 7x32 register tile: 7 rows x 2 ZMM = 14 accumulators (the float32 tile: 14x32 measured 13% slower on the whole network at 224, its 14 A-row pointers spilled).
#include "ukernels/ukernels.h"
#include "ukernels/x86-bf16.h"

void mbv2_bf16_head_relu6_rowsum_ukernel_7x32__avx512bf16(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* sum) {
  mbv2::x86::bf16_head_relu6_rowsum<7, 2>(m, nc, kc, a, a_stride, w, sum);
}
