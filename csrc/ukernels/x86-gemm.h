// The register-tiled GEMM shared by the x86 expand, project, head and stem
// kernels, written once over a vector vocabulary S (x86-avx2.h, x86-avx512.h):
// each *-avx2.cc / *-avx512.cc file instantiates one op with its ISA's tile.
//
// A tile is R rows x C vectors of accumulators held in registers across the
// whole K loop: per k it loads C weight vectors of the packed panel, broadcasts
// one A value per row and issues R * C FMAs. Panels are the outer loop so one
// panel of weights stays in L1 while the rows stream past it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <xmmintrin.h>  // _mm_prefetch

#include "ukernels/x86-common.h"

namespace mbv2::x86 {
namespace {

// Splits m rows into ceil(m / MR) tiles of near-equal size: 7 pixels with
// MR = 6 run as 4 + 3, not 6 + 1 (a one-row tile is load-bound, not FMA-bound).
// A row's result never depends on the tile it lands in.
template <size_t MR, class Tile>
inline void for_each_row_tile(size_t m, Tile tile) {
  if (m == 0) return;
  const size_t tiles = (m + MR - 1) / MR, small = m / tiles, big = m % tiles;
  for (size_t t = 0, i = 0; t < tiles; t++) {
    const size_t rows = small + (t < big ? 1 : 0);
    with_const<MR>(rows, [&](auto r) { tile(r, i); });
    i += rows;
  }
}

// The first n lanes of a vector (n may exceed the vector: then all of it).
template <class S>
inline typename S::V load_lanes(const float* p, size_t n) {
  return n >= S::kLanes ? S::load(p) : S::load(p, S::mask(n));
}
template <class S>
inline void store_lanes(float* p, typename S::V v, size_t n) {
  if (n >= S::kLanes) {
    S::store(p, v);
  } else {
    S::store(p, v, S::mask(n));
  }
}

// acc[r][v] += sum_k *a(r, k) * w[k * NR + v * lanes]: the loop all four ops share.
//
// Each k also prefetches row k of `next`, the next panel (past a call's last
// panel: the next chunk's first, or nothing of use). The late blocks' weights
// come from L3 or DRAM once per image, so the first row tile of each panel
// waited on its loads; the tiles of one panel run long enough to fetch the
// next. Against prefetching 32 rows ahead in the same panel (interleaved
// A/B, 224, one thread, Zen 5): blocks 13-15 6-7% faster and block 16 with
// the head 6-9%, with AVX2 and AVX-512 alike, the early blocks unchanged.
//
// With 16 registers (AVX2) the k loop runs on a private copy of the tile
// (Copy). On the caller's array, whose address the tile lambdas take, GCC 12
// kept the accumulators in registers but also stored them back to the stack at
// every k: 12 stores per k in the projection's 6x16 tile and the 12x8 tiles,
// 12 cycles per k for 6 of FMA work, and one accumulator spilled in the
// expand tile (bench/mca_hot_loops.py). Same FMAs in the same order: the same
// bits. The AVX-512 build does not spill and is left as it was.
template <class S, size_t NR, size_t R, size_t C, class A, bool Copy = (vector_registers<S>::value <= 16)>
inline void mac(typename S::V (&acc)[R][C], size_t kc, A a, const float* w, const float* next) {
  if constexpr (Copy) {
    typename S::V tile[R][C];
    for (size_t r = 0; r < R; r++) {
      for (size_t v = 0; v < C; v++) tile[r][v] = acc[r][v];
    }
    mac<S, NR, R, C, A, false>(tile, kc, a, w, next);
    for (size_t r = 0; r < R; r++) {
      for (size_t v = 0; v < C; v++) acc[r][v] = tile[r][v];
    }
    return;
  }
  constexpr size_t kLineFloats = 64 / sizeof(float);
  for (size_t k = 0; k < kc; k++, w += NR, next += NR) {
    for (size_t l = 0; l < NR; l += kLineFloats) {
      _mm_prefetch(reinterpret_cast<const char*>(next + l), _MM_HINT_T0);
    }
    typename S::V vw[C];
#pragma GCC unroll 4
    for (size_t v = 0; v < C; v++) vw[v] = S::load(w + v * S::kLanes);
#pragma GCC unroll 16
    for (size_t r = 0; r < R; r++) {
      const typename S::V va = S::broadcast(a(r, k));
#pragma GCC unroll 4
      for (size_t v = 0; v < C; v++) acc[r][v] = S::fmadd(va, vw[v], acc[r][v]);
    }
  }
}

// Runs body(Const<R>, Const<C>, i, n0, nn, panel) over every tile of an m x nc
// output: rows i..i+R, columns n0..n0+nn of the panel at `panel`. C is the
// number of vectors the panel's nn live columns need (the half tile when the
// last panel is at most half full, e.g. the 16-channel projection of block 0).
// A narrower tile takes proportionally more rows (7x32 -> 14x16): the same
// accumulator registers, and one weight load shared by twice the FMAs; at
// most MaxRows, where each row's A pointer is one register too many.
template <class S, size_t MR, size_t NV, size_t MaxRows = MR * NV, class Body>
inline void for_each_tile(size_t m, size_t nc, const float* w, size_t panel_stride, Body body) {
  constexpr size_t NR = NV * S::kLanes;
  for (size_t n0 = 0; n0 < nc; n0 += NR, w += panel_stride) {
    const size_t nn = std::min(NR, nc - n0);
    with_const<NV>((nn + S::kLanes - 1) / S::kLanes, [&](auto cols) {
      constexpr size_t rows = MR * NV / cols;
      for_each_row_tile<(rows < MaxRows ? rows : MaxRows)>(m, [&](auto r, size_t i) { body(r, cols, i, n0, nn, w); });
    });
  }
}

template <class S, size_t R, size_t C>
inline void load_bias(typename S::V (&acc)[R][C], const float* panel) {
  for (size_t r = 0; r < R; r++) {
    for (size_t v = 0; v < C; v++) acc[r][v] = S::load(panel + v * S::kLanes);
  }
}

// Clamps to [0, 6] (the fused ReLU6) and stores the nn live columns of each row.
template <class S, size_t R, size_t C>
inline void store_relu6(typename S::V (&acc)[R][C], float* c, size_t c_stride, size_t nn) {
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
  for (size_t r = 0; r < R; r++) {
    for (size_t v = 0; v < C; v++) {
      store_lanes<S>(c + r * c_stride + v * S::kLanes, S::clamp(acc[r][v], vmin, vmax), nn - v * S::kLanes);
    }
  }
}

// Row r of a row-major A tile starting at row i.
inline auto rows_of(const float* a, size_t a_stride, size_t i) {
  return [=](size_t r, size_t k) { return a + (i + r) * a_stride + k; };
}

template <class S, size_t MR, size_t NV>
inline void expand_relu6(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
                         size_t c_stride) {
  constexpr size_t NR = NV * S::kLanes;
  const size_t panel_stride = (kc + 1) * NR;
  for_each_tile<S, MR, NV>(m, nc, w, panel_stride, [&](auto rows, auto cols, size_t i, size_t n0, size_t nn,
                                                      const float* panel) {
    typename S::V acc[rows][cols];
    load_bias<S>(acc, panel);
    mac<S, NR>(acc, kc, rows_of(a, a_stride, i), panel + NR, panel + panel_stride + NR);
    store_relu6<S>(acc, c + i * c_stride + n0, c_stride, nn);
  });
}

// The projection's accumulators for rows i.. and columns n0.. start as bias +
// src (either may be null: zeros), so a block's first chunk writes its output
// rows once, with no pass before it to initialise them (that pass took 2-3% of
// the network at 224).
template <class S, size_t R, size_t C>
inline void start_project(typename S::V (&acc)[R][C], const float* bias, const float* src, size_t i, size_t c_stride,
                          size_t n0, size_t nn) {
  for (size_t v = 0; v < C; v++) {
    const size_t live = nn - v * S::kLanes;
    const typename S::V vbias = bias ? load_lanes<S>(bias + n0 + v * S::kLanes, live) : S::zero();
    for (size_t r = 0; r < R; r++) {
      if (!src) {
        acc[r][v] = vbias;
        continue;
      }
      const typename S::V vsrc = load_lanes<S>(src + (i + r) * c_stride + n0 + v * S::kLanes, live);
      acc[r][v] = bias ? S::add(vbias, vsrc) : vsrc;
    }
  }
}

// Stores the nn live columns of each row of the tile.
template <class S, size_t R, size_t C>
inline void store_rows(typename S::V (&acc)[R][C], float* c, size_t c_stride, size_t nn) {
  for (size_t r = 0; r < R; r++) {
    for (size_t v = 0; v < C; v++) store_lanes<S>(c + r * c_stride + v * S::kLanes, acc[r][v], nn - v * S::kLanes);
  }
}

template <class S, size_t MR, size_t NV>
inline void project_acc(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                        size_t w_panel_stride, const float* bias, const float* src, float* c, size_t c_stride) {
  constexpr size_t NR = NV * S::kLanes;
  for_each_tile<S, MR, NV>(m, nc, w, w_panel_stride, [&](auto rows, auto cols, size_t i, size_t n0, size_t nn,
                                                         const float* panel) {
    typename S::V acc[rows][cols];
    start_project<S>(acc, bias, src, i, c_stride, n0, nn);
    mac<S, NR>(acc, kc, rows_of(a, a_stride, i), panel, panel + w_panel_stride);
    store_rows<S>(acc, c + i * c_stride + n0, c_stride, nn);
  });
}

// sum[j] += relu6(acc[r][j]) for the nn live columns, the rows added in
// order (as the twin adds pixels): the tile's rows are clamped and summed in
// registers, so the pooled sum is read and written once per tile rather than
// once per pixel. Called after the k loop: held across it, the bounds cost the
// AVX2 6x16 tile (16 registers) an accumulator, spilled and reloaded at every k.
template <class S, size_t R, size_t C>
inline void add_relu6_rows(typename S::V (&acc)[R][C], float* sum, size_t nn) {
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
  for (size_t v = 0; v < C; v++) {
    float* sv = sum + v * S::kLanes;
    const size_t live = nn - v * S::kLanes;
    typename S::V vsum = load_lanes<S>(sv, live);
    for (size_t r = 0; r < R; r++) vsum = S::add(vsum, S::clamp(acc[r][v], vmin, vmax));
    store_lanes<S>(sv, vsum, live);
  }
}

template <class S, size_t MR, size_t NV>
inline void head_relu6_rowsum(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                              float* sum) {
  constexpr size_t NR = NV * S::kLanes;
  const size_t panel_stride = (kc + 1) * NR;
  for_each_tile<S, MR, NV>(m, nc, w, panel_stride, [&](auto rows, auto cols, size_t i, size_t n0, size_t nn,
                                                      const float* panel) {
    typename S::V acc[rows][cols];
    load_bias<S>(acc, panel);
    mac<S, NR>(acc, kc, rows_of(a, a_stride, i), panel + NR, panel + panel_stride + NR);
    add_relu6_rows<S>(acc, sum + n0, nn);
  });
}

// The stem as a GEMM with K = 27 taps: tap k = ci * 9 + ky * 3 + kx of output
// pixel x reads rows[ky][(2 x + kx) * 3 + ci], so row r of a tile is 6 floats
// after row r - 1 in every tap.
template <class S, size_t MR, size_t NV>
inline void stem3x3s2_relu6(size_t wo, size_t nc, const float* const* rows, const float* w, float* out,
                            size_t out_pixel_stride) {
  constexpr size_t NR = NV * S::kLanes, kTaps = 27;
  for_each_tile<S, MR, NV>(wo, nc, w, (kTaps + 1) * NR, [&](auto tile_rows, auto cols, size_t i, size_t n0,
                                                            size_t nn, const float* panel) {
    const float* taps[kTaps];
    for (size_t ci = 0; ci < 3; ci++) {
      for (size_t ky = 0; ky < 3; ky++) {
        for (size_t kx = 0; kx < 3; kx++) taps[ci * 9 + ky * 3 + kx] = rows[ky] + (2 * i + kx) * 3 + ci;
      }
    }
    typename S::V acc[tile_rows][cols];
    load_bias<S>(acc, panel);
    mac<S, NR>(acc, kTaps, [&](size_t r, size_t k) { return taps[k] + r * 6; }, panel + NR,
               panel + (kTaps + 1) * NR + NR);
    store_relu6<S>(acc, out + i * out_pixel_stride + n0, out_pixel_stride, nn);
  });
}

}  // namespace
}  // namespace mbv2::x86
