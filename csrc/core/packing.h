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
  bool bf16 = false;        // weights in bf16 pairs of k (ukernels.h, bf16)

  // Weight row k (even, for bf16) of the first panel, past any biases.
  const float* row(size_t k) const { return panels.data() + (bf16 ? k / 2 : k) * nr; }
};

// The most inputs a bf16 GEMM takes (ukernels.h, bf16).
constexpr size_t kMaxBf16Inputs = 16384;

// Looks up `<prefix>weight` (shape weight_shape, output channels first) and
// `<prefix>bias`, checks both shapes and packs the weight as an
// (n, product of the other dims) matrix into panels of nr output channels,
// led by their biases when bias_in_panels, in bf16 pairs when bf16 (Error
// kInvalidArgument past kMaxBf16Inputs).
PackedConv pack_conv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                     size_t nr, bool bias_in_panels, bool bf16 = false);

struct PackedBlock {
  BlockSpec spec;
  PackedConv expand;  // empty when spec.t == 1
  PackedConv depthwise;
  PackedConv project;  // no bias in panels: its first chunk starts from bias (+ residual)
};

// `<prefix>expand.weight` and friends, named as in docs/format.md; the 1x1
// convs in bf16 pairs for a bf16 KernelSet.
PackedBlock pack_block(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, const KernelSet& ks);

// ---- int8 ----

// An int8 conv in the panels the int8 kernels read (ukernels/ukernels.h): the
// int32 biases and float requantization scales are derived here, at load, from
// the file's int8 weights, per-channel weight scales, float bias and the
// (scale, zero point) of its input and output, as docs/format.md (version 3)
// defines, so every ISA computes from the same integers.
struct PackedQConv {
  AlignedBuffer panels;     // bytes, held in a float buffer for its alignment
  size_t n = 0;             // output channels
  size_t k = 0;             // inputs per output channel (Cin, or 9 taps)
  size_t nr = 0, kr = 1;    // panel width and k group
  size_t panel_stride = 0;  // bytes from one panel to the next, a multiple of 64
  mbv2_qu8_requant requant{};  // the output's clamp and zero point; no residual
  const char* panel(size_t p) const { return reinterpret_cast<const char*>(panels.data()) + p * panel_stride; }
};

// Packs `<prefix>weight` (int8, shape weight_shape), `<prefix>weight_scale`
// and `<prefix>bias`, for an input quantized as `in` and an output as `out`,
// followed by ReLU6 when relu6. A GEMM conv's panels have k groups of kr; a
// depthwise one (weight_shape (H, 3, 3)) has nine taps of nr. Error
// kInvalidFormat naming the member when an int32 bias would exceed 2^30.
PackedQConv pack_qconv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                       QuantParams in, QuantParams out, bool relu6, size_t nr, size_t kr);

// The requantization of an output quantized as `out`: ReLU6 is the clamp
// [0, min(255, rint(6 / scale))] of a zero-point-0 output; otherwise all of uint8.
mbv2_qu8_requant requant_for(QuantParams out, bool relu6);

struct PackedQBlock {
  BlockSpec spec;
  PackedQConv expand;  // empty when spec.t == 1
  PackedQConv depthwise;
  PackedQConv project;
  QuantParams in, out;  // the block's input and output tensors
};

PackedQBlock pack_qblock(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, size_t index,
                         const NetworkSpec& net, const QKernelSet& ks);

}  // namespace mbv2
