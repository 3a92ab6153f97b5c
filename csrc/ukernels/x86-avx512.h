// AVX-512F vector vocabulary for the x86 kernel templates (x86-gemm.h,
// x86-dwconv.h). Included only by *-avx512.cc files, compiled with -mavx512f;
// unnamed namespace for the same reason as x86-avx2.h.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace mbv2::x86 {
namespace {

struct Avx512 {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr size_t kLanes = 16;

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V clamp(V v, V lo, V hi) { return _mm512_min_ps(_mm512_max_ps(v, lo), hi); }

  // The first n lanes (0 < n < kLanes); masked lanes are neither read nor written.
  static Mask mask(size_t n) { return _cvtu32_mask16((1u << n) - 1); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};

}  // namespace
}  // namespace mbv2::x86
