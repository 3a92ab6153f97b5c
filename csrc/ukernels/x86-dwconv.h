// Depthwise 3x3 + bias + ReLU6 for one output row, written once over a vector
// vocabulary S (x86-avx2.h, x86-avx512.h) and both strides. One channel tile
// is one vector: its bias and 9 taps stay in registers for the whole row.
#pragma once

#include <cstddef>

#include "ukernels/x86-common.h"

namespace mbv2::x86 {
namespace {

// All lanes of a vector, or the first few behind a mask (the last channel tile).
template <class S>
struct AllLanes {
  typename S::V load(const float* p) const { return S::load(p); }
  void store(float* p, typename S::V v) const { S::store(p, v); }
};
template <class S>
struct FirstLanes {
  typename S::Mask mask;
  typename S::V load(const float* p) const { return S::load(p, mask); }
  void store(float* p, typename S::V v) const { S::store(p, v, mask); }
};

// P adjacent output pixels of one channel tile at once: each input pixel of
// the 3 rows is loaded once and feeds every tap that reads it, and the P
// accumulators are independent chains. One pixel at a time would load all 9
// taps (load-port bound, a little over one FMA per cycle) and wait on one
// 9-deep FMA chain. Every accumulator still sums its taps kx-major, ky-minor,
// as the scalar twin does.
template <class S, size_t Stride, size_t P, class Lanes>
inline void dwconv3x3_pixels(const float* const (&in)[3], size_t in_stride, const typename S::V (&vk)[10],
                             float* out, size_t out_stride, Lanes lanes) {
  constexpr size_t kCols = (P - 1) * Stride + 3;
  typename S::V acc[P];
#pragma GCC unroll 8
  for (size_t p = 0; p < P; p++) acc[p] = vk[0];
#pragma GCC unroll 32
  for (size_t j = 0; j < kCols; j++) {
#pragma GCC unroll 3
    for (size_t ky = 0; ky < 3; ky++) {
      const typename S::V v = lanes.load(in[ky] + j * in_stride);
#pragma GCC unroll 8
      for (size_t p = 0; p < P; p++) {
        if (j >= p * Stride && j - p * Stride < 3) acc[p] = S::fmadd(v, vk[1 + ky * 3 + (j - p * Stride)], acc[p]);
      }
    }
  }
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
#pragma GCC unroll 8
  for (size_t p = 0; p < P; p++) lanes.store(out + p * out_stride, S::clamp(acc[p], vmin, vmax));
}

template <class S, size_t Stride, class Lanes>
inline void dwconv3x3_channel_tile(size_t wo, const float* const* rows, size_t in_stride, const float* w, float* out,
                                   size_t out_stride, Lanes lanes) {
  // 8 chains on AVX-512 (its 32 registers hold 8 accumulators, 10 weights and the
  // inputs): 4 left the two FMA pipes waiting on 4-cycle chains (single-kernel
  // timings on Zen 5, aligned rows: 5-15% faster at 14, 28 and 56 pixels).
  // AVX2's 16 registers keep 4.
  constexpr size_t P = S::kLanes == 16 ? 8 : 4;
  typename S::V vk[10];  // bias, then taps (ky, kx) row-major; zero-padded, so always whole vectors
  for (size_t j = 0; j < 10; j++) vk[j] = S::load(w + j * S::kLanes);
  size_t x = 0;
  for (; x + P <= wo; x += P) {
    const float* const in[3] = {rows[0] + x * Stride * in_stride, rows[1] + x * Stride * in_stride,
                                rows[2] + x * Stride * in_stride};
    dwconv3x3_pixels<S, Stride, P>(in, in_stride, vk, out + x * out_stride, out_stride, lanes);
  }
  if (x == wo) return;
  // The last 1-3 pixels in one call: the 7- and 14-wide rows end in one.
  const float* const in[3] = {rows[0] + x * Stride * in_stride, rows[1] + x * Stride * in_stride,
                              rows[2] + x * Stride * in_stride};
  with_const<P - 1>(wo - x, [&](auto rest) {
    dwconv3x3_pixels<S, Stride, rest>(in, in_stride, vk, out + x * out_stride, out_stride, lanes);
  });
}

template <class S, size_t Stride>
inline void dwconv3x3_relu6(size_t wo, size_t channels, const float* const* rows, size_t in_stride, const float* w,
                            float* out, size_t out_stride) {
  constexpr size_t L = S::kLanes;
  size_t c0 = 0;
  for (; c0 + L <= channels; c0 += L, w += 10 * L) {
    const float* tile_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dwconv3x3_channel_tile<S, Stride>(wo, tile_rows, in_stride, w, out + c0, out_stride, AllLanes<S>());
  }
  if (c0 < channels) {
    const float* tile_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dwconv3x3_channel_tile<S, Stride>(wo, tile_rows, in_stride, w, out + c0, out_stride,
                                      FirstLanes<S>{S::mask(channels - c0)});
  }
}

}  // namespace
}  // namespace mbv2::x86
