// Scalar twin of the stem output's quantization to uint8.
#include "ukernels/quant-common.h"

void mbv2_qu8_quantize_ukernel_u1__ref(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2::quant::quantize(n, x, inv_scale, hi, y);
}
