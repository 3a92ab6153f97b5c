#include "core/kernel_set.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/status.h"

namespace mbv2 {
namespace {

// Known ISAs in order of preference, worst first; "auto" takes the last one the
// CPU supports. Each names what it needs, for the error when it is forced.
struct IsaInfo {
  const char* name;
  const char* needs;
};
const IsaInfo kIsas[] = {{"ref", "nothing"},
                         {"avx2", "an x86-64 CPU with AVX2 and FMA, and an OS that saves YMM state"},
                         {"avx512", "an x86-64 CPU with AVX-512F, and an OS that saves ZMM state"},
                         {"neon", "an aarch64 CPU"}};

#if defined(__x86_64__) || defined(_M_X64)
// CPUID says what the core implements; XCR0 (read with xgetbv) says which
// register state the OS saves on a context switch. Both must agree before a
// YMM or ZMM register may be touched.
struct X86Features {
  bool avx2 = false, avx512 = false;
  bool avx512_vnni = false;  // with AVX-512BW: the int8 "avx512" kernels
  bool avx_vnni = false;     // VEX-encoded VNNI on YMM (Alder Lake, Zen 5): int8 "avxvnni"
  bool avx512_bf16 = false;  // with AVX-512BW and VL: the bf16 "avx512" kernels
  // What "amx" needs besides avx512_bf16 (bf16) or avx512_vnni (int8), one by
  // one, so that a refusal can say which is missing.
  struct Amx {
    bool tile = false, bf16 = false, int8 = false;  // CPUID.7.0:EDX bits 24, 22, 25
    bool state = false;                             // XCR0 bits 17, 18: the OS saves XTILECFG and XTILEDATA
    bool granted = false;                           // Linux granted XTILEDATA (asked only where the rest is there)
  } amx;
};

// Linux hands out the 8 KB of tile data (XFEATURE_XTILEDATA, 18) only to a
// process that asks (ARCH_REQ_XCOMP_PERM, 0x1023); a tile instruction before
// that faults. The grant is for the whole process and is asked for once.
bool os_grants_tiles() {
#if defined(__linux__)
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
  return false;
#endif
}

X86Features detect_x86() {
  X86Features f;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & bit_OSXSAVE, avx = ecx & bit_AVX, fma = ecx & bit_FMA;
  if (!osxsave || !avx) return f;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6) == 0x6;             // SSE + AVX
  const bool zmm_state = ymm_state && (xcr0_lo & 0xe0) == 0xe0;  // opmask, ZMM0-15 upper halves, ZMM16-31
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  f.avx2 = ymm_state && fma && (ebx & bit_AVX2);
  f.avx512 = zmm_state && fma && (ebx & bit_AVX512F);
  const bool bw_vl = (ebx & bit_AVX512BW) && (ebx & bit_AVX512VL);
  f.avx512_vnni = f.avx512 && bw_vl && (ecx & bit_AVX512VNNI);
  f.amx.tile = edx & (1u << 24);
  f.amx.bf16 = edx & (1u << 22);
  f.amx.int8 = edx & (1u << 25);
  f.amx.state = (xcr0_lo & (3u << 17)) == (3u << 17);
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avx_vnni = f.avx2 && (eax & (1u << 4));
    f.avx512_bf16 = f.avx512 && bw_vl && (eax & (1u << 5));
  }
  const bool bf16_ready = f.avx512_bf16 && f.amx.bf16, int8_ready = f.avx512_vnni && f.amx.int8;
  f.amx.granted = f.amx.tile && f.amx.state && (bf16_ready || int8_ready) && os_grants_tiles();
  return f;
}

// Detected once per process: the tile grant is a system call.
const X86Features& x86_features() {
  static const X86Features features = detect_x86();
  return features;
}
#endif

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// What of bf16 (or int8) "amx" this CPU and OS lack, in words; empty if none.
std::string amx_lacking([[maybe_unused]] bool bf16) {
  std::vector<std::string> lacking;
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features& x86 = x86_features();
  if (!x86.amx.tile) lacking.emplace_back("AMX-TILE");
  if (!(bf16 ? x86.amx.bf16 : x86.amx.int8)) lacking.emplace_back(bf16 ? "AMX-BF16" : "AMX-INT8");
  if (!(bf16 ? x86.avx512_bf16 : x86.avx512_vnni)) lacking.emplace_back(bf16 ? "AVX512_BF16" : "AVX-512 VNNI");
  if (!x86.amx.state) lacking.emplace_back("the OS's tile state (XCR0 bits 17, 18)");
  if (lacking.empty() && !x86.amx.granted) {
    lacking.emplace_back("the OS's grant of the tiles (arch_prctl ARCH_REQ_XCOMP_PERM refused)");
  }
#else
  lacking.emplace_back("an x86-64 CPU");
#endif
  return join(lacking);
}

// The int8 ISAs, worst first, as kIsas; an ISA counts only once its kernels
// are in registry-int8.inc.
const IsaInfo kInt8Isas[] = {
    {"ref", "nothing"},
    {"avx2", "an x86-64 CPU with AVX2 and FMA, and an OS that saves YMM state"},
    {"avxvnni", "an x86-64 CPU with AVX2, FMA and AVX-VNNI"},
    {"avx512", "an x86-64 CPU with AVX-512F, BW, VL and VNNI, and an OS that saves ZMM state"},
    {"amx", "an x86-64 CPU with AMX-TILE, AMX-INT8 and AVX-512F, BW, VL and VNNI, and an OS that saves "
            "ZMM and tile state (XCR0 bits 17, 18) and grants the tiles (Linux: arch_prctl ARCH_REQ_XCOMP_PERM)"},
    {"neon", "an aarch64 CPU"},
    {"neondot", "an aarch64 CPU with the dot-product instructions (ARMv8.2 DotProd)"}};

bool int8_registered(const std::string& isa) {
  bool found = false;
#define MBV2_QUKERNEL(isa_, op, name, nr, kr) found = found || isa == #isa_;
#include "ukernels/registry-int8.inc"
#undef MBV2_QUKERNEL
  return found;
}

bool isa_supported(const std::string& isa) {
  if (isa == "ref") return true;
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features& x86 = x86_features();
  if (isa == "avx2") return x86.avx2;
  if (isa == "avx512") return x86.avx512;
#endif
#if defined(__aarch64__) && defined(__linux__)
  // Advanced SIMD is architectural on AArch64, yet Linux can still report it
  // absent (a trimmed CPU model under a hypervisor): ask rather than assume.
  if (isa == "neon") return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#elif defined(__aarch64__)
  if (isa == "neon") return true;  // no HWCAP outside Linux; architectural anyway
#endif
  return false;
}

// What int8 needs beyond the float ISA of the same name (AVX-512 VNNI, BW and
// VL for "avx512"), and the int8-only ISAs; ref, avx2 and neon need what
// their float kernels need.
bool int8_cpu_supports(const std::string& isa) {
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features& x86 = x86_features();
  if (isa == "avxvnni") return x86.avx_vnni;
  if (isa == "avx512") return x86.avx512_vnni;
  if (isa == "amx") return amx_lacking(false).empty();
#endif
#if defined(__aarch64__) && defined(__linux__)
  if (isa == "neondot") return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
  return isa_supported(isa);
}

// The bf16 ISAs, worst first, as kIsas.
const IsaInfo kBf16Isas[] = {
    {"ref", "nothing"},
    {"avx512", "an x86-64 CPU with AVX-512F, BW, VL and AVX512_BF16, and an OS that saves ZMM state"},
    {"amx", "an x86-64 CPU with AMX-TILE, AMX-BF16 and AVX-512F, BW, VL and AVX512_BF16, and an OS that saves "
            "ZMM and tile state (XCR0 bits 17, 18) and grants the tiles (Linux: arch_prctl ARCH_REQ_XCOMP_PERM)"}};

bool bf16_cpu_supports(const std::string& isa) {
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features& x86 = x86_features();
  if (isa == "avx512") return x86.avx512_bf16;
  if (isa == "amx") return amx_lacking(true).empty();
#endif
  return isa == "ref";
}

// `requested` resolved against `available` ("auto": the last), or Error
// kUnsupportedIsa saying why, from `known`, and what of it the CPU `lacks`
// where that is known.
template <size_t N>
std::string resolve_isa(const std::string& requested, const std::vector<std::string>& available,
                        const IsaInfo (&known)[N], const char* what, const std::string& lacks = "") {
  const std::string isa = requested == "auto" ? available.back() : requested;
  if (std::find(available.begin(), available.end(), isa) != available.end()) return isa;
  const auto info = std::find_if(std::begin(known), std::end(known), [&](const IsaInfo& i) { return isa == i.name; });
  const std::string why = info == std::end(known)
                              ? "unknown"
                              : std::string("not supported by this CPU (") + what + " needs " + info->needs +
                                    (lacks.empty() ? "" : "; this one lacks " + lacks) + ")";
  throw Error(Status::kUnsupportedIsa, "isa '" + requested + "' is " + why + "; available: auto, " + join(available));
}

}  // namespace

std::string float_isa_for(const std::string& isa) {
  if (isa == "avxvnni") return "avx2";
  if (isa == "amx") return "avx512";  // tiles only for the GEMMs
  if (isa == "neondot") return "neon";
  return isa;
}

// The names in an ISA table that `runs` accepts, in the table's order.
template <size_t N, class Runs>
std::vector<std::string> isas_where(const IsaInfo (&table)[N], Runs runs) {
  std::vector<std::string> isas;
  for (const IsaInfo& isa : table) {
    if (runs(isa.name)) isas.emplace_back(isa.name);
  }
  return isas;
}

std::vector<std::string> available_isas() { return isas_where(kIsas, isa_supported); }

KernelSet select_kernels(const std::string& requested) {
  if (float_isa_for(requested) != requested) {  // an int8 or bf16 ISA: say so rather than "unknown"
    throw Error(Status::kUnsupportedIsa, "isa '" + requested + "' has no float32 kernels (it names int8 and bf16 ones; "
                                             "their float32 layers run on '" + float_isa_for(requested) +
                                             "'); float32 runs on: auto, " + join(available_isas()));
  }
  const std::string isa = resolve_isa(requested, available_isas(), kIsas, "it");
  KernelSet ks;
  ks.isa = isa;
#define MBV2_UKERNEL(isa_, op, name, nr_) \
  if (isa == #isa_) ks.op = {&name, #name, nr_};
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL
  const std::pair<const char*, bool> slots[] = {
      {"expand", ks.expand.fn != nullptr}, {"dwconv3x3s1", ks.dwconv3x3s1.fn != nullptr},
      {"dwconv3x3s2", ks.dwconv3x3s2.fn != nullptr}, {"project", ks.project.fn != nullptr},
      {"stem", ks.stem.fn != nullptr}, {"head", ks.head.fn != nullptr}, {"load", ks.load.fn != nullptr}};
  for (const auto& [op, present] : slots) {
    if (!present) {
      throw Error(Status::kInternal, "registry.inc lists no '" + std::string(op) + "' kernel for ISA " + isa);
    }
  }
  if (isa == "avx512") ks.dwconv_rows = 2;
  return ks;
}

std::vector<std::string> available_int8_isas() {
  return isas_where(kInt8Isas, [](const std::string& isa) { return int8_cpu_supports(isa) && int8_registered(isa); });
}

QKernelSet select_qkernels(const std::string& requested) {
  const std::string isa = resolve_isa(requested, available_int8_isas(), kInt8Isas, "int8",
                                      requested == "amx" ? amx_lacking(false) : "");
  QKernelSet ks;
  ks.isa = isa;
#define MBV2_QUKERNEL(isa_, op, name, nr_, kr_) \
  if (isa == #isa_) ks.op = {&name, #name, nr_, kr_};
#include "ukernels/registry-int8.inc"
#undef MBV2_QUKERNEL
  if (!ks.gemm.fn || !ks.dwconv3x3s1.fn || !ks.dwconv3x3s2.fn || !ks.quantize.fn) {
    throw Error(Status::kInternal, "registry-int8.inc lacks a kernel for ISA " + isa);
  }
  if (isa == "amx") ks.gemm_block_rows = 32;
  return ks;
}

std::vector<std::string> available_bf16_isas() { return isas_where(kBf16Isas, bf16_cpu_supports); }

KernelSet select_bf16_kernels(const std::string& requested) {
  const std::vector<std::string> available = available_bf16_isas();
  const bool known = std::any_of(std::begin(kBf16Isas), std::end(kBf16Isas),
                                 [&](const IsaInfo& i) { return requested == i.name; });
  if (requested != "auto" && !known) {
    throw Error(Status::kUnsupportedIsa, "isa '" + requested + "' has no bf16 kernels: bf16 runs on 'amx' (" +
                                             kBf16Isas[2].needs + "), 'avx512' (" + kBf16Isas[1].needs +
                                             ") or 'ref'; available here: auto, " + join(available));
  }
  if (requested == "auto" && available.size() == 1) {
    throw Error(Status::kUnsupportedIsa, std::string("bf16 needs ") + kBf16Isas[1].needs +
                                             "; this CPU has none (isa 'ref' runs the scalar reference kernels)");
  }
  const std::string isa =
      resolve_isa(requested, available, kBf16Isas, "bf16", requested == "amx" ? amx_lacking(true) : "");
  KernelSet ks = select_kernels(float_isa_for(isa));
  ks.isa = isa;
  ks.bf16 = true;
#define MBV2_BF16KERNEL(isa_, op, name, nr_) \
  if (isa == #isa_) ks.op = {&name, #name, nr_};
#include "ukernels/registry-bf16.inc"
#undef MBV2_BF16KERNEL
  if (isa == "amx") ks.expand_block_rows = 32;
  return ks;
}

std::vector<UkernelInfo> list_ukernels() {
  return {
#define MBV2_UKERNEL(isa, op, name, nr) {#isa, #op, #name, nr},
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL
#define MBV2_QUKERNEL(isa, op, name, nr, kr) {#isa, "q" #op, #name, nr},
#include "ukernels/registry-int8.inc"
#undef MBV2_QUKERNEL
#define MBV2_BF16KERNEL(isa, op, name, nr) {#isa, "bf16" #op, #name, nr},
#include "ukernels/registry-bf16.inc"
#undef MBV2_BF16KERNEL
  };
}

}  // namespace mbv2
