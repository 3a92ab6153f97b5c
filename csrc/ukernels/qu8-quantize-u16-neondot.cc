// The neondot ISA's quantization of the stem output: the dot product has nothing
// to add to it, so this is the ARMv8.0 kernel itself, called through.
#include "ukernels/ukernels.h"

void mbv2_qu8_quantize_ukernel_u16__neondot(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2_qu8_quantize_ukernel_u16__neon(n, x, inv_scale, hi, y);
}
