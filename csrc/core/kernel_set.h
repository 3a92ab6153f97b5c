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
};

struct KernelSet {
  std::string isa;
  Ukernel<mbv2_expand_ukernel_fn> expand;
  Ukernel<mbv2_dwconv3x3s1_ukernel_fn> dwconv3x3s1;
  Ukernel<mbv2_dwconv3x3s2_ukernel_fn> dwconv3x3s2;
  Ukernel<mbv2_project_ukernel_fn> project;
  Ukernel<mbv2_stem_ukernel_fn> stem;
  Ukernel<mbv2_head_ukernel_fn> head;

  const Ukernel<mbv2_dwconv3x3s1_ukernel_fn>& dwconv(size_t stride) const {
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

// Every registry line, for tests and benchmarks.
std::vector<UkernelInfo> list_ukernels();

}  // namespace mbv2
