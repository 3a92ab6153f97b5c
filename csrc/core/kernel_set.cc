#include "core/kernel_set.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
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
};

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
  return f;
}
#endif

bool isa_supported(const std::string& isa) {
  if (isa == "ref") return true;
#if defined(__x86_64__) || defined(_M_X64)
  static const X86Features x86 = detect_x86();
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

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> isas;
  for (const IsaInfo& isa : kIsas) {
    if (isa_supported(isa.name)) isas.emplace_back(isa.name);
  }
  return isas;
}

KernelSet select_kernels(const std::string& requested) {
  const auto available = available_isas();
  const std::string isa = requested == "auto" ? available.back() : requested;
  if (std::find(available.begin(), available.end(), isa) == available.end()) {
    const auto known = std::find_if(std::begin(kIsas), std::end(kIsas), [&](const IsaInfo& i) { return isa == i.name; });
    const std::string why = known == std::end(kIsas) ? "unknown"
                                                     : std::string("not supported by this CPU (it needs ") + known->needs + ")";
    throw Error(Status::kUnsupportedIsa,
                "isa '" + requested + "' is " + why + "; available: auto, " + join(available));
  }
  KernelSet ks;
  ks.isa = isa;
#define MBV2_UKERNEL(isa_, op, name, nr_) \
  if (isa == #isa_) ks.op = {&name, #name, nr_};
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL
  const std::pair<const char*, bool> slots[] = {
      {"expand", ks.expand.fn != nullptr}, {"dwconv3x3s1", ks.dwconv3x3s1.fn != nullptr},
      {"dwconv3x3s2", ks.dwconv3x3s2.fn != nullptr}, {"project", ks.project.fn != nullptr},
      {"stem", ks.stem.fn != nullptr}, {"head", ks.head.fn != nullptr}};
  for (const auto& [op, present] : slots) {
    if (!present) {
      throw Error(Status::kInternal, "registry.inc lists no '" + std::string(op) + "' kernel for ISA " + isa);
    }
  }
  return ks;
}

std::vector<UkernelInfo> list_ukernels() {
  return {
#define MBV2_UKERNEL(isa, op, name, nr) {#isa, #op, #name, nr},
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL
  };
}

}  // namespace mbv2
