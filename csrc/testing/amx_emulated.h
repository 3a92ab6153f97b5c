// The AMX kernels (ukernels/x86-amx.h) on EmulatedTiles, so that their
// blocking, ragged K, fallbacks and epilogues are tested on CPUs without AMX
// against the scalar twins: built into mbv2_engine._test_hooks only.
//
// Three translation units, because the module's static initialisers run at
// import on any x86-64 CPU: the kernels are defined in amx_emulated_bf16.cc
// (AVX-512 BF16 flags) and amx_emulated_qu8.cc (AVX-512 VNNI flags), the
// table and the lookups in amx_emulated.cc, compiled without ISA flags. A
// caller runs the bf16 ones only where bf16 "avx512" runs, the int8 one only
// where int8 "avx512" runs (their fallbacks and epilogues are those kernels).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/kernel_set.h"

extern "C" {
mbv2_expand_ukernel_fn mbv2_bf16_expand_relu6_ukernel_32x32__amx_emulated;
mbv2_project_ukernel_fn mbv2_bf16_project_acc_ukernel_32x32__amx_emulated;
mbv2_head_ukernel_fn mbv2_bf16_head_relu6_rowsum_ukernel_32x32__amx_emulated;
mbv2_qu8_gemm_ukernel_fn mbv2_qu8_gemm_ukernel_32x32c4__amx_emulated;
}

namespace mbv2::testing {

// The emulated kernels as registry lines of ISA "amx-emulated" (ops as
// list_ukernels names them: "bf16expand", ..., "qgemm").
std::vector<UkernelInfo> amx_emulated_ukernels();

// The bf16 "avx512" kernel set with the emulated kernel `name` in its op's
// slot, and the op ("expand", "project" or "head"); none if no such kernel.
std::optional<std::pair<KernelSet, std::string>> amx_emulated_bf16(const std::string& name);

// The int8 "avx512" kernel set with the emulated GEMM, if `name` names it.
std::optional<QKernelSet> amx_emulated_int8(const std::string& name);

}  // namespace mbv2::testing
