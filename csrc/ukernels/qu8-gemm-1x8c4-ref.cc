// Scalar twin of the int8 GEMM: one pixel times one 8-wide panel, k in groups of 4.
#include "ukernels/quant-common.h"

void mbv2_qu8_gemm_ukernel_1x8c4__ref(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                      const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                      size_t c_stride) {
  constexpr size_t nr = 8, kr = 4;
  const char* panel = static_cast<const char*>(w);
  for (size_t n0 = 0; n0 < nc; n0 += nr, panel += panel_stride) {
    const size_t nn = std::min(nr, nc - n0);
    const int8_t* wq = mbv2::quant::panel_weights(panel, nr);
    for (size_t i = 0; i < m; i++) {
      const uint8_t* ai = a + i * a_stride;
      for (size_t j = 0; j < nn; j++) {
        int32_t acc = mbv2::quant::panel_bias(panel, j);
        for (size_t k = 0; k < kc; k++) {
          acc += static_cast<int32_t>(ai[k]) * wq[(k / kr * nr + j) * kr + k % kr];
        }
        c[i * c_stride + n0 + j] =
            mbv2::quant::requantize(acc, mbv2::quant::panel_scale(panel, nr, j), *rq, i, n0 + j);
      }
    }
  }
}
