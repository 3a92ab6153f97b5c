// The amx ISA's int8 stride-2 depthwise 3x3: tiles have nothing to add to a
// depthwise conv, so this is the AVX-512 VNNI kernel itself, called through.
#include "ukernels/ukernels.h"

void mbv2_qu8_dwconv3x3s2_ukernel_16c__amx(size_t wo, size_t channels, const uint8_t* const* rows,
                                            size_t in_pixel_stride, const void* w, size_t panel_stride,
                                            const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2_qu8_dwconv3x3s2_ukernel_16c__avx512(wo, channels, rows, in_pixel_stride, w, panel_stride, rq, out,
                                            out_pixel_stride);
}
