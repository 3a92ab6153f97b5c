// The AMX-INT8 GEMM on EmulatedTiles (amx_emulated.h); compiled with the
// AVX-512 VNNI flags of its fallback and epilogue.
#include "testing/amx_emulated.h"
#include "ukernels/x86-amx.h"

void mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                                 const void* w, size_t panel_stride, const mbv2_qu8_requant* rq,
                                                 uint8_t* c, size_t c_stride) {
  mbv2::x86::amx_qgemm<mbv2::x86::EmulatedTiles>(m, nc, kc, a, a_stride, w, panel_stride, rq, c, c_stride);
}
