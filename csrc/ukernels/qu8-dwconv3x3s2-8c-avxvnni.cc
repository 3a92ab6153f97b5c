// Int8 depthwise 3x3 stride 2 + requantization, AVX-VNNI: 8 channels (one YMM) per tile, 4 pixels at a time.
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_dwconv3x3s2_ukernel_8c__avxvnni(size_t wo, size_t channels, const uint8_t* const* rows,
                                              size_t in_pixel_stride, const void* w, size_t panel_stride,
                                              const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2::x86::qdwconv3x3<mbv2::x86::AvxVnni, 2, 4>(wo, channels, rows, in_pixel_stride, w, panel_stride, rq, out,
                                                  out_pixel_stride);
}
