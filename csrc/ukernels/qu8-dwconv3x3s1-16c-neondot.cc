// The neondot ISA's int8 stride-1 depthwise 3x3: the dot product has nothing to
// add to a depthwise conv, so this is the ARMv8.0 kernel itself, called through
// (not compiled again here with -march=armv8.2-a+dotprod).
#include "ukernels/ukernels.h"

void mbv2_qu8_dwconv3x3s1_ukernel_16c__neondot(size_t wo, size_t channels, const uint8_t* const* rows,
                                               size_t in_pixel_stride, const void* w, size_t panel_stride,
                                               const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2_qu8_dwconv3x3s1_ukernel_16c__neon(wo, channels, rows, in_pixel_stride, w, panel_stride, rq, out,
                                         out_pixel_stride);
}
