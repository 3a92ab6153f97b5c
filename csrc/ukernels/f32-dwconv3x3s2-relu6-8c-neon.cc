// NEON stride-2 depthwise 3x3, 8 channels per packed tile.
#include "ukernels/neon-common.h"
#include "ukernels/ukernels.h"

void mbv2_f32_dwconv3x3s2_relu6_ukernel_8c__neon(size_t wo, size_t channels, const float* const* rows,
                                                 size_t in_pixel_stride, const float* w, float* out,
                                                 size_t out_pixel_stride, size_t out_rows, size_t out_row_stride) {
  mbv2::neon::dwconv3x3_relu6_8c<2>(wo, channels, rows, in_pixel_stride, w, out, out_pixel_stride, out_rows,
                                    out_row_stride);
}
