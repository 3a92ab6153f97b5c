// The stem output's quantization to uint8, AVX-512: 16 values (one ZMM) at a time.
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_quantize_ukernel_u16__avx512(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2::x86::quantize<mbv2::x86::Avx512Vnni>(n, x, inv_scale, hi, y);
}
