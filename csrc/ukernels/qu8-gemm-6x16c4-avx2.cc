// Int8 GEMM + requantization, AVX2 (vpmaddwd, no VNNI): 6 rows x 16 channels (2 YMM), k groups of 4.
// 12 accumulators; 6x16, 5x16 and 4x24 were within 1% (x86-qu8.h, Avx2, for why groups of 4).
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_gemm_ukernel_6x16c4__avx2(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                        const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                        size_t c_stride) {
  mbv2::x86::qgemm<mbv2::x86::Avx2, 6, 2>(m, nc, kc, a, a_stride, w, panel_stride, rq, c, c_stride);
}
