// Int8 GEMM + requantization, AMX-INT8: 32x32 blocks of 2x2 TDPBUSD tiles, k groups of 4 (x86-amx.h), the rest on the AVX-512 VNNI kernel.
#include "ukernels/ukernels.h"
#include "ukernels/x86-amx.h"

void mbv2_qu8_gemm_ukernel_32x32c4__amx(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                        const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                        size_t c_stride) {
  mbv2::x86::amx_qgemm<mbv2::x86::AmxTiles>(m, nc, kc, a, a_stride, w, panel_stride, rq, c, c_stride);
}
