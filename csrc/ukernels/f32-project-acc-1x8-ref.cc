// Scalar twin of the projection GEMM: c = bias + src + a chunk of K, so chunks
// of K can arrive one by one (src = c) after the first.
#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_f32_project_acc_ukernel_1x8__ref(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                           const float* w, size_t w_panel_stride, const float* bias,
                                           const float* src, float* c, size_t c_stride) {
  constexpr size_t nr = 8;
  for (size_t n0 = 0; n0 < nc; n0 += nr, w += w_panel_stride) {
    const size_t nn = std::min(nr, nc - n0);
    for (size_t i = 0; i < m; i++) {
      float acc[nr] = {};
      mbv2::ref::dot_panel<nr>(kc, a + i * a_stride, w, acc);
      for (size_t j = 0; j < nn; j++) {
        const size_t at = i * c_stride + n0 + j;
        const float start = (bias ? bias[n0 + j] : 0.0f) + (src ? src[at] : 0.0f);
        c[at] = start + acc[j];
      }
    }
  }
}
