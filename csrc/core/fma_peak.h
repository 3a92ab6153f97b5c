// What the kernels' GFLOP/s are shares of: one thread's FMA peak per x86 ISA,
// measured with independent FMA chains (12 vectors: enough to cover a 4-cycle
// FMA on 2 pipes). Each function carries its own target attribute, so this file
// needs no ISA flags and runs on any x86-64 CPU.
#pragma once

#include <string>

namespace mbv2 {

// GFLOP/s (2 flops per lane per FMA) of the best of `trials` runs of `iters`
// iterations after one warm-up run, for "avx2" (ymm) or "avx512" (zmm); -1 for
// another ISA or a CPU without it.
double fma_peak_gflops(const std::string& isa, long iters, int trials);

// The int8 kernels' peak: GOP/s (2 ops per uint8 x int8 multiply-add) of the
// same chains of vpdpbusd, for "avx512" (zmm, AVX-512 VNNI) or "avxvnni"
// (ymm, AVX-VNNI), or of TDPBUSD on four sum tiles for "amx" (AMX-INT8); -1
// for another ISA or a CPU without it.
double int8_peak_gops(const std::string& isa, long iters, int trials);

// The bf16 kernels' peak: GFLOP/s (2 flops per bf16 multiply-add) of the same
// chains of vdpbf16ps, for "avx512" (zmm, AVX512_BF16), or of TDPBF16PS on
// four sum tiles for "amx" (AMX-BF16); -1 for another ISA or a CPU without it.
double bf16_peak_gflops(const std::string& isa, long iters, int trials);

}  // namespace mbv2
