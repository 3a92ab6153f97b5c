// Int8 GEMM + requantization, AVX-VNNI: 4 rows x 24 channels (3 YMM), k groups of 4.
// 12 accumulators + 3 weight vectors + 1 broadcast fill the 16 YMM registers;
// measured ahead of 3x32, 6x16, 5x16 and 4x16 (by 2-6% on the network's GEMMs).
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_gemm_ukernel_4x24c4__avxvnni(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                           const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                           size_t c_stride) {
  mbv2::x86::qgemm<mbv2::x86::AvxVnni, 4, 3>(m, nc, kc, a, a_stride, w, panel_stride, rq, c, c_stride);
}
