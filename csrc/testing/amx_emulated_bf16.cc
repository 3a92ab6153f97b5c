// The AMX-BF16 kernels on EmulatedTiles (amx_emulated.h); compiled with the
// AVX-512 BF16 flags of their fallbacks and epilogues.
#include "testing/amx_emulated.h"
#include "ukernels/x86-amx.h"

using mbv2::x86::EmulatedTiles;

void mbv2_bf16_expand_relu6_ukernel_32x32__amx_emulated(size_t m, size_t nc, size_t kc, const float* a,
                                                        size_t a_stride, const float* w, float* c, size_t c_stride) {
  mbv2::x86::amx_bf16_expand_relu6<EmulatedTiles>(m, nc, kc, a, a_stride, w, c, c_stride);
}

void mbv2_bf16_project_acc_ukernel_32x32__amx_emulated(size_t m, size_t nc, size_t kc, const float* a,
                                                       size_t a_stride, const float* w, size_t w_panel_stride,
                                                       const float* bias, const float* src, float* c,
                                                       size_t c_stride) {
  mbv2::x86::amx_bf16_project_acc<EmulatedTiles>(m, nc, kc, a, a_stride, w, w_panel_stride, bias, src, c, c_stride);
}

void mbv2_bf16_head_relu6_rowsum_ukernel_32x32__amx_emulated(size_t m, size_t nc, size_t kc, const float* a,
                                                             size_t a_stride, const float* w, float* sum) {
  mbv2::x86::amx_bf16_head_relu6_rowsum<EmulatedTiles>(m, nc, kc, a, a_stride, w, sum);
}
