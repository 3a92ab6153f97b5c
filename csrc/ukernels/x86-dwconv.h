// Depthwise 3x3 + bias + ReLU6 for the output rows of a tile, written once over
// a vector vocabulary S (x86-avx2.h, x86-avx512.h) and both strides. One
// channel tile is one vector; groups of output pixels, of one output row or of
// two, are computed at once, in one of two loop orders (dwconv3x3_relu6, at
// the end).
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

// P adjacent output pixels of R output rows of one channel tile at once: each
// input pixel of the (R - 1) * Stride + 3 rows is loaded once and feeds every
// tap of every row that reads it, and the R x P accumulators are independent
// chains. One pixel at a time would load all 9 taps (load-port bound, a little
// over one FMA per cycle) and wait on one 9-deep FMA chain. Every accumulator
// still sums its taps kx-major, ky-minor, whatever R and P, so a pixel's
// result does not depend on the rows or pixels it is computed with.
template <class S, size_t Stride, size_t P, size_t R = 1, class Taps, class Lanes>
inline void dwconv3x3_pixels(const float* const (&in)[(R - 1) * Stride + 3], size_t in_stride, const Taps& taps,
                             float* const (&out)[R], size_t out_stride, Lanes lanes) {
  constexpr size_t kCols = (P - 1) * Stride + 3, kRows = (R - 1) * Stride + 3;
  typename S::V acc[R][P];
#pragma GCC unroll 16
  for (size_t r = 0; r < R; r++) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; p++) acc[r][p] = taps(0);
  }
#pragma GCC unroll 32
  for (size_t j = 0; j < kCols; j++) {
#pragma GCC unroll 8
    for (size_t iy = 0; iy < kRows; iy++) {
      const typename S::V v = lanes.load(in[iy] + j * in_stride);
#pragma GCC unroll 4
      for (size_t r = 0; r < R; r++) {
        if (iy < r * Stride || iy - r * Stride >= 3) continue;
        const size_t ky = iy - r * Stride;
#pragma GCC unroll 16
        for (size_t p = 0; p < P; p++) {
          if (j < p * Stride || j - p * Stride >= 3) continue;
          acc[r][p] = S::fmadd(v, taps(1 + ky * 3 + (j - p * Stride)), acc[r][p]);
        }
      }
    }
  }
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
#pragma GCC unroll 4
  for (size_t r = 0; r < R; r++) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; p++) lanes.store(out[r] + p * out_stride, S::clamp(acc[r][p], vmin, vmax));
  }
}

// Output rows per call of dwconv3x3_pixels. With its 32 registers AVX-512
// computes two (16 accumulators, 10 taps, the input): the wide blocks' ring
// rows live in L2, and two rows load each input row once instead of twice
// (stride 1: 4 input rows for 2 output rows, not 6). Zen 5, one thread, the
// network at 224 per block, best of 300, 5 rounds in turn against one row at a
// time: stem + block 0 0.224-0.229 -> 0.210-0.217 ms, block 1 0.326-0.333 ->
// 0.306-0.320, block 2 0.289-0.296 -> 0.267-0.276, all blocks 2.85-2.89 ->
// 2.76-2.81 (2.86 once).
// KernelSet::dwconv_rows tells the tiling (wide blocks take tiles of as many
// rows). AVX2's 16 registers hold one row's 8 accumulators.
template <class S>
constexpr size_t dw_rows() {
  return vector_registers<S>::value > 16 ? 2 : 1;
}

// Pixels per group, each an independent chain of 9 FMAs. 8 chains would cover
// the 4-cycle FMA latency of both pipes if the core kept every group's FMAs in
// flight; 4 left them waiting (single-kernel timings on Zen 5, aligned rows:
// 8 was 5-15% faster than 4 at 14, 28 and 56 pixels with AVX-512). With its 32
// registers, AVX-512 at stride 1 takes 16 on a lone row (16 accumulators, 10
// taps, the input): on Zen 5, whole bf16 network per block, best of 300, in
// turn, 1.886-1.907 -> 1.825-1.845 ms, the stride-1 blocks 2-8% faster. Stride
// 2 stays at 8: 12 was no better (block 1 3% faster, block 3 2% slower). Two
// rows take 8 each.
template <class S, size_t Stride, size_t R>
constexpr size_t dw_pixels() {
  return vector_registers<S>::value > 16 && Stride == 1 && R == 1 ? 16 : 8;
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

// The input rows of R output rows from pixel x, channel c0 on, and their outputs.
template <size_t Stride, size_t R>
struct RowWindow {
  const float* in[(R - 1) * Stride + 3];
  float* out[R];
  RowWindow(const float* const* rows, size_t in_stride, float* o, size_t out_stride, size_t out_row_stride,
            size_t x, size_t c0) {
    for (size_t i = 0; i < (R - 1) * Stride + 3; i++) in[i] = rows[i] + x * Stride * in_stride + c0;
    for (size_t r = 0; r < R; r++) out[r] = o + r * out_row_stride + x * out_stride + c0;
  }
};

// Channel-major: each channel tile walks the whole row (or pair of rows) with
// its taps in registers. For AVX-512, whose 32 registers hold the
// accumulators, the 10 taps and the inputs.
template <class S, size_t Stride, size_t R>
inline void dwconv3x3_channel_major(size_t wo, size_t channels, const float* const* rows, size_t in_stride,
                                    const float* w, float* out, size_t out_stride, size_t out_row_stride) {
  for_each_channel_tile<S>(channels, w, [&](auto lanes, size_t c0, const float* panel) {
    const TapsInRegisters<S> taps(panel);
    for_each_pixel_group<dw_pixels<S, Stride, R>()>(wo, [&](auto pixels, size_t x) {
      const RowWindow<Stride, R> win(rows, in_stride, out, out_stride, out_row_stride, x, c0);
      dwconv3x3_pixels<S, Stride, pixels, R>(win.in, in_stride, taps, win.out, out_stride, lanes);
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
template <class S, size_t Stride, size_t R>
inline void dwconv3x3_pixel_major(size_t wo, size_t channels, const float* const* rows, size_t in_stride,
                                  const float* w, float* out, size_t out_stride, size_t out_row_stride) {
  for_each_pixel_group<dw_pixels<S, Stride, R>()>(wo, [&](auto pixels, size_t x) {
    for_each_channel_tile<S>(channels, w, [&](auto lanes, size_t c0, const float* panel) {
      const RowWindow<Stride, R> win(rows, in_stride, out, out_stride, out_row_stride, x, c0);
      dwconv3x3_pixels<S, Stride, pixels, R>(win.in, in_stride, TapsInMemory<S>(panel), win.out, out_stride, lanes);
    });
  });
}

// R output rows from rows[0..(R - 1) * Stride + 3), in the ISA's loop order.
template <class S, size_t Stride, size_t R>
inline void dwconv3x3_rows(size_t wo, size_t channels, const float* const* rows, size_t in_stride, const float* w,
                           float* out, size_t out_stride, size_t out_row_stride) {
  if constexpr (vector_registers<S>::value <= 16) {
    dwconv3x3_pixel_major<S, Stride, R>(wo, channels, rows, in_stride, w, out, out_stride, out_row_stride);
  } else {
    dwconv3x3_channel_major<S, Stride, R>(wo, channels, rows, in_stride, w, out, out_stride, out_row_stride);
  }
}

// The tile's rows dw_rows<S>() at a time, then the last one alone.
template <class S, size_t Stride>
inline void dwconv3x3_relu6(size_t wo, size_t channels, const float* const* rows, size_t in_stride, const float* w,
                            float* out, size_t out_stride, size_t out_rows, size_t out_row_stride) {
  constexpr size_t R = dw_rows<S>();
  size_t r = 0;
  for (; r + R <= out_rows; r += R) {
    dwconv3x3_rows<S, Stride, R>(wo, channels, rows + r * Stride, in_stride, w, out + r * out_row_stride, out_stride,
                                 out_row_stride);
  }
  for (; r < out_rows; r++) {
    dwconv3x3_rows<S, Stride, 1>(wo, channels, rows + r * Stride, in_stride, w, out + r * out_row_stride, out_stride,
                                 out_row_stride);
  }
}

}  // namespace
}  // namespace mbv2::x86
