// Int8 GEMM + requantization, AVX-512 VNNI: 14 rows x 32 channels (2 ZMM), k groups of 4.
// 28 vpdpbusd accumulators: 14x32, 12x32, 6x64 and 7x64 were within 3% on the
// network's GEMMs (Zen 5), 14x32 ahead; nr = 32 pads the narrow projections
// (16, 24 channels) less than 64 would. 14 rows: the 112-, 56-, 28- and 14-wide rows split evenly.
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_gemm_ukernel_14x32c4__avx512(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                           const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                           size_t c_stride) {
  mbv2::x86::qgemm<mbv2::x86::Avx512Vnni, 14, 2>(m, nc, kc, a, a_stride, w, panel_stride, rq, c, c_stride);
}
