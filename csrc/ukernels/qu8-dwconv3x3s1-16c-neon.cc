// NEON (ARMv8.0) int8 stride-1 depthwise 3x3: 16 channels per packed tile, inputs
// and taps widened to int16 and multiply-accumulated into int32 (exact),
// requantization fused. The loop is neon-qu8.h's, shared with the neondot ISA.
#include "ukernels/neon-qu8.h"

void mbv2_qu8_dwconv3x3s1_ukernel_16c__neon(size_t wo, size_t channels, const uint8_t* const* rows,
                                            size_t in_pixel_stride, const void* w, size_t panel_stride,
                                            const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2::neon_qu8::dwconv3x3_16c<1>(wo, channels, rows, in_pixel_stride, w, panel_stride, rq, out, out_pixel_stride);
}
