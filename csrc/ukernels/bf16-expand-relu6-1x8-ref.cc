// Scalar twin of the bf16 expand GEMM: the float32 twin's loop on bf16 pairs.
#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_bf16_expand_relu6_ukernel_1x8__ref(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                             const float* w, float* c, size_t c_stride) {
  mbv2::ref::biased_gemm<8, true>(m, nc, kc, a, a_stride, w, [&](size_t i, size_t n0, size_t nn, const float* acc) {
    for (size_t j = 0; j < nn; j++) c[i * c_stride + n0 + j] = mbv2::ref::relu6(acc[j]);
  });
}
