// Scalar twin of the image row load: image-row.h's loop with the baseline flags.
#include "ukernels/image-row.h"
#include "ukernels/ukernels.h"

int mbv2_f32_load_nchw_ukernel__ref(size_t w, const float* x, size_t plane_stride, float* row) {
  return mbv2::image_row::load_nchw(w, x, plane_stride, row);
}
