#include "core/kernel_set.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace mbv2 {
namespace {

// Known ISAs in order of preference, worst first; "auto" takes the last one the
// CPU supports.
const char* const kIsas[] = {"ref"};

bool isa_supported(const std::string& isa) { return isa == "ref"; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> isas;
  for (const char* isa : kIsas) {
    if (isa_supported(isa)) isas.emplace_back(isa);
  }
  return isas;
}

KernelSet select_kernels(const std::string& requested) {
  const auto available = available_isas();
  const std::string isa = requested == "auto" ? available.back() : requested;
  if (std::find(available.begin(), available.end(), isa) == available.end()) {
    const bool known = std::find(std::begin(kIsas), std::end(kIsas), isa) != std::end(kIsas);
    throw std::invalid_argument("isa '" + requested + "' is " + (known ? "not supported by this CPU" : "unknown") +
                                "; available: auto, " + join(available));
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
    if (!present) throw std::logic_error("registry.inc lists no '" + std::string(op) + "' kernel for ISA " + isa);
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
