// The stem output's quantization to uint8, for the avxvnni ISA: the AVX2 loop
// (8 values, one YMM, at a time), compiled with that ISA's flags.
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_quantize_ukernel_u8__avxvnni(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2::x86::quantize<mbv2::x86::AvxVnni>(n, x, inv_scale, hi, y);
}
