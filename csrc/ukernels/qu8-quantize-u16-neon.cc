// The stem output's quantization to uint8, NEON: 16 values at a time (neon-qu8.h).
#include "ukernels/neon-qu8.h"

void mbv2_qu8_quantize_ukernel_u16__neon(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2::neon_qu8::quantize_16(n, x, inv_scale, hi, y);
}
