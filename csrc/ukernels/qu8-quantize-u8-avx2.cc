// The stem output's quantization to uint8, AVX2: 8 values (one YMM) at a time.
#include "ukernels/ukernels.h"
#include "ukernels/x86-qu8.h"

void mbv2_qu8_quantize_ukernel_u8__avx2(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  mbv2::x86::quantize<mbv2::x86::Avx2>(n, x, inv_scale, hi, y);
}
