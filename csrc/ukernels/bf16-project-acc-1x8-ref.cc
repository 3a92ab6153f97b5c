// Scalar twin of the bf16 projection GEMM: c = bias + src + a chunk of K on
// bf16 pairs, the accumulator starting from bias + src as the AVX512-BF16
// kernel's does, so both add the same float32 sums in the same order.
#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_bf16_project_acc_ukernel_1x8__ref(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                            const float* w, size_t w_panel_stride, const float* bias,
                                            const float* src, float* c, size_t c_stride) {
  constexpr size_t nr = 8;
  for (size_t n0 = 0; n0 < nc; n0 += nr, w += w_panel_stride) {
    const size_t nn = std::min(nr, nc - n0);
    for (size_t i = 0; i < m; i++) {
      float acc[nr] = {};
      for (size_t j = 0; j < nn; j++) {
        const float b = bias ? bias[n0 + j] : 0.0f;
        acc[j] = src ? (bias ? b + src[i * c_stride + n0 + j] : src[i * c_stride + n0 + j]) : b;
      }
      mbv2::ref::dot_panel_bf16<nr>(kc, a + i * a_stride, w, acc);
      for (size_t j = 0; j < nn; j++) c[i * c_stride + n0 + j] = acc[j];
    }
  }
}
