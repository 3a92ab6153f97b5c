// The bf16 kernels' arithmetic, once, in scalar form (ukernels.h says what it
// computes): weight packing (core/packing.cc) and the scalar twins call it,
// and the AVX512-BF16 instructions compute the same bits (Intel SDM,
// VCVTNE2PS2BF16 and VDPBF16PS; tests/test_bf16.py), with one exception:
// VDPBF16PS also flushes float32 denormal accumulators and sums to zero,
// which the twins do not (differences below 1e-36, where no activation of a
// network lives).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mbv2::bf16 {

// float32 -> bf16 as VCVTNE2PS2BF16 does it: round to nearest even; zeros and
// denormals become a zero of the same sign (the instruction treats denormal
// inputs as zero); infinities stay; a NaN stays a NaN, made quiet.
inline uint16_t round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t exponent = (u >> 23) & 0xff;
  if (exponent == 0) return static_cast<uint16_t>((u >> 16) & 0x8000);
  if (exponent == 0xff) return static_cast<uint16_t>((u >> 16) | ((u & 0x7fffff) ? 0x40 : 0));
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

inline float widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Two consecutive k of one row as one 32-bit pair: k even in the low half, as
// VDPBF16PS reads them.
inline uint32_t pair(float even, float odd) {
  return static_cast<uint32_t>(round(even)) | static_cast<uint32_t>(round(odd)) << 16;
}

// acc + a.k0 * w.k0 + a.k1 * w.k1 for two pairs, as VDPBF16PS adds them: the
// odd product first, each sum rounded to float32 (a product of two bf16 is
// exact in float32, so no fused multiply-add could round differently).
inline float dot_pair(float acc, uint32_t a, uint32_t w) {
  acc += widen(static_cast<uint16_t>(a >> 16)) * widen(static_cast<uint16_t>(w >> 16));
  acc += widen(static_cast<uint16_t>(a)) * widen(static_cast<uint16_t>(w));
  return acc;
}

}  // namespace mbv2::bf16
