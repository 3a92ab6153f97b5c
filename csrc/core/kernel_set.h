// The config layer: which microkernel serves each op for one ISA.
//
// Adding an ISA = its kernel files, its registry lines, and one entry in
// isa_supported() (kernel_set.cc) that asks the CPU.
#pragma once

#include <string>
#include <vector>

#include "ukernels/ukernels.h"

namespace mbv2 {

template <class Fn>
struct Ukernel {
  Fn* fn = nullptr;
  const char* name = nullptr;
  size_t nr = 0;  // panel width of the packed weights this kernel reads
  size_t kr = 1;  // the int8 GEMM's k group (ukernels.h)
};

struct KernelSet {
  std::string isa;
  // expand, project and head are bf16 kernels (registry-bf16.inc): their
  // weights are packed in bf16 pairs (core/packing.h).
  bool bf16 = false;
  // Rows the expand kernel computes at once, whatever m is: a GEMM of fewer
  // pays for them all. AMX: 32-row blocks (ukernels/x86-amx.h), where a 7- or
  // 14-pixel row used a fraction of the tiles' work; the others work in row
  // tiles of a few rows.
  size_t expand_block_rows = 1;
  // Output rows the depthwise kernel computes in one pass, its input rows
  // loaded once for all of them (ukernels/x86-dwconv.h, dw_rows): 2 on
  // AVX-512. The wide-row blocks take tiles of as many rows (core/tiling.h).
  size_t dwconv_rows = 1;
  Ukernel<mbv2_expand_ukernel_fn> expand;
  Ukernel<mbv2_dwconv3x3s1_ukernel_fn> dwconv3x3s1;
  Ukernel<mbv2_dwconv3x3s2_ukernel_fn> dwconv3x3s2;
  Ukernel<mbv2_project_ukernel_fn> project;
  Ukernel<mbv2_stem_ukernel_fn> stem;
  Ukernel<mbv2_head_ukernel_fn> head;
  Ukernel<mbv2_load_ukernel_fn> load;  // an NCHW image row into the stem's padded NHWC row

  const Ukernel<mbv2_dwconv3x3s1_ukernel_fn>& dwconv(size_t stride) const {
    return stride == 1 ? dwconv3x3s1 : dwconv3x3s2;
  }
};

// The int8 kernels of one ISA (ukernels/registry-int8.inc). Its ISA names are
// the float ones' where they share the registers, but may need more of the
// CPU: int8 "avx512" needs AVX-512 VNNI and BW.
struct QKernelSet {
  std::string isa;
  Ukernel<mbv2_qu8_gemm_ukernel_fn> gemm;
  Ukernel<mbv2_qu8_dwconv3x3s1_ukernel_fn> dwconv3x3s1;
  Ukernel<mbv2_qu8_dwconv3x3s2_ukernel_fn> dwconv3x3s2;
  Ukernel<mbv2_qu8_quantize_ukernel_fn> quantize;  // the float32 stem's output to block 0's uint8 input
  size_t gemm_block_rows = 1;  // as KernelSet::expand_block_rows: 32 on AMX

  const Ukernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& dwconv(size_t stride) const {
    return stride == 1 ? dwconv3x3s1 : dwconv3x3s2;
  }
};

struct UkernelInfo {
  const char* isa;
  const char* op;
  const char* name;
  size_t nr;
};

// ISAs this CPU can run, slowest (the reference) first.
std::vector<std::string> available_isas();

// The kernels of `isa`; "auto" picks the fastest available. Throws Error
// kUnsupportedIsa for an unknown ISA or one this CPU lacks.
KernelSet select_kernels(const std::string& isa);

// The int8 kernels of `isa` ("auto": the fastest int8 ISA available); the
// same errors as select_kernels, naming what int8 needs of the CPU.
QKernelSet select_qkernels(const std::string& isa);
// ISAs this CPU can run int8 on, the reference first.
std::vector<std::string> available_int8_isas();

// The float32 ISA whose kernels a bf16 or int8 ISA takes for what it has no
// kernels of its own (the stem, the depthwise for bf16, the classifier):
// "avxvnni" -> "avx2", "amx" -> "avx512", "neondot" -> "neon", others as named.
std::string float_isa_for(const std::string& isa);

// The bf16 kernels of `isa` ("auto": the fastest bf16 ISA available): the
// bf16 GEMMs with the float32 ISA's depthwise and stem kernels. The same
// errors as select_kernels, naming what bf16 needs of the CPU; "auto" on a
// CPU without bf16 instructions is kUnsupportedIsa too, since the scalar
// twin is a reference, not a fallback.
KernelSet select_bf16_kernels(const std::string& isa);
// ISAs this CPU can run bf16 on, the reference first.
std::vector<std::string> available_bf16_isas();

// Every registry line, float, int8 (op "qgemm", "qdwconv3x3s1", ...) and
// bf16 ("bf16expand", ...), for tests and benchmarks.
std::vector<UkernelInfo> list_ukernels();

}  // namespace mbv2
