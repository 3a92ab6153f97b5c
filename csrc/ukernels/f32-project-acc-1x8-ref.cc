// Scalar twin of the projection GEMM: accumulates into c, which the caller has
// initialised with bias (and residual), so chunks of K can arrive one by one.
#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_f32_project_acc_ukernel_1x8__ref(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                           const float* w, size_t w_panel_stride, float* c, size_t c_stride) {
  constexpr size_t nr = 8;
  for (size_t n0 = 0; n0 < nc; n0 += nr, w += w_panel_stride) {
    const size_t nn = std::min(nr, nc - n0);
    for (size_t i = 0; i < m; i++) {
      float acc[nr] = {};
      mbv2::ref::dot_panel<nr>(kc, a + i * a_stride, w, acc);
      for (size_t j = 0; j < nn; j++) c[i * c_stride + n0 + j] += acc[j];
    }
  }
}
