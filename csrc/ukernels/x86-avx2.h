// AVX2+FMA vector vocabulary for the x86 kernel templates (x86-gemm.h,
// x86-dwconv.h). Included only by *-avx2.cc files, which are compiled with
// -mavx2 -mfma; everything sits in an unnamed namespace so no inline function
// built with these flags can be merged with another ISA's copy at link time.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace mbv2::x86 {
namespace {

struct Avx2 {
  using V = __m256;
  using Mask = __m256i;
  static constexpr size_t kLanes = 8;
  static constexpr size_t kRegisters = 16;  // YMM0-15: the GEMM's tile must fit (x86-gemm.h, mac)

  // Made where they are used: with only 16 YMM registers, a constant the
  // compiler hoists out of the GEMM's tile loop (the ReLU6 bounds) costs the
  // 6x16 tile an accumulator, spilled to the stack and reloaded at every k.
  // The empty volatile asm keeps each copy in place.
  static V zero() {
    V v = _mm256_setzero_ps();
    __asm__ volatile("" : "+x"(v));
    return v;
  }
  static V set1(float f) {
    V v = _mm256_set1_ps(f);
    __asm__ volatile("" : "+x"(v));
    return v;
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V clamp(V v, V lo, V hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }

  // The first n lanes (0 < n < kLanes): a window into 8 ones then 8 zeros.
  static Mask mask(size_t n) {
    static const int32_t kWindow[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kWindow + kLanes - n));
  }
  static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
};

}  // namespace
}  // namespace mbv2::x86
