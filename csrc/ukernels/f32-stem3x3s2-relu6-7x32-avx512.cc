// Stem 3x3 stride-2 conv + bias + ReLU6 as a K = 27 GEMM, 7x32 tile (pixels x output channels).
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx512.h"
#include "ukernels/x86-gemm.h"

void mbv2_f32_stem3x3s2_relu6_ukernel_7x32__avx512(size_t wo, size_t nc, const float* const* rows, const float* w,
                                                 float* out, size_t out_pixel_stride) {
  mbv2::x86::stem3x3s2_relu6<mbv2::x86::Avx512, 7, 2>(wo, nc, rows, w, out, out_pixel_stride);
}
