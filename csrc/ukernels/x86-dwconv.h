// Depthwise 3x3 + bias + ReLU6 for one output row, written once over a vector
// vocabulary S (x86-avx2.h, x86-avx512.h) and both strides. One channel tile
// is one vector; groups of 8 output pixels are computed at once, in one of
// two loop orders (dwconv3x3_relu6, at the end).
#pragma once

#include <algorithm>
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

// The bias and 9 taps of one channel tile, tap j = 0 the bias, then (ky, kx)
// row-major: held in registers, or read from the packed panel at each use.
template <class S>
struct TapsInRegisters {
  typename S::V v[10];
  explicit TapsInRegisters(const float* w) {
    for (size_t j = 0; j < 10; j++) v[j] = S::load(w + j * S::kLanes);
  }
  typename S::V operator()(size_t j) const { return v[j]; }
};
template <class S>
struct TapsInMemory {
  const float* w;
  // The empty asm hides that consecutive pixel groups read the same panel, so
  // GCC cannot hoist the loads out of the group loop into registers it lacks.
  explicit TapsInMemory(const float* panel) : w(panel) { __asm__("" : "+r"(w)); }
  typename S::V operator()(size_t j) const { return S::load(w + j * S::kLanes); }
};

// P adjacent output pixels of one channel tile at once: each input pixel of
// the 3 rows is loaded once and feeds every tap that reads it, and the P
// accumulators are independent chains. One pixel at a time would load all 9
// taps (load-port bound, a little over one FMA per cycle) and wait on one
// 9-deep FMA chain. Every accumulator still sums its taps kx-major, ky-minor,
// as the scalar twin does, in either loop order below.
template <class S, size_t Stride, size_t P, class Taps, class Lanes>
inline void dwconv3x3_pixels(const float* const (&in)[3], size_t in_stride, const Taps& taps, float* out,
                             size_t out_stride, Lanes lanes) {
  constexpr size_t kCols = (P - 1) * Stride + 3;
  typename S::V acc[P];
#pragma GCC unroll 16
  for (size_t p = 0; p < P; p++) acc[p] = taps(0);
#pragma GCC unroll 32
  for (size_t j = 0; j < kCols; j++) {
#pragma GCC unroll 3
    for (size_t ky = 0; ky < 3; ky++) {
      const typename S::V v = lanes.load(in[ky] + j * in_stride);
#pragma GCC unroll 16
      for (size_t p = 0; p < P; p++) {
        if (j >= p * Stride && j - p * Stride < 3) acc[p] = S::fmadd(v, taps(1 + ky * 3 + (j - p * Stride)), acc[p]);
      }
    }
  }
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
#pragma GCC unroll 16
  for (size_t p = 0; p < P; p++) lanes.store(out + p * out_stride, S::clamp(acc[p], vmin, vmax));
}

// Pixels per group, each an independent chain of 9 FMAs. 8 chains would cover
// the 4-cycle FMA latency of both pipes if the core kept every group's FMAs in
// flight; 4 left them waiting (single-kernel timings on Zen 5, aligned rows:
// 8 was 5-15% faster than 4 at 14, 28 and 56 pixels with AVX-512). With its 32
// registers, AVX-512 at stride 1 takes 16 (16 accumulators, 10 taps, the
// input): on Zen 5, whole bf16 network per block, best of 300, in turn,
// 1.886-1.907 -> 1.825-1.845 ms, the stride-1 blocks 2-8% faster. Stride 2
// stays at 8: 12 was no better (block 1 3% faster, block 3 2% slower).
template <class S, size_t Stride>
constexpr size_t dw_pixels() {
  return vector_registers<S>::value > 16 && Stride == 1 ? 16 : 8;
}

// Runs body(Const<P>, x) for each group of P output pixels from pixel x, then
// once for the last 1 to P - 1 (the 7- and 14-wide rows end in one).
template <size_t P, class Body>
inline void for_each_pixel_group(size_t wo, Body body) {
  size_t x = 0;
  for (; x + P <= wo; x += P) body(Const<P>(), x);
  if (x < wo) with_const<P - 1>(wo - x, [&](auto rest) { body(rest, x); });
}

// Runs body(lanes, c0, panel) for each channel tile: whole vectors, then the
// last few channels behind a mask.
template <class S, class Body>
inline void for_each_channel_tile(size_t channels, const float* w, Body body) {
  constexpr size_t L = S::kLanes;
  size_t c0 = 0;
  for (; c0 + L <= channels; c0 += L, w += 10 * L) body(AllLanes<S>(), c0, w);
  if (c0 < channels) body(FirstLanes<S>{S::mask(channels - c0)}, c0, w);
}

// Channel-major: each channel tile walks the whole row with its taps in
// registers. For AVX-512, whose 32 registers hold 8 accumulators, the 10 taps
// and the inputs.
template <class S, size_t Stride>
inline void dwconv3x3_channel_major(size_t wo, size_t channels, const float* const* rows, size_t in_stride,
                                    const float* w, float* out, size_t out_stride) {
  for_each_channel_tile<S>(channels, w, [&](auto lanes, size_t c0, const float* panel) {
    const TapsInRegisters<S> taps(panel);
    for_each_pixel_group<dw_pixels<S, Stride>()>(wo, [&](auto pixels, size_t x) {
      const size_t at = x * Stride * in_stride + c0;
      const float* const in[3] = {rows[0] + at, rows[1] + at, rows[2] + at};
      dwconv3x3_pixels<S, Stride, pixels>(in, in_stride, taps, out + x * out_stride + c0, out_stride, lanes);
    });
  });
}

// Pixel-major: each group of 8 pixels runs every channel tile, its taps read
// from the (L1-resident) panel at each FMA. For AVX2, whose 16 registers hold
// the 8 accumulators but not the taps too. The order matters more than the
// registers: the wide rows' ring (3 x 58-114 pixels x up to 144 channels)
// lives in L2, and a channel tile walking a whole row used half of each line
// it fetched there, the other half only when the next tile came back to it,
// often after L1 had dropped it. A group's window (3 rows x 10-17 pixels x
// the chunk's channels) is read line by line and stays in L1 for every tile.
// Single-kernel timings on Zen 3, the network's shapes, against the
// channel-major order with 4 pixels and taps in registers: 1.1-2.3x faster
// (blocks 1, 0 and the 7x7 ones the most, blocks 2 and 3 the least).
template <class S, size_t Stride>
inline void dwconv3x3_pixel_major(size_t wo, size_t channels, const float* const* rows, size_t in_stride,
                                  const float* w, float* out, size_t out_stride) {
  for_each_pixel_group<dw_pixels<S, Stride>()>(wo, [&](auto pixels, size_t x) {
    for_each_channel_tile<S>(channels, w, [&](auto lanes, size_t c0, const float* panel) {
      const size_t at = x * Stride * in_stride + c0;
      const float* const in[3] = {rows[0] + at, rows[1] + at, rows[2] + at};
      dwconv3x3_pixels<S, Stride, pixels>(in, in_stride, TapsInMemory<S>(panel), out + x * out_stride + c0,
                                          out_stride, lanes);
    });
  });
}

template <class S, size_t Stride>
inline void dwconv3x3_relu6(size_t wo, size_t channels, const float* const* rows, size_t in_stride, const float* w,
                            float* out, size_t out_stride) {
  if constexpr (vector_registers<S>::value <= 16) {
    dwconv3x3_pixel_major<S, Stride>(wo, channels, rows, in_stride, w, out, out_stride);
  } else {
    dwconv3x3_channel_major<S, Stride>(wo, channels, rows, in_stride, w, out, out_stride);
  }
}

}  // namespace
}  // namespace mbv2::x86
