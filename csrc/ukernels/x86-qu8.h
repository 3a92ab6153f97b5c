// The x86 int8 kernels (GEMM, both depthwise strides and the stem output's
// quantization), written once over a small integer vector vocabulary Q, as
// x86-gemm.h and x86-dwconv.h are for float. Three vocabularies, each defined
// only where its TU's flags allow it:
//   Avx512Vnni  ZMM, 16 channels, vpdpbusd (k groups of 4)        *-avx512vnni.cc
//   AvxVnni     YMM,  8 channels, the VEX vpdpbusd (k groups of 4) *-avxvnni.cc
//   Avx2        YMM,  8 channels, vpmaddwd on int16 (k groups of 4)  *-avx2.cc
// Every kernel is bit-identical to its scalar twin (quant-common.h): the
// accumulation is exact int32 (no instruction here saturates) and the
// requantization does the twin's float32 operations in the twin's order.
//
// What a vocabulary provides:
//   VI, VF, kLanes, kKr               int32 / float vectors, channels per vector, the GEMM's k group
//   weights(p) activations(p) dot()   one k group: kLanes channels x kKr weights, one row's kKr
//                                     activations broadcast, acc += their products
//   Col column() weight_column() dot3()  depthwise: three rows of one pixel, acc += 3 taps
//   the requantization's float/int ops, and bytes loaded/stored over all lanes
//   (Whole) or the first n (Part: the last channel tile; never a byte past n)
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ukernels/quant-common.h"  // quantize's remainder
#include "ukernels/ukernels.h"
#include "ukernels/x86-gemm.h"  // for_each_row_tile, with_const

namespace mbv2::x86 {
namespace {

struct Whole {};
struct Part {
  size_t n;  // 0 < n < kLanes
};

template <class T>
inline T load_unaligned(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The YMM depthwise column's byte spread (AvxVnni::column): dword d of the
// result takes byte d of its broadcast 8 bytes into byte `pos` and zeros
// elsewhere, so three spreads ORed give dword c = [row0[c], row1[c], row2[c], 0]:
// the four bytes vpdpbusd sums. As int32: 0x80 (pshufb's zero) everywhere but
// byte pos, which holds d.
constexpr int32_t spread_control(int d, int pos) {
  return static_cast<int32_t>((0x80808080u & ~(0xffu << (8 * pos))) | (static_cast<uint32_t>(d) << (8 * pos)));
}
#define MBV2_SPREAD_ROW(pos)                                                                          \
  {spread_control(0, pos), spread_control(1, pos), spread_control(2, pos), spread_control(3, pos), \
   spread_control(4, pos), spread_control(5, pos), spread_control(6, pos), spread_control(7, pos)}
alignas(32) constexpr int32_t kSpread[3][8] = {MBV2_SPREAD_ROW(0), MBV2_SPREAD_ROW(1), MBV2_SPREAD_ROW(2)};
#undef MBV2_SPREAD_ROW

#if defined(__AVX2__)
// What both YMM vocabularies share: the requantization and the byte moves.
struct Ymm {
  using VI = __m256i;
  using VF = __m256;
  static constexpr size_t kLanes = 8;

  static VI load_i32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static void store_i32(void* p, VI v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static VF load_f32(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
  static VI set1_i32(int32_t v) { return _mm256_set1_epi32(v); }
  static VF set1_f32(float v) { return _mm256_set1_ps(v); }
  static VF to_float(VI v) { return _mm256_cvtepi32_ps(v); }
  static VI to_int(VF v) { return _mm256_cvtps_epi32(v); }  // MXCSR's nearest-even, as nearbyint
  static VF mul(VF a, VF b) { return _mm256_mul_ps(a, b); }
  static VF add(VF a, VF b) { return _mm256_add_ps(a, b); }
  static VF clamp(VF v, VF lo, VF hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }
  static VI add_i32(VI a, VI b) { return _mm256_add_epi32(a, b); }
  static VI sub_i32(VI a, VI b) { return _mm256_sub_epi32(a, b); }

  static __m128i load8(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }
  static VI load_u8(const uint8_t* p, Whole) { return _mm256_cvtepu8_epi32(load8(p)); }
  // A partial vector's n < 8 bytes, gathered and scattered one by one (no
  // byte masks in AVX2): only the last channel tile of a row takes these.
  static __m128i load_part(const uint8_t* p, Part part) {
    uint64_t bytes = 0;
    for (size_t j = 0; j < part.n; j++) bytes |= static_cast<uint64_t>(p[j]) << (8 * j);
    return _mm_cvtsi64_si128(static_cast<int64_t>(bytes));
  }
  static VI load_u8(const uint8_t* p, Part part) { return _mm256_cvtepu8_epi32(load_part(p, part)); }
  // The low byte of every lane: a truncation, as the twin's cast to uint8_t.
  static __m128i low_bytes(VI v) {
    const VI gathered = _mm256_shuffle_epi8(v, load_i32(kLowBytes));
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(gathered), _mm256_extracti128_si256(gathered, 1));
  }
  static void store_u8(uint8_t* p, VI v, Whole) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), low_bytes(v)); }
  static void store_u8(uint8_t* p, VI v, Part part) {
    const uint64_t bytes = static_cast<uint64_t>(_mm_cvtsi128_si64(low_bytes(v)));
    for (size_t j = 0; j < part.n; j++) p[j] = static_cast<uint8_t>(bytes >> (8 * j));
  }
  // Three rows' bytes of one pixel of the last tile, zero-padded to whole vectors.
  template <class Column>
  static auto column_part(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Part part, Column column) {
    alignas(8) uint8_t b[3][8];
    _mm_storel_epi64(reinterpret_cast<__m128i*>(b[0]), load_part(p0, part));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(b[1]), load_part(p1, part));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(b[2]), load_part(p2, part));
    return column(b[0], b[1], b[2]);
  }

  static constexpr int32_t kLowBytes[8] = {0x0c080400, -1, -1, -1, 0x0c080400, -1, -1, -1};
};
#endif

#if defined(__AVX2__)
// AVX2 without VNNI. vpmaddubsw would take u8 x s8 directly but saturates its
// int16 pair sums (255 * 127 * 2 > 32767), so both sides go to int16 and
// vpmaddwd sums pairs into int32: each product is at most 255 * 128 in
// magnitude, a pair below 2^16. The k groups are the VNNI kernels' 4: one
// broadcast of 4 activation bytes per row and group, split by AND and shift
// into the int16 pairs (a0, a2) and (a1, a3), against the weights' dwords
// (w0 w1 w2 w3) split by shifts into (w0, w2) and (w1, w3), sign-extended.
// No shuffle at all: 11% faster here than groups of 2 with each pair
// broadcast (vmovd + vpbroadcastd per row and pair, on the shuffle port).
struct Avx2 : Ymm {
  static constexpr size_t kKr = 4;

  struct Pairs {
    VI even, odd;  // int16 pairs (k0, k2) and (k1, k3) of every lane
  };
  static Pairs weights(const int8_t* p) {
    const VI w = load_i32(p);
    return {_mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8), _mm256_srai_epi16(w, 8)};
  }
  static Pairs activations(const uint8_t* p) {
    const VI a = _mm256_set1_epi32(load_unaligned<int32_t>(p));
    return {_mm256_and_si256(a, _mm256_set1_epi16(0xff)), _mm256_srli_epi16(a, 8)};
  }
  static VI dot(VI acc, const Pairs& a, const Pairs& w) {
    const VI even = _mm256_madd_epi16(a.even, w.even), odd = _mm256_madd_epi16(a.odd, w.odd);
    return _mm256_add_epi32(acc, _mm256_add_epi32(even, odd));
  }

  // Depthwise: rows 0 and 1 as the int16 pair of each lane, row 2 alone in
  // the low half (its high half zero, so vpmaddwd leaves one product).
  struct Col {
    VI rows01, row2;
  };
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Whole) {
    return {_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(load8(p0), load8(p1))), _mm256_cvtepu8_epi32(load8(p2))};
  }
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Part part) {
    return column_part(p0, p1, p2, part, [](auto b0, auto b1, auto b2) { return column(b0, b1, b2, Whole{}); });
  }
  static Col weight_column(const int8_t* w0, const int8_t* w1, const int8_t* w2) {
    return {_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(load8(w0), load8(w1))), _mm256_cvtepi8_epi32(load8(w2))};
  }
  static VI dot3(VI acc, const Col& x, const Col& w) {
    const VI rows01 = _mm256_madd_epi16(x.rows01, w.rows01), row2 = _mm256_madd_epi16(x.row2, w.row2);
    return _mm256_add_epi32(acc, _mm256_add_epi32(rows01, row2));
  }
};
#endif

#if defined(__AVXVNNI__)
// AVX-VNNI: vpdpbusd on YMM (VEX), u8 x s8 in groups of 4, into int32 without saturation.
struct AvxVnni : Ymm {
  static constexpr size_t kKr = 4;

  static VI weights(const int8_t* p) { return load_i32(p); }
  static VI activations(const uint8_t* p) { return _mm256_set1_epi32(load_unaligned<int32_t>(p)); }
  static VI dot(VI acc, VI a, VI w) { return _mm256_dpbusd_avx_epi32(acc, a, w); }

  // Depthwise: lane c = [row0[c], row1[c], row2[c], 0], one vpdpbusd per kx.
  using Col = VI;
  static VI spread(const void* p, int pos) {
    return _mm256_shuffle_epi8(_mm256_set1_epi64x(load_unaligned<int64_t>(p)), load_i32(kSpread[pos]));
  }
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Whole) {
    return _mm256_or_si256(_mm256_or_si256(spread(p0, 0), spread(p1, 1)), spread(p2, 2));
  }
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Part part) {
    return column_part(p0, p1, p2, part, [](auto b0, auto b1, auto b2) { return column(b0, b1, b2, Whole{}); });
  }
  static Col weight_column(const int8_t* w0, const int8_t* w1, const int8_t* w2) {
    return _mm256_or_si256(_mm256_or_si256(spread(w0, 0), spread(w1, 1)), spread(w2, 2));
  }
  static VI dot3(VI acc, Col x, Col w) { return _mm256_dpbusd_avx_epi32(acc, x, w); }
};
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
// AVX-512 VNNI: vpdpbusd on ZMM; byte masks (BW) for the partial vectors.
struct Avx512Vnni {
  using VI = __m512i;
  using VF = __m512;
  static constexpr size_t kLanes = 16;
  static constexpr size_t kKr = 4;

  static VI load_i32(const void* p) { return _mm512_loadu_si512(p); }
  static void store_i32(void* p, VI v) { _mm512_storeu_si512(p, v); }
  static VF load_f32(const void* p) { return _mm512_loadu_ps(p); }
  static VI set1_i32(int32_t v) { return _mm512_set1_epi32(v); }
  static VF set1_f32(float v) { return _mm512_set1_ps(v); }
  static VF to_float(VI v) { return _mm512_cvtepi32_ps(v); }
  static VI to_int(VF v) { return _mm512_cvtps_epi32(v); }  // MXCSR's nearest-even, as nearbyint
  static VF mul(VF a, VF b) { return _mm512_mul_ps(a, b); }
  static VF add(VF a, VF b) { return _mm512_add_ps(a, b); }
  static VF clamp(VF v, VF lo, VF hi) { return _mm512_min_ps(_mm512_max_ps(v, lo), hi); }
  static VI add_i32(VI a, VI b) { return _mm512_add_epi32(a, b); }
  static VI sub_i32(VI a, VI b) { return _mm512_sub_epi32(a, b); }

  static __mmask16 mask(size_t n) { return _cvtu32_mask16((1u << n) - 1); }
  static __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
  static VI load_u8(const uint8_t* p, Whole) { return _mm512_cvtepu8_epi32(load16(p)); }
  static VI load_u8(const uint8_t* p, Part part) {
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask(part.n), p));
  }
  // vpmovdb truncates, as the twin's cast to uint8_t.
  static void store_u8(uint8_t* p, VI v, Whole) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
  }
  static void store_u8(uint8_t* p, VI v, Part part) {
    _mm_mask_storeu_epi8(p, mask(part.n), _mm512_cvtepi32_epi8(v));
  }

  static VI weights(const int8_t* p) { return load_i32(p); }
  static VI activations(const uint8_t* p) { return _mm512_set1_epi32(load_unaligned<int32_t>(p)); }
  static VI dot(VI acc, VI a, VI w) { return _mm512_dpbusd_epi32(acc, a, w); }

  // Depthwise: lane c = [row0[c], row1[c], row2[c], 0], one vpdpbusd per kx.
  // Each row zero-extended to dwords and shifted to its byte: 12-13% faster
  // than the YMM kernels' broadcast + vpshufb spread, on ZMM.
  using Col = VI;
  static Col merge(__m128i r0, __m128i r1, __m128i r2) {
    return _mm512_ternarylogic_epi32(_mm512_cvtepu8_epi32(r0), _mm512_slli_epi32(_mm512_cvtepu8_epi32(r1), 8),
                                     _mm512_slli_epi32(_mm512_cvtepu8_epi32(r2), 16), 0xfe);  // a | b | c
  }
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Whole) {
    return merge(load16(p0), load16(p1), load16(p2));
  }
  static Col column(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, Part part) {
    const __mmask16 m = mask(part.n);
    return merge(_mm_maskz_loadu_epi8(m, p0), _mm_maskz_loadu_epi8(m, p1), _mm_maskz_loadu_epi8(m, p2));
  }
  // The weights' bytes go where the inputs' do; vpdpbusd reads them as signed.
  static Col weight_column(const int8_t* w0, const int8_t* w1, const int8_t* w2) {
    return merge(load16(w0), load16(w1), load16(w2));
  }
  static VI dot3(VI acc, Col x, Col w) { return _mm512_dpbusd_epi32(acc, x, w); }
};
#endif

// The requantization's constants as vectors (ukernels.h, mbv2_qu8_requant),
// made after the GEMM's k loop, where the tile's sums are already in memory.
template <class Q>
struct QRequant {
  typename Q::VF lo, hi, residual_scale;
  typename Q::VI zero_point, residual_zero_point;

  explicit QRequant(const mbv2_qu8_requant& rq)
      : lo(Q::set1_f32(rq.lo)),
        hi(Q::set1_f32(rq.hi)),
        residual_scale(Q::set1_f32(rq.residual_scale)),
        zero_point(Q::set1_i32(rq.zero_point)),
        residual_zero_point(Q::set1_i32(rq.residual_zero_point)) {}
};

// One vector of outputs: mbv2::quant::requantize, operation for operation
// (the residual's multiply and add stay two roundings: -ffp-contract=off).
// `residual` points at this vector's residual bytes, or is null.
template <class Q, class Lanes>
inline void requantize_store(typename Q::VI acc, typename Q::VF scale, const QRequant<Q>& rq, const uint8_t* residual,
                             uint8_t* out, Lanes lanes) {
  typename Q::VF v = Q::mul(Q::to_float(acc), scale);
  if (residual) {
    const typename Q::VI r = Q::sub_i32(Q::load_u8(residual, lanes), rq.residual_zero_point);
    v = Q::add(v, Q::mul(Q::to_float(r), rq.residual_scale));
  }
  Q::store_u8(out, Q::add_i32(Q::to_int(Q::clamp(v, rq.lo, rq.hi)), rq.zero_point), lanes);
}

// ---- GEMM ----

// acc[r][v] += the products of `groups` k groups: per group, C weight vectors
// are loaded, each row's kKr activations broadcast once, and R * C dot
// products issued.
template <class Q, size_t NR, size_t R, size_t C>
inline void qgemm_mac(typename Q::VI (&acc)[R][C], size_t groups, const uint8_t* a, size_t a_stride, const int8_t* w) {
  constexpr size_t L = Q::kLanes, KR = Q::kKr;
  for (size_t g = 0; g < groups; g++, w += NR * KR, a += KR) {
    decltype(Q::weights(w)) vw[C];  // Avx2: a pair of vectors
#pragma GCC unroll 4
    for (size_t v = 0; v < C; v++) vw[v] = Q::weights(w + v * L * KR);
#pragma GCC unroll 32
    for (size_t r = 0; r < R; r++) {
      const auto va = Q::activations(a + r * a_stride);
#pragma GCC unroll 4
      for (size_t v = 0; v < C; v++) acc[r][v] = Q::dot(acc[r][v], va, vw[v]);
    }
  }
}

// Requantizes and stores rows i.. (R of them) and the nn live columns n0..
// of a tile's int32 sums, bias included.
template <class Q, size_t NR, size_t R, size_t C>
inline void requantize_rows(const int32_t (&sums)[R][C][Q::kLanes], const char* panel, const mbv2_qu8_requant& rq,
                            size_t i, size_t n0, size_t nn, uint8_t* c, size_t c_stride) {
  constexpr size_t L = Q::kLanes;
  const QRequant<Q> rqv(rq);
#pragma GCC unroll 4
  for (size_t v = 0; v < C; v++) {
    const typename Q::VF scale = Q::load_f32(panel + 4 * NR + 4 * v * L);
    const size_t n = n0 + v * L, live = nn - v * L;
#pragma GCC unroll 32
    for (size_t r = 0; r < R; r++) {
      const uint8_t* res = rq.residual ? rq.residual + (i + r) * rq.residual_stride + n : nullptr;
      uint8_t* out = c + (i + r) * c_stride + n;
      if (live >= L) {
        requantize_store<Q>(Q::load_i32(sums[r][v]), scale, rqv, res, out, Whole{});
      } else {
        requantize_store<Q>(Q::load_i32(sums[r][v]), scale, rqv, res, out, Part{live});
      }
    }
  }
}

// One R x C tile: rows i.. of A, C vectors of the panel. Its accumulators
// start as the panel's biases and stay in registers over all k groups.
template <class Q, size_t NR, size_t R, size_t C>
inline void qgemm_tile(size_t groups, const uint8_t* a, size_t a_stride, const char* panel,
                       const mbv2_qu8_requant& rq, size_t i, size_t n0, size_t nn, uint8_t* c, size_t c_stride) {
  using VI = typename Q::VI;
  constexpr size_t L = Q::kLanes;
  VI acc[R][C];
#pragma GCC unroll 4
  for (size_t v = 0; v < C; v++) {
    const VI bias = Q::load_i32(panel + 4 * v * L);
#pragma GCC unroll 32
    for (size_t r = 0; r < R; r++) acc[r][v] = bias;
  }
  qgemm_mac<Q, NR>(acc, groups, a + i * a_stride, a_stride, reinterpret_cast<const int8_t*>(panel + 8 * NR));
  // The epilogue reads the sums back from memory. Left in registers, the
  // tile plus the epilogue's temporaries made GCC 12 store every accumulator
  // to the stack at every k group instead of once (20 stores per 24 vpdpbusd
  // in the 6x64 loop; 10-15% slower at 16 accumulators too). The asm makes
  // the buffer opaque, so the stores stay after the loop.
  alignas(64) int32_t sums[R][C][L];
#pragma GCC unroll 32
  for (size_t r = 0; r < R; r++) {
#pragma GCC unroll 4
    for (size_t v = 0; v < C; v++) Q::store_i32(sums[r][v], acc[r][v]);
  }
  __asm__ volatile("" : : "r"(sums) : "memory");
  requantize_rows<Q, NR>(sums, panel, rq, i, n0, nn, c, c_stride);
}

// mbv2_qu8_gemm_ukernel_fn with MR x (NV vectors) tiles. Panels are the outer
// loop (one panel's weights stay in cache while the rows pass); a panel whose
// live channels fill fewer vectors takes proportionally more rows, so the
// accumulator count stays MR * NV (x86-gemm.h, for_each_tile).
template <class Q, size_t MR, size_t NV>
inline void qgemm(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                  size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c, size_t c_stride) {
  constexpr size_t L = Q::kLanes, NR = NV * L;
  const size_t groups = (kc + Q::kKr - 1) / Q::kKr;
  const char* panel = static_cast<const char*>(w);
  for (size_t n0 = 0; n0 < nc; n0 += NR, panel += panel_stride) {
    const size_t nn = std::min(NR, nc - n0);
    with_const<NV>((nn + L - 1) / L, [&](auto cols) {
      for_each_row_tile<MR * NV / decltype(cols)::value>(m, [&](auto rows, size_t i) {
        qgemm_tile<Q, NR, decltype(rows)::value, decltype(cols)::value>(groups, a, a_stride, panel, *rq, i, n0, nn, c,
                                                                         c_stride);
      });
    });
  }
}

// ---- depthwise 3x3 ----

// P adjacent output pixels of one channel tile: each input column (3 rows of
// one pixel) is formed once and feeds the up to 3 outputs whose window covers
// it; the P accumulators are independent chains.
template <class Q, size_t Stride, size_t P, class Lanes>
inline void qdw_pixels(const uint8_t* const (&in)[3], size_t in_stride, const typename Q::Col (&wk)[3],
                       typename Q::VI bias, typename Q::VF scale, const QRequant<Q>& rqv, const uint8_t* residual,
                       uint8_t* out, size_t out_stride, Lanes lanes) {
  constexpr size_t kCols = (P - 1) * Stride + 3;
  typename Q::VI acc[P];
#pragma GCC unroll 16
  for (size_t p = 0; p < P; p++) acc[p] = bias;
#pragma GCC unroll 32
  for (size_t j = 0; j < kCols; j++) {
    const size_t off = j * in_stride;
    const typename Q::Col col = Q::column(in[0] + off, in[1] + off, in[2] + off, lanes);
#pragma GCC unroll 16
    for (size_t p = 0; p < P; p++) {
      if (j >= p * Stride && j - p * Stride < 3) acc[p] = Q::dot3(acc[p], col, wk[j - p * Stride]);
    }
  }
#pragma GCC unroll 16
  for (size_t p = 0; p < P; p++) requantize_store<Q>(acc[p], scale, rqv, residual, out + p * out_stride, lanes);
}

template <class Q, size_t Stride, size_t P, class Lanes>
inline void qdw_channel_tile(size_t wo, const uint8_t* const (&rows)[3], size_t in_stride, const char* panel,
                             const QRequant<Q>& rqv, const uint8_t* residual, uint8_t* out, size_t out_stride,
                             Lanes lanes) {
  constexpr size_t NR = Q::kLanes;
  const int8_t* w = reinterpret_cast<const int8_t*>(panel + 8 * NR);
  typename Q::Col wk[3];  // column kx of the taps: (ky = 0..2, kx), as the input columns
  for (size_t kx = 0; kx < 3; kx++) wk[kx] = Q::weight_column(w + kx * NR, w + (3 + kx) * NR, w + (6 + kx) * NR);
  const typename Q::VI bias = Q::load_i32(panel);
  const typename Q::VF scale = Q::load_f32(panel + 4 * NR);
  size_t x = 0;
  for (; x + P <= wo; x += P) {
    const size_t off = x * Stride * in_stride;
    const uint8_t* const in[3] = {rows[0] + off, rows[1] + off, rows[2] + off};
    qdw_pixels<Q, Stride, P>(in, in_stride, wk, bias, scale, rqv, residual, out + x * out_stride, out_stride, lanes);
  }
  if (x == wo) return;
  // The last pixels in one call: the 7-, 14- and 28-wide rows end in one.
  const size_t off = x * Stride * in_stride;
  const uint8_t* const in[3] = {rows[0] + off, rows[1] + off, rows[2] + off};
  with_const<P - 1>(wo - x, [&](auto rest) {
    qdw_pixels<Q, Stride, decltype(rest)::value>(in, in_stride, wk, bias, scale, rqv, residual, out + x * out_stride,
                                                 out_stride, lanes);
  });
}

// mbv2_qu8_dwconv3x3s{1,2}_ukernel_fn, one vector of channels per packed tile
// (nr = kLanes). The twin's requantization sees the output row as row 0, so a
// residual (the engine passes none) is read at row 0 for every pixel.
template <class Q, size_t Stride, size_t P>
inline void qdwconv3x3(size_t wo, size_t channels, const uint8_t* const* rows, size_t in_stride, const void* w,
                       size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* out, size_t out_stride) {
  constexpr size_t L = Q::kLanes;
  const QRequant<Q> rqv(*rq);
  const char* panel = static_cast<const char*>(w);
  for (size_t c0 = 0; c0 < channels; c0 += L, panel += panel_stride) {
    const uint8_t* const tile_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    const uint8_t* residual = rq->residual ? rq->residual + c0 : nullptr;
    if (c0 + L <= channels) {
      qdw_channel_tile<Q, Stride, P>(wo, tile_rows, in_stride, panel, rqv, residual, out + c0, out_stride, Whole{});
    } else {
      qdw_channel_tile<Q, Stride, P>(wo, tile_rows, in_stride, panel, rqv, residual, out + c0, out_stride,
                                     Part{channels - c0});
    }
  }
}

// ---- the stem's float32 output to uint8 ----

// mbv2_qu8_quantize_ukernel_fn: kLanes values at a time, the twin's operations
// (MXCSR's nearest-even for rint); the last n % kLanes values through the twin.
template <class Q>
inline void quantize(size_t n, const float* x, float inv_scale, float hi, uint8_t* y) {
  const typename Q::VF inv = Q::set1_f32(inv_scale), lo = Q::set1_f32(0.0f), top = Q::set1_f32(hi);
  size_t i = 0;
  for (; i + Q::kLanes <= n; i += Q::kLanes) {
    Q::store_u8(y + i, Q::to_int(Q::clamp(Q::mul(Q::load_f32(x + i), inv), lo, top)), Whole{});
  }
  mbv2::quant::quantize(n - i, x + i, inv_scale, hi, y + i);
}

}  // namespace
}  // namespace mbv2::x86
