// The image row load: image-row.h's loop compiled for NEON (GCC interleaves with st3).
#include "ukernels/image-row.h"
#include "ukernels/ukernels.h"

int mbv2_f32_load_nchw_ukernel__neon(size_t w, const float* x, size_t plane_stride, float* row) {
  return mbv2::image_row::load_nchw(w, x, plane_stride, row);
}
