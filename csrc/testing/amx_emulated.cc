// Compiled without ISA flags (amx_emulated.h): only the kernels' addresses here.
#include "testing/amx_emulated.h"

namespace mbv2::testing {

std::vector<UkernelInfo> amx_emulated_ukernels() {
  return {{"amx-emulated", "bf16expand", "mbv2_bf16_expand_relu6_ukernel_32x32__amx_emulated", 32},
          {"amx-emulated", "bf16project", "mbv2_bf16_project_acc_ukernel_32x32__amx_emulated", 32},
          {"amx-emulated", "bf16head", "mbv2_bf16_head_relu6_rowsum_ukernel_32x32__amx_emulated", 32},
          {"amx-emulated", "qgemm", "mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated", 32}};
}

std::optional<std::pair<KernelSet, std::string>> amx_emulated_bf16(const std::string& name) {
  const auto set = [&](auto slot, auto fn, const char* fn_name, const char* op) {
    KernelSet ks = select_bf16_kernels("avx512");
    ks.*slot = {fn, fn_name, 32};
    return std::make_pair(ks, std::string(op));
  };
#define MBV2_EMULATED(slot, fn, op) \
  if (name == #fn) return set(&KernelSet::slot, &fn, #fn, op);
  MBV2_EMULATED(expand, mbv2_bf16_expand_relu6_ukernel_32x32__amx_emulated, "expand")
  MBV2_EMULATED(project, mbv2_bf16_project_acc_ukernel_32x32__amx_emulated, "project")
  MBV2_EMULATED(head, mbv2_bf16_head_relu6_rowsum_ukernel_32x32__amx_emulated, "head")
#undef MBV2_EMULATED
  return std::nullopt;
}

std::optional<QKernelSet> amx_emulated_int8(const std::string& name) {
  if (name != "mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated") return std::nullopt;
  QKernelSet ks = select_qkernels("avx512");
  ks.gemm = {&mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated, "mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated", 32, 4};
  return ks;
}

}  // namespace mbv2::testing
