// The operator layer's first job: repack the file's (out, in...) arrays once, at
// load, into the panels the selected microkernels read (see ukernels/ukernels.h).
#pragma once

#include <string>
#include <vector>

#include "core/common.h"
#include "core/kernel_set.h"

namespace mbv2 {

// One conv or linear layer in panel layout.
struct PackedConv {
  AlignedBuffer panels;
  std::vector<float> bias;  // also kept flat, for kernels that take it apart (projection)
  size_t n = 0;             // output channels
  size_t k = 0;             // inputs per output channel (Cin, 9 taps, 27 or Cin)
  size_t nr = 0;            // panel width
  size_t panel_stride = 0;  // floats from one panel to the next
};

// Looks up `<prefix>weight` (shape weight_shape, output channels first) and
// `<prefix>bias`, checks both shapes and packs the weight as an
// (n, product of the other dims) matrix into panels of nr output channels,
// led by their biases when bias_in_panels.
PackedConv pack_conv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                     size_t nr, bool bias_in_panels);

struct PackedBlock {
  BlockSpec spec;
  PackedConv expand;  // empty when spec.t == 1
  PackedConv depthwise;
  PackedConv project;  // no bias in panels: its first chunk starts from bias (+ residual)
};

// `<prefix>expand.weight` and friends, named as in docs/format.md.
PackedBlock pack_block(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, const KernelSet& ks);

}  // namespace mbv2
