// Head 1x1 conv + ReLU6 summed over the row into the pool, 6x16 register tile (the expand tile).
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx2.h"
#include "ukernels/x86-gemm.h"

void mbv2_f32_head_relu6_rowsum_ukernel_6x16__avx2(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                                   const float* w, float* sum) {
  mbv2::x86::head_relu6_rowsum<mbv2::x86::Avx2, 6, 2>(m, nc, kc, a, a_stride, w, sum);
}
