// Depthwise 3x3 stride 1 + bias + ReLU6, 8 channels (one vector) per tile.
#include "ukernels/ukernels.h"
#include "ukernels/x86-avx2.h"
#include "ukernels/x86-dwconv.h"

void mbv2_f32_dwconv3x3s1_relu6_ukernel_8c__avx2(size_t wo, size_t channels, const float* const* rows,
                                                     size_t in_pixel_stride, const float* w, float* out,
                                                     size_t out_pixel_stride, size_t out_rows, size_t out_row_stride) {
  mbv2::x86::dwconv3x3_relu6<mbv2::x86::Avx2, 1>(wo, channels, rows, in_pixel_stride, w, out, out_pixel_stride,
                                                 out_rows, out_row_stride);
}
