// The single-thread FMA peak of each x86 ISA (see core/fma_peak.h).
#include "core/fma_peak.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/kernel_set.h"

namespace mbv2 {

// acc[j] = acc[j] * m + a: 12 independent chains, one FMA per vector per
// iteration, so the loop overhead shares the ports with 12 FMAs. A macro, not
// a template, so each copy is compiled with its own target attribute.
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL(j) V acc##j = SET1(1.0f + (j) * 1e-3f);
#define STEP(j) acc##j = FMA(acc##j, m, a);
#define SUM(j) s = FMA(acc##j, m, s);
#define FMA_CHAINS_BODY                                                    \
  V m = SET1(0.999999f), a = SET1(1e-7f);                                  \
  CHAINS(DECL)                                                             \
  const auto t0 = std::chrono::steady_clock::now();                        \
  for (long i = 0; i < iters; i++) {                                       \
    CHAINS(STEP)                                                           \
    /* keeps the compiler from reassociating the chains or hoisting them */ \
    __asm__ volatile("" : "+x"(m), "+x"(a));                               \
  }                                                                        \
  const auto t1 = std::chrono::steady_clock::now();                        \
  V s = acc0;                                                              \
  CHAINS(SUM)                                                              \
  float out[sizeof(V) / sizeof(float)];                                    \
  __builtin_memcpy(out, &s, sizeof(V));                                    \
  *sink = out[0];                                                          \
  return std::chrono::duration<double>(t1 - t0).count();

__attribute__((target("avx2,fma"))) static double run_avx2(long iters, float* sink) {
  typedef __m256 V;
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
  FMA_CHAINS_BODY
#undef SET1
#undef FMA
}

__attribute__((target("avx512f"))) static double run_avx512(long iters, float* sink) {
  typedef __m512 V;
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
  FMA_CHAINS_BODY
#undef SET1
#undef FMA
}

// The int8 kernels' instruction, vpdpbusd (4 uint8 x int8 products per
// 32-bit lane added to it), in the same 12 chains.
__attribute__((target("avx512f,avx512vnni"))) static double run_avx512_vnni(long iters, float* sink) {
  typedef __m512i V;
#define SET1(v) _mm512_set1_epi32(static_cast<int>((v) * 1000))
#define FMA _mm512_dpbusd_epi32
  FMA_CHAINS_BODY
#undef SET1
#undef FMA
}

__attribute__((target("avx2,avxvnni"))) static double run_avx_vnni(long iters, float* sink) {
  typedef __m256i V;
#define SET1(v) _mm256_set1_epi32(static_cast<int>((v) * 1000))
#define FMA _mm256_dpbusd_avx_epi32
  FMA_CHAINS_BODY
#undef SET1
#undef FMA
}

// The bf16 kernels' instruction, vdpbf16ps (2 bf16 x bf16 products per
// 32-bit lane added to a float32 one), in the same 12 chains.
__attribute__((target("avx512f,avx512bf16"))) static double run_avx512_bf16(long iters, float* sink) {
  typedef __m512 V;
#define SET1 _mm512_set1_ps
#define FMA(acc, m, a) _mm512_dpbf16_ps(acc, (__m512bh)(m), (__m512bh)(a))
  FMA_CHAINS_BODY
#undef SET1
#undef FMA
}

// The AMX kernels' instructions on the tile shape they use (x86-amx.h): four
// 16 x 16 sum tiles, each TDPBUSD (16 x 16 x 64 int8 multiply-adds) or
// TDPBF16PS (16 x 16 x 32 bf16 ones) adding A tile 4 or 5 times B tile 6 or 7
// to one of them, 12 per iteration, so the four chains cover the
// instruction's latency; the operands stay in the tiles. The tile state must
// have been granted (available_*_isas() asks the OS).
struct alignas(64) PeakTileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

#define AMX_PEAK_BODY(DOT)                                                                                   \
  static const PeakTileConfig config;                                                                        \
  alignas(64) uint8_t operand[16 * 64];                                                                      \
  __builtin_memset(operand, 0x3c, sizeof operand); /* bf16 1.45, int8 60: no zeros to skip */                \
  alignas(64) float sums[16 * 16];                                                                           \
  __asm__ volatile("ldtilecfg %0" ::"m"(config));                                                            \
  __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);            \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm4\n\ttileloadd (%0,%1,1), %%tmm5\n\t"                          \
                   "tileloadd (%0,%1,1), %%tmm6\n\ttileloadd (%0,%1,1), %%tmm7" ::"r"(operand), "r"(64L));      \
  const auto t0 = std::chrono::steady_clock::now();                                                          \
  for (long i = 0; i < iters; i++) {                                                                         \
    __asm__ volatile(DOT " %%tmm6, %%tmm4, %%tmm0\n\t" DOT " %%tmm7, %%tmm4, %%tmm1\n\t"                     \
                     DOT " %%tmm6, %%tmm5, %%tmm2\n\t" DOT " %%tmm7, %%tmm5, %%tmm3\n\t"                     \
                     DOT " %%tmm6, %%tmm4, %%tmm0\n\t" DOT " %%tmm7, %%tmm4, %%tmm1\n\t"                     \
                     DOT " %%tmm6, %%tmm5, %%tmm2\n\t" DOT " %%tmm7, %%tmm5, %%tmm3\n\t"                     \
                     DOT " %%tmm6, %%tmm4, %%tmm0\n\t" DOT " %%tmm7, %%tmm4, %%tmm1\n\t"                     \
                     DOT " %%tmm6, %%tmm5, %%tmm2\n\t" DOT " %%tmm7, %%tmm5, %%tmm3" ::);                      \
  }                                                                                                          \
  const auto t1 = std::chrono::steady_clock::now();                                                          \
  __asm__ volatile("tilestored %%tmm0, (%0,%1,1)\n\ttilerelease" ::"r"(sums), "r"(64L) : "memory");           \
  *sink = sums[0];                                                                                           \
  return std::chrono::duration<double>(t1 - t0).count();

static double run_amx_int8(long iters, float* sink) { AMX_PEAK_BODY("tdpbusd") }
static double run_amx_bf16(long iters, float* sink) { AMX_PEAK_BODY("tdpbf16ps") }

namespace {

// Billions of (2 x lanes x ops_per_lane) per second over the best of `trials`
// runs of `iters` iterations, after one warm-up run.
double best_rate(double (*fn)(long, float*), double ops_per_instruction, long iters, int trials) {
  float sink;
  fn(iters, &sink);  // warm-up: wakes the vector unit and settles the clock
  double best = 1e30;
  for (int t = 0; t < trials; t++) {
    const double s = fn(iters, &sink);
    if (s < best) best = s;
  }
  return 12.0 * ops_per_instruction * iters / best / 1e9;
}

}  // namespace

// GFLOP/s (2 flops per lane per FMA); -1 when the CPU lacks the ISA.
double fma_peak_gflops(const std::string& isa, long iters, int trials) {
  __builtin_cpu_init();
  if (isa == "avx2") {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
    return best_rate(run_avx2, 2 * 8, iters, trials);
  }
  if (isa == "avx512") {
    if (!__builtin_cpu_supports("avx512f")) return -1;
    return best_rate(run_avx512, 2 * 16, iters, trials);
  }
  return -1;
}

// GOP/s of int8 multiply-adds (2 ops each, 4 per 32-bit lane per vpdpbusd,
// 16 x 16 x 64 per TDPBUSD);
// -1 when the CPU lacks the instruction. Asks the int8 dispatch (cpuid and
// the OS's register state) rather than __builtin_cpu_supports, which older
// compilers (clang 14) do not know "avxvnni" in.
double int8_peak_gops(const std::string& isa, long iters, int trials) {
  const auto isas = available_int8_isas();
  if (std::find(isas.begin(), isas.end(), isa) == isas.end()) return -1;
  if (isa == "avx512") return best_rate(run_avx512_vnni, 2 * 4 * 16, iters, trials);
  if (isa == "avxvnni") return best_rate(run_avx_vnni, 2 * 4 * 8, iters, trials);
  if (isa == "amx") return best_rate(run_amx_int8, 2 * 16 * 16 * 64, iters / 16, trials);
  return -1;
}

// GFLOP/s of bf16 multiply-adds (2 flops each, 2 per 32-bit lane per
// vdpbf16ps, 16 x 16 x 32 per TDPBF16PS); -1 when the CPU lacks it. Asks the
// bf16 dispatch, as int8_peak_gops.
double bf16_peak_gflops(const std::string& isa, long iters, int trials) {
  const auto isas = available_bf16_isas();
  if (std::find(isas.begin(), isas.end(), isa) == isas.end()) return -1;
  if (isa == "avx512") return best_rate(run_avx512_bf16, 2 * 2 * 16, iters, trials);
  if (isa == "amx") return best_rate(run_amx_bf16, 2 * 16 * 16 * 32, iters / 16, trials);
  return -1;
}

}  // namespace mbv2

#else

namespace mbv2 {
double fma_peak_gflops(const std::string&, long, int) { return -1; }
double int8_peak_gops(const std::string&, long, int) { return -1; }
double bf16_peak_gflops(const std::string&, long, int) { return -1; }
}  // namespace mbv2

#endif
