// The AMX kernels: the bf16 expand, project and head (ukernels.h, bf16) and
// the int8 GEMM, over a tile backend T, one of
//   AmxTiles       the AMX instructions (*-amx.cc: -mamx-tile -mamx-bf16
//                  -mamx-int8 with the AVX-512 BF16 and VNNI flags)
//   EmulatedTiles  the same instructions in plain C++ after the Intel SDM's
//                  pseudocode, so that the kernels are tested on CPUs without
//                  AMX (csrc/testing/amx_emulated.h)
// Each call computes 32 x 32 output blocks as 2 x 2 tiles of 16 x 16 float32
// or int32 sums: tmm0-3 the sums (rows 0-15 / 16-31 by columns 0-15 / 16-31),
// tmm4-5 A (rows 0-15 / 16-31), tmm6-7 B (columns 0-15 / 16-31). B is read
// in place from the nr = 32 panels the AVX-512 kernels use: a panel row of
// 32 bf16 pairs or int8 quads is 128 bytes, the 64 bytes of 16 columns a tile
// row. A is copied per 32-row block into a buffer laid out as the tiles read
// it. Every row goes through the tiles, those of a last partial block too
// (its last row repeated to fill 32, only the live rows stored): a row's sums
// then never depend on where the batch, the threads or the cache tiling cut
// the GEMM, since the tiles add in another order than the AVX-512 kernels
// (seen on Emerald Rapids: an image alone and in a batch of 3 differed in
// every bf16 logit while remainder rows went to AVX-512). The AVX-512 kernel
// takes only what the layer fixes (AmxReach, per kernel): a last partial
// panel (the threads claim whole panels, so that cut is always at the
// layer's last one), a K below one tile step for int8, and whole GEMMs whose
// A rows are longer than kMaxRowBytes. The epilogues (bias, ReLU6, residual,
// requantization, the head's sum) are the AVX-512 kernels' (x86-gemm.h,
// x86-qu8.h), run on the sums stored to memory.
//
// Ragged K: a tile step covers 16 k words (a word: one bf16 pair or int8
// quad). The last step, when K is not a multiple of 16 words, steps back to
// end at K, its first words (counted by the step before) zeroed in A, so no
// B row past the panel's K is read. A K below 16 words (the first blocks'
// expands: 16 and 24 inputs) is, for bf16, one step on tiles configured
// that narrow: the instructions take as long, but still do several times
// the AVX-512 kernel's work per cycle (on Emerald Rapids VDPBF16PS runs at
// half the float32 FMA's rate; the first three blocks took 15% less time).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ukernels/bf16-common.h"
#include "ukernels/ukernels.h"

#if defined(__AVX512BF16__)
#include "ukernels/x86-bf16.h"
#endif
#if defined(__AVX512VNNI__)
#include "ukernels/x86-qu8.h"
#endif

namespace mbv2::x86 {
namespace {

constexpr size_t kTileRows = 16, kTileRowBytes = 64;     // every tile here: 16 rows x 16 dwords
constexpr size_t kStepWords = kTileRowBytes / 4;         // k words per tile step
constexpr size_t kBlock = 2 * kTileRows;                 // 32 x 32 outputs per block
constexpr size_t kSumStride = kBlock * 4;                // bytes per row of a block's sums
constexpr size_t kPanelRowBytes = kBlock * 4;            // a row of an nr = 32 panel: B's tile stride
constexpr size_t kMaxRowBytes = 2048;                    // of A per row; past it, AVX-512
constexpr size_t kStepBytes = kBlock * kTileRowBytes;    // one step of a 32-row block of A
constexpr size_t kMaxSteps = kMaxRowBytes / kTileRowBytes;

// LDTILECFG's 64-byte operand (Intel SDM, palette 1): every tile 16 x 64
// bytes, but for a K below one step of 16 words, where the A tiles are
// `words` words wide and the B tiles `words` rows tall (a single step).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {kTileRowBytes, kTileRowBytes, kTileRowBytes, kTileRowBytes,
                        kTileRowBytes, kTileRowBytes, kTileRowBytes, kTileRowBytes};
  uint8_t rows[16] = {kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows, kTileRows};

  explicit TileConfig(size_t words) {
    if (words >= kStepWords) return;
    colsb[4] = colsb[5] = static_cast<uint16_t>(4 * words);
    rows[6] = rows[7] = static_cast<uint8_t>(words);
  }
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

// Which dot product a step issues.
struct Bf16Dot {};  // TDPBF16PS
struct U8S8Dot {};  // TDPBUSD: u8 activations x s8 weights

// Where sum tile t (0-3) of a block lies in its 32 x 32 sums.
constexpr size_t sum_tile_offset(size_t t) { return t / 2 * kTileRows * kSumStride + t % 2 * kTileRowBytes; }

// GCC names the -mamx-* macros __AMX_TILE__ ..., Clang __AMXTILE__ ...
#if (defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AMX_INT8__)) || \
    (defined(__AMXTILE__) && defined(__AMXBF16__) && defined(__AMXINT8__))
// GCC's tile intrinsics are macros that paste the tile number into the
// instruction (so it must be a literal), and its tileloadd names no memory
// operand: the barrier makes the stores before a load reach memory first.
//
// The configuration is loaded only when the tiles do not hold it already,
// and never released: LDTILECFG took about 50 ns even when it changed
// nothing, STTILECFG 5, and a call per ring row paid it hundreds of times an
// image (Emerald Rapids). Whoever else uses the tiles in this thread
// (oneDNN, say) loads its own configuration first, as the ISA requires, and
// is checked against here on the next call.
struct AmxTiles {
  explicit AmxTiles(const TileConfig& config) {
    alignas(64) uint8_t now[sizeof config];  // all zeros while no configuration is loaded
    _tile_storeconfig(now);
    if (std::memcmp(now, &config, sizeof config) != 0) _tile_loadconfig(&config);
  }
  AmxTiles(const AmxTiles&) = delete;
  AmxTiles& operator=(const AmxTiles&) = delete;

  static void zero_sums() {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  // The barrier after: the epilogue reads what the stores wrote, which GCC
  // does not know they did.
  static void store_sums(void* sums) {
    char* p = static_cast<char*>(sums);
    _tile_stored(0, p + sum_tile_offset(0), kSumStride);
    _tile_stored(1, p + sum_tile_offset(1), kSumStride);
    _tile_stored(2, p + sum_tile_offset(2), kSumStride);
    _tile_stored(3, p + sum_tile_offset(3), kSumStride);
    __asm__ volatile("" ::: "memory");
  }
  static void load_operands(const uint8_t* a, const char* b) {
    __asm__ volatile("" ::: "memory");
    _tile_loadd(4, a, kTileRowBytes);
    _tile_loadd(5, a + kTileRows * kTileRowBytes, kTileRowBytes);
    _tile_loadd(6, b, kPanelRowBytes);
    _tile_loadd(7, b + kTileRowBytes, kPanelRowBytes);
  }
  static void dot(Bf16Dot) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  static void dot(U8S8Dot) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
};
#endif

// The eight tile registers and the palette-1 configuration in memory, with
// the instructions' shape checks (the SDM's #UD cases: a tile wider than 64
// bytes or taller than 16 rows, operands whose shapes do not chain); a failed
// check aborts, as the fault would. The arithmetic, from the SDM pseudocode:
//   TDPBF16PS  per output row, two float32 partial sums per output column,
//              one over the even bf16 of the pairs and one over the odd ones,
//              each from zero over the tile's k; then their sum is added to
//              the output. Every addition rounds to nearest even with DAZ and
//              FTZ (denormal inputs read as zero, denormal results flushed to
//              zero), MXCSR unread; a bf16 product is exact in float32.
//   TDPBUSD    per output dword, the four u8 x s8 products of each k quad
//              added to it in int32, wrapping around.
// Real AMX units need not add in this order (the SDM's sums are a model), so
// bf16 is compared within a tolerance; int8 is exact anywhere.
class EmulatedTiles {
 public:
  explicit EmulatedTiles(const TileConfig& config) : config_(config) {}

  void zero_sums() {
    for (int t = 0; t < 4; t++) {
      check_tile(t);
      tiles_[t] = Tile{};
    }
  }
  void store_sums(void* sums) const {
    for (int t = 0; t < 4; t++) tilestored(t, static_cast<char*>(sums) + sum_tile_offset(t), kSumStride);
  }
  void load_operands(const uint8_t* a, const char* b) {
    tileloadd(4, a, kTileRowBytes);
    tileloadd(5, a + kTileRows * kTileRowBytes, kTileRowBytes);
    tileloadd(6, b, kPanelRowBytes);
    tileloadd(7, b + kTileRowBytes, kPanelRowBytes);
  }
  template <class Dot>
  void dot(Dot kind) {
    for (int t = 0; t < 4; t++) dp(kind, t, 4 + t / 2, 6 + t % 2);
  }

 private:
  struct Tile {
    uint8_t bytes[kTileRows][kTileRowBytes];
  };

  static void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "EmulatedTiles: %s (AMX would raise #UD)\n", what);
    std::abort();
  }
  void check_tile(int t) const {
    check(config_.palette == 1, "palette is not 1");
    check(t >= 0 && t < 8, "no such tile");
    check(config_.rows[t] >= 1 && config_.rows[t] <= kTileRows && config_.colsb[t] >= 4 &&
              config_.colsb[t] <= kTileRowBytes && config_.colsb[t] % 4 == 0,
          "tile not configured or past 16 rows x 64 bytes");
  }
  void check_dp(int c, int a, int b) const {
    check_tile(c);
    check_tile(a);
    check_tile(b);
    check(c != a && c != b && a != b, "tile operands must differ");
    check(config_.rows[a] == config_.rows[c] && config_.colsb[b] == config_.colsb[c] &&
              config_.colsb[a] / 4 == config_.rows[b],
          "shapes do not chain: C = A (m x k) B (k x n)");
  }
  // Rows past the configured ones, and bytes past colsb, read as zero.
  void tileloadd(int t, const void* base, size_t stride) {
    check_tile(t);
    tiles_[t] = Tile{};
    for (size_t r = 0; r < config_.rows[t]; r++) {
      std::memcpy(tiles_[t].bytes[r], static_cast<const char*>(base) + r * stride, config_.colsb[t]);
    }
  }
  void tilestored(int t, void* base, size_t stride) const {
    check_tile(t);
    for (size_t r = 0; r < config_.rows[t]; r++) {
      std::memcpy(static_cast<char*>(base) + r * stride, tiles_[t].bytes[r], config_.colsb[t]);
    }
  }
  template <class V>
  V word(int t, size_t r, size_t n) const {
    V v;
    std::memcpy(&v, tiles_[t].bytes[r] + 4 * n, 4);
    return v;
  }
  template <class V>
  void set_word(int t, size_t r, size_t n, V v) {
    std::memcpy(tiles_[t].bytes[r] + 4 * n, &v, 4);
  }

  static float flush(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }
  static float half(uint32_t pair, int h) { return flush(bf16::widen(static_cast<uint16_t>(pair >> (16 * h)))); }

  void dp(Bf16Dot, int c, int a, int b) {
    check_dp(c, a, b);
    const size_t words = config_.colsb[a] / 4, columns = config_.colsb[c] / 4;
    for (size_t m = 0; m < config_.rows[c]; m++) {
      for (size_t n = 0; n < columns; n++) {
        float even = 0.0f, odd = 0.0f;
        for (size_t k = 0; k < words; k++) {
          const uint32_t x = word<uint32_t>(a, m, k), y = word<uint32_t>(b, k, n);
          even = flush(std::fma(half(x, 0), half(y, 0), even));
          odd = flush(std::fma(half(x, 1), half(y, 1), odd));
        }
        const float sum = flush(even + odd);
        set_word(c, m, n, flush(flush(word<float>(c, m, n)) + sum));
      }
    }
  }
  void dp(U8S8Dot, int c, int a, int b) {
    check_dp(c, a, b);
    const size_t words = config_.colsb[a] / 4, columns = config_.colsb[c] / 4;
    for (size_t m = 0; m < config_.rows[c]; m++) {
      for (size_t n = 0; n < columns; n++) {
        uint32_t acc = word<uint32_t>(c, m, n);  // unsigned: the wrap-around is defined
        for (size_t k = 0; k < words; k++) {
          for (size_t j = 0; j < 4; j++) {
            const int32_t x = tiles_[a].bytes[m][4 * k + j];
            const int32_t y = static_cast<int8_t>(tiles_[b].bytes[k][4 * n + j]);
            acc += static_cast<uint32_t>(x * y);
          }
        }
        set_word(c, m, n, acc);
      }
    }
  }

  TileConfig config_;  // as LDTILECFG loads it
  Tile tiles_[8] = {};
};

// K in tile steps of 16 words, the last stepping back to end at `words`; a
// K below 16 words is one step from 0 (on tiles configured that narrow).
inline size_t steps_for(size_t words) { return (words + kStepWords - 1) / kStepWords; }
inline size_t step_start(size_t t, size_t words) {
  return std::min(t * kStepWords, std::max(words, kStepWords) - kStepWords);
}

// What a kernel leaves to the AVX-512 one, by measurement: a K below
// min_words, and a last partial panel of fewer than min_last_columns live
// columns (its epilogue on 2 vectors needs at least 16; kNever: none).
struct AmxReach {
  size_t min_words, min_last_columns;
};
constexpr size_t kNever = kBlock;

// One GEMM of m rows and nc columns over `words` k words on the tiles: for
// each 32-row block, pack(i, rows, a_tiles) fills the A buffer (step t's 32
// rows at a_tiles + t * kStepBytes, kTileRowBytes apart) from its `rows` live
// rows; each panel the tiles take multiplies it from zero by B, whose first
// row b_at(n0) gives, into 32 x 32 sums (a Sums in memory), and then
// epilogue(i, rows, n0, nn, sums) adds the start (bias, residual) and stores
// the live rows and nn columns. The sums start at zero in the tiles rather
// than from the start values through memory: a tile load of what vector
// stores just wrote waits for them to leave the store buffer. fallback(n0)
// runs the AVX-512 kernel on every row and the columns from n0 on: a last
// panel the reach leaves out, or all of them when K is out of reach or past
// the tiles' rows.
template <class T, class Dot, class Sums, class Pack, class Panel, class Epilogue, class Fallback>
inline void amx_gemm(size_t m, size_t nc, size_t words, AmxReach reach, Pack pack, Panel b_at, Epilogue epilogue,
                     Fallback fallback) {
  const size_t tiled = nc % kBlock >= reach.min_last_columns ? nc : nc / kBlock * kBlock;
  if (words < reach.min_words || words * 4 > kMaxRowBytes || tiled == 0) return fallback(0);
  alignas(64) uint8_t a_tiles[kMaxSteps * kStepBytes];
  alignas(64) Sums sums;
  T tiles{TileConfig(words)};
  for (size_t i = 0; i < m; i += kBlock) {
    const size_t rows = std::min(kBlock, m - i);
    pack(i, rows, a_tiles);
    for (size_t n0 = 0; n0 < tiled; n0 += kBlock) {
      const char* b = reinterpret_cast<const char*>(b_at(n0));
      tiles.zero_sums();
      for (size_t t = 0, steps = steps_for(words); t < steps; t++) {
        tiles.load_operands(a_tiles + t * kStepBytes, b + step_start(t, words) * kPanelRowBytes);
        tiles.dot(Dot{});
      }
      tiles.store_sums(&sums);
      epilogue(i, rows, n0, std::min(kBlock, nc - n0), sums);
    }
  }
  if (tiled < nc) fallback(tiled);
}

// Runs epilogue(part, r) on each live row r of a block's sums, as a one-row
// tile copied out of the buffer, so that no row past m is read or written
// and the epilogue's arithmetic stays in registers. (Run on the buffer's own
// row, GCC stored every sum back to it before the clamp and reloaded it.)
template <class Row, class Epilogue>
inline void for_live_rows(const Row (&sums)[kBlock], size_t rows, Epilogue epilogue) {
  for (size_t r = 0; r < rows; r++) {
    Row part[1];
    std::memcpy(part, &sums[r], sizeof(Row));
    epilogue(part, r);
  }
}

// Word j of row r in the A buffer is row r's word start + j of each step,
// those an earlier step counted (j < t * 16 - start) zeroed.
inline __mmask16 uncounted_words(size_t t, size_t start) {
  return _cvtu32_mask16(0xffffu << (t * kStepWords - start));
}

#if defined(__AVX512BF16__)
// A block's `rows` live rows of float32 a rounded to bf16 pairs in the A
// buffer, the last repeated to fill 32 (x86-bf16.h's round_32: the AVX-512
// kernels' rounding, an odd kc's last pair (a, 0)).
inline void round_block(const float* a, size_t a_stride, size_t rows, size_t kc, uint8_t* a_tiles) {
  const size_t pairs = (kc + 1) / 2;
  for (size_t t = 0, steps = steps_for(pairs); t < steps; t++) {
    const size_t start = step_start(t, pairs);
    const __mmask16 keep = uncounted_words(t, start);
    for (size_t r = 0; r < kBlock; r++) {
      const float* row = a + std::min(r, rows - 1) * a_stride;
      const __m512i v = round_32(row + 2 * start, std::min<size_t>(32, kc - 2 * start));
      _mm512_store_si512(a_tiles + t * kStepBytes + r * kTileRowBytes, _mm512_maskz_mov_epi32(keep, v));
    }
  }
}

// The bf16 GEMMs take every K on the tiles (below one step on narrow ones),
// and a last panel of 16 or more live columns: VDPBF16PS, at half the float32
// FMA's rate on Emerald Rapids, made the first blocks' 16- and 24-channel
// projections a fifth of the network there.
constexpr AmxReach kBf16Reach{1, kBlock / 2};

// acc += start, where start is a tile as the AVX-512 kernels start their
// accumulators (load_bias, start_project): the epilogues' start for sums
// that begin at zero in the tiles.
template <size_t R, size_t C>
inline void add_start(__m512 (&acc)[R][C], const __m512 (&start)[R][C]) {
  for (size_t r = 0; r < R; r++) {
    for (size_t v = 0; v < C; v++) acc[r][v] = _mm512_add_ps(acc[r][v], start[r][v]);
  }
}

// The bf16 GEMMs on the tiles: A rounded per 32-row block, sums as 32 x 2
// vectors.
template <class T, class Panel, class Epilogue, class Fallback>
inline void bf16_gemm(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, Panel b_at, Epilogue epilogue,
                      Fallback fallback) {
  amx_gemm<T, Bf16Dot, __m512[kBlock][2]>(
      m, nc, (kc + 1) / 2, kBf16Reach,
      [&](size_t i, size_t rows, uint8_t* a_tiles) { round_block(a + i * a_stride, a_stride, rows, kc, a_tiles); },
      b_at, epilogue, fallback);
}

// The epilogues below read what the row loop needs into locals first (the
// panel's bias once per block, the output's first row): reached through the
// captures inside the loop, every row reloaded them, since its stores might
// have changed them (block 1's expand 10% slower on Emerald Rapids).
template <class T>
inline void amx_bf16_expand_relu6(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                                  float* c, size_t c_stride) {
  const size_t panel_stride = ((kc + 1) / 2 + 1) * kBlock;  // bias row, then the pairs
  const auto panel_at = [=](size_t n0) { return w + n0 / kBlock * panel_stride; };
  bf16_gemm<T>(
      m, nc, kc, a, a_stride, [=](size_t n0) { return panel_at(n0) + kBlock; },
      [=](size_t i, size_t rows, size_t n0, size_t nn, auto& sums) {
        __m512 bias[1][2];
        load_bias<S>(bias, panel_at(n0));
        float* const out = c + i * c_stride + n0;
        for_live_rows(sums, rows, [&](auto& acc, size_t r) {
          add_start(acc, bias);
          store_relu6<S>(acc, out + r * c_stride, c_stride, nn);
        });
      },
      [=](size_t n0) {
        mbv2_bf16_expand_relu6_ukernel_7x32__avx512bf16(m, nc - n0, kc, a, a_stride, panel_at(n0), c + n0, c_stride);
      });
}

template <class T>
inline void amx_bf16_project_acc(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
                                 size_t w_panel_stride, const float* bias, const float* src, float* c,
                                 size_t c_stride) {
  const auto panel_at = [=](size_t n0) { return w + n0 / kBlock * w_panel_stride; };
  bf16_gemm<T>(
      m, nc, kc, a, a_stride, panel_at,
      [=](size_t i, size_t rows, size_t n0, size_t nn, auto& sums) {
        float* const out = c + i * c_stride + n0;
        for_live_rows(sums, rows, [&](auto& acc, size_t r) {
          __m512 start[1][2];
          start_project<S>(start, bias, src, i + r, c_stride, n0, nn);
          add_start(acc, start);
          store_rows<S>(acc, out + r * c_stride, c_stride, nn);
        });
      },
      [=](size_t n0) {
        mbv2_bf16_project_acc_ukernel_7x32__avx512bf16(m, nc - n0, kc, a, a_stride, panel_at(n0), w_panel_stride,
                                                       bias ? bias + n0 : nullptr, src ? src + n0 : nullptr, c + n0,
                                                       c_stride);
      });
}

template <class T>
inline void amx_bf16_head_relu6_rowsum(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                       const float* w, float* sum) {
  const size_t panel_stride = ((kc + 1) / 2 + 1) * kBlock;
  const auto panel_at = [=](size_t n0) { return w + n0 / kBlock * panel_stride; };
  bf16_gemm<T>(
      m, nc, kc, a, a_stride, [=](size_t n0) { return panel_at(n0) + kBlock; },
      [=](size_t, size_t rows, size_t n0, size_t nn, auto& sums) {
        __m512 bias[1][2];
        load_bias<S>(bias, panel_at(n0));
        for_live_rows(sums, rows, [&](auto& acc, size_t) {
          add_start(acc, bias);
          add_relu6_rows<S>(acc, sum + n0, nn);
        });
      },
      [=](size_t n0) {
        mbv2_bf16_head_relu6_rowsum_ukernel_7x32__avx512bf16(m, nc - n0, kc, a, a_stride, panel_at(n0), sum + n0);
      });
}
#endif

#if defined(__AVX512VNNI__)
// A block's `rows` live rows of uint8 a in the A buffer, the last repeated to
// fill 32. A step never reads past the row's kc rounded up to 4 (it ends at
// the last quad, or a K below one step reads its quads alone); the bytes past
// kc meet zero weights, as in the AVX-512 kernel.
inline void copy_block(const uint8_t* a, size_t a_stride, size_t rows, size_t quads, uint8_t* a_tiles) {
  const __mmask16 live = _cvtu32_mask16(0xffffu >> (kStepWords - std::min(kStepWords, quads)));
  for (size_t t = 0, steps = steps_for(quads); t < steps; t++) {
    const size_t start = step_start(t, quads);
    const __mmask16 keep = _kand_mask16(live, uncounted_words(t, start));
    for (size_t r = 0; r < kBlock; r++) {
      const __m512i v = _mm512_maskz_loadu_epi32(keep, a + std::min(r, rows - 1) * a_stride + 4 * start);
      _mm512_store_si512(a_tiles + t * kStepBytes + r * kTileRowBytes, v);
    }
  }
}

// The int8 GEMM leaves a K below one tile step, and a last partial panel, to
// the AVX-512 kernel: there VPDPBUSD keeps up (on Emerald Rapids the first
// blocks ran 5-25% slower on narrow tiles, whose sums go through memory and
// the requantization after).
constexpr AmxReach kInt8Reach{kStepWords, kNever};

template <class T>
inline void amx_qgemm(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                      size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c, size_t c_stride) {
  using Q = Avx512Vnni;
  const size_t quads = (kc + 3) / 4;
  const auto panel_at = [=](size_t n0) { return static_cast<const char*>(w) + n0 / kBlock * panel_stride; };
  amx_gemm<T, U8S8Dot, int32_t[kBlock][2][Q::kLanes]>(
      m, nc, quads, kInt8Reach,
      [&](size_t i, size_t rows, uint8_t* a_tiles) { copy_block(a + i * a_stride, a_stride, rows, quads, a_tiles); },
      [=](size_t n0) { return panel_at(n0) + 8 * kBlock; },  // past the int32 biases and float scales
      [=](size_t i, size_t rows, size_t n0, size_t nn, auto& sums) {
        // Locals, read once per block, as in the bf16 epilogues: the requantization and the
        // int32 biases (the panel's first row).
        const char* panel = panel_at(n0);
        const mbv2_qu8_requant requant = *rq;
        const __m512i bias[2] = {Q::load_i32(panel), Q::load_i32(panel + 4 * Q::kLanes)};
        for_live_rows(sums, rows, [&](auto& part, size_t r) {
          for (size_t v = 0; v < 2; v++) Q::store_i32(part[0][v], _mm512_add_epi32(Q::load_i32(part[0][v]), bias[v]));
          requantize_rows<Q, kBlock>(part, panel, requant, i + r, n0, nn, c, c_stride);
        });
      },
      [&](size_t n0) {
        mbv2_qu8_requant part = *rq;  // the residual's columns as the call numbers them
        if (part.residual) part.residual += n0;
        mbv2_qu8_gemm_ukernel_14x32c4__avx512(m, nc - n0, kc, a, a_stride, panel_at(n0), panel_stride, &part,
                                              c + n0, c_stride);
      });
}
#endif

}  // namespace
}  // namespace mbv2::x86
