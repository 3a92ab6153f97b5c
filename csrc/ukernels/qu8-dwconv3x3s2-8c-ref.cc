// Scalar twin of the int8 stride-2 depthwise 3x3, 8 channels per packed tile.
#include "ukernels/quant-common.h"

void mbv2_qu8_dwconv3x3s2_ukernel_8c__ref(size_t wo, size_t channels, const uint8_t* const* rows,
                                           size_t in_pixel_stride, const void* w, size_t panel_stride,
                                           const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride) {
  mbv2::quant::dwconv3x3<8, 2>(wo, channels, rows, in_pixel_stride, w, panel_stride, *rq, out, out_pixel_stride);
}
