// Head 1x1 conv + ReLU6 summed over the row, bf16 weights and activations, AMX-BF16: 32x32 blocks of 2x2 tiles (x86-amx.h), the rest on the AVX-512 kernel.
#include "ukernels/ukernels.h"
#include "ukernels/x86-amx.h"

void mbv2_bf16_head_relu6_rowsum_ukernel_32x32__amx(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* sum) {
  mbv2::x86::amx_bf16_head_relu6_rowsum<mbv2::x86::AmxTiles>(m, nc, kc, a, a_stride, w, sum);
}
