// The image row load: image-row.h's loop compiled with the AVX2 flags.
#include "ukernels/image-row.h"
#include "ukernels/ukernels.h"

int mbv2_f32_load_nchw_ukernel__avx2(size_t w, const float* x, size_t plane_stride, float* row) {
  return mbv2::image_row::load_nchw(w, x, plane_stride, row);
}
