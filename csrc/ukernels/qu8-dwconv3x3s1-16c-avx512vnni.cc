// Int8 depthwise 3x3 stride 1 + requantization, AVX-512 VNNI: 16 channels (one ZMM) per tile,
// 14 output pixels at a time (of 4..16, the fastest on 14- to 112-wide rows).
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_dwconv3x3s1_ukernel_16c__avx512(size_t wo, size_t channels, const uint8_t* const* rows,
                                              size_t in_pixel_stride, const void* w, size_t panel_stride,
                                              const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2::x86::qdwconv3x3<mbv2::x86::Avx512Vnni, 1, 14>(wo, channels, rows, in_pixel_stride, w, panel_stride, rq, out,
                                                      out_pixel_stride);
}
