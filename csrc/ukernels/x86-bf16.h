// The bf16 GEMMs (ukernels.h, bf16) on AVX512-BF16: the float32 templates'
// tiles and epilogues (x86-gemm.h), with VDPBF16PS in the k loop. Included
// only by *-avx512bf16.cc files, compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512bf16.
//
// A arrives as float32 (the depthwise output, the block input) and is rounded
// to bf16 pairs here, a block of rows at a time into a stack buffer, once per
// call: rounding inside the k loop would cost three instructions per
// broadcast, rounding per panel would repeat for every panel of the row.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ukernels/x86-avx512.h"
#include "ukernels/x86-gemm.h"

namespace mbv2::x86 {
namespace {

using S = Avx512;
// The half tile (nc <= 16) takes at most 8 rows, not the float32 templates'
// 14: 14 A-row pointers spill (single-kernel timings on Zen 5, the 16-channel
// projection of block 0 at K = 32 and 64: 0.57-0.78 us at 8 or 10 rows,
// 0.82-1.01 us at 14).
constexpr size_t kMaxRows = 8;

// 32 KB of bf16 pairs: a whole expand row (112 pixels x 24 channels) or
// project tile fits in one block; the classifier's 1 x 1280 as well.
constexpr size_t kPairBufferWords = 8192;

// 32 floats (the first `n` of them, zeros after) as 16 bf16 pairs.
inline __m512i round_32(const float* a, size_t n) {
  const __m512 lo = load_lanes<S>(a, n);
  const __m512 hi = n > 16 ? load_lanes<S>(a + 16, n - 16) : S::zero();
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// Rows of a, rounded to bf16 pairs (VCVTNE2PS2BF16: ukernels/bf16-common.h);
// each row of `pairs` words, an odd kc's last pair (a, 0). The whole 32s go
// unmasked and the tail's masks are made once: in the early blocks a row is
// only 16 to 80 floats, and a masked loop per row cost a fifth of their
// projection.
inline void round_rows(const float* a, size_t a_stride, size_t rows, size_t kc, uint32_t* out) {
  const size_t pairs = (kc + 1) / 2, whole = kc / 32 * 32, tail = kc - whole;
  const __mmask16 tail_words = _cvtu32_mask16((1u << ((tail + 1) / 2)) - 1);
  for (size_t r = 0; r < rows; r++, a += a_stride, out += pairs) {
    for (size_t k = 0; k < whole; k += 32) _mm512_storeu_si512(out + k / 2, round_32(a + k, 32));
    if (tail) _mm512_mask_storeu_epi32(out + whole / 2, tail_words, round_32(a + whole, tail));
  }
}

// Runs body(i0, rows, a_pairs, pairs) over blocks of m rows rounded by
// round_rows; pairs <= kPairBufferWords (ukernels.h: kc <= 16384).
template <class Body>
inline void for_each_row_block(size_t m, size_t kc, const float* a, size_t a_stride, Body body) {
  alignas(64) uint32_t buffer[kPairBufferWords];
  const size_t pairs = (kc + 1) / 2, block = std::max<size_t>(1, kPairBufferWords / std::max<size_t>(pairs, 1));
  for (size_t i0 = 0; i0 < m; i0 += block) {
    const size_t rows = std::min(block, m - i0);
    round_rows(a + i0 * a_stride, a_stride, rows, kc, buffer);
    body(i0, rows, buffer, pairs);
  }
}

// acc[r][v] += the dot product of row r's pairs with the panel's, pair by
// pair: the float32 mac's loop with one VDPBF16PS (two k) per FMA, and its
// prefetch of the next panel.
template <size_t NR, size_t R, size_t C>
inline void mac_bf16(__m512 (&acc)[R][C], size_t pairs, const uint32_t* a, size_t a_pairs, const float* w,
                     const float* next) {
  constexpr size_t kLineFloats = 64 / sizeof(float);
  for (size_t p = 0; p < pairs; p++, w += NR, next += NR) {
    for (size_t l = 0; l < NR; l += kLineFloats) {
      _mm_prefetch(reinterpret_cast<const char*>(next + l), _MM_HINT_T0);
    }
    __m512bh vw[C];
#pragma GCC unroll 4
    for (size_t v = 0; v < C; v++) vw[v] = (__m512bh)_mm512_loadu_ps(w + v * S::kLanes);
#pragma GCC unroll 16
    for (size_t r = 0; r < R; r++) {
      const __m512bh va = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * a_pairs + p]));
#pragma GCC unroll 4
      for (size_t v = 0; v < C; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], va, vw[v]);
    }
  }
}

template <size_t MR, size_t NV>
inline void bf16_expand_relu6(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                              float* c, size_t c_stride) {
  constexpr size_t NR = NV * S::kLanes;
  for_each_row_block(m, kc, a, a_stride, [&](size_t i0, size_t rows, const uint32_t* ab, size_t pairs) {
    const size_t panel_stride = (pairs + 1) * NR;  // bias row, then the pairs
    for_each_tile<S, MR, NV, kMaxRows>(rows, nc, w, panel_stride, [&](auto tr, auto cols, size_t i, size_t n0, size_t nn,
                                                                const float* panel) {
      __m512 acc[tr][cols];
      load_bias<S>(acc, panel);
      mac_bf16<NR>(acc, pairs, ab + i * pairs, pairs, panel + NR, panel + panel_stride + NR);
      store_relu6<S>(acc, c + (i0 + i) * c_stride + n0, c_stride, nn);
    });
  });
}

// As project_acc (x86-gemm.h): the accumulators start as bias + src.
template <size_t MR, size_t NV>
inline void bf16_project_acc(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                             size_t w_panel_stride, const float* bias, const float* src, float* c, size_t c_stride) {
  constexpr size_t NR = NV * S::kLanes;
  for_each_row_block(m, kc, a, a_stride, [&](size_t i0, size_t rows, const uint32_t* ab, size_t pairs) {
    for_each_tile<S, MR, NV, kMaxRows>(rows, nc, w, w_panel_stride, [&](auto tr, auto cols, size_t i, size_t n0, size_t nn,
                                                              const float* panel) {
      __m512 acc[tr][cols];
      start_project<S>(acc, bias, src, i0 + i, c_stride, n0, nn);
      mac_bf16<NR>(acc, pairs, ab + i * pairs, pairs, panel, panel + w_panel_stride);
      store_rows<S>(acc, c + (i0 + i) * c_stride + n0, c_stride, nn);
    });
  });
}

template <size_t MR, size_t NV>
inline void bf16_head_relu6_rowsum(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                                   float* sum) {
  constexpr size_t NR = NV * S::kLanes;
  for_each_row_block(m, kc, a, a_stride, [&](size_t, size_t rows, const uint32_t* ab, size_t pairs) {
    const size_t panel_stride = (pairs + 1) * NR;  // bias row, then the pairs
    for_each_tile<S, MR, NV, kMaxRows>(rows, nc, w, panel_stride, [&](auto tr, auto cols, size_t i, size_t n0, size_t nn,
                                                                const float* panel) {
      __m512 acc[tr][cols];
      load_bias<S>(acc, panel);
      mac_bf16<NR>(acc, pairs, ab + i * pairs, pairs, panel + NR, panel + panel_stride + NR);
      add_relu6_rows<S>(acc, sum + n0, nn);
    });
  });
}

}  // namespace
}  // namespace mbv2::x86
