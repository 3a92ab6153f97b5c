// The amx ISA's quantization of the stem output: tiles have nothing to add to
// it, so this is the AVX-512 kernel itself, called through.
#include "ukernels/ukernels.h"

void mbv2_qu8_quantize_ukernel_u16__amx(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2_qu8_quantize_ukernel_u16__avx512(n, x, inv_scale, hi, y);
}
