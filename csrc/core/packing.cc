#include "core/packing.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/status.h"
#include "ukernels/bf16-common.h"

namespace mbv2 {
namespace {

const ArrayView& require(const ArrayMap& arrays, const std::string& name, bool int8 = false) {
  const auto it = arrays.find(name);
  if (it == arrays.end()) throw Error(Status::kInvalidFormat, "missing array '" + name + "'");
  if (int8 ? it->second.int8 == nullptr : it->second.data == nullptr) {
    throw Error(Status::kInvalidFormat, "array '" + name + "' must be " + (int8 ? "int8" : "float32"));
  }
  return it->second;
}

// The most an int8 conv's int32 bias may hold, so that adding its products
// (at most 255 x 127 x k, k <= 3840 at width 4) never overflows int32.
constexpr double kMaxQuantBias = 1 << 30;

}  // namespace

PackedConv pack_conv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                     size_t nr, bool bias_in_panels, bool bf16) {
  const ArrayView& weight = require(arrays, prefix + "weight");
  const ArrayView& bias = require(arrays, prefix + "bias");
  check_shape(prefix + "weight", weight, weight_shape);
  check_shape(prefix + "bias", bias, {weight_shape[0]});

  PackedConv conv;
  conv.n = weight_shape[0];
  conv.k = 1;
  for (size_t i = 1; i < weight_shape.size(); i++) conv.k *= weight_shape[i];
  conv.nr = nr;
  conv.bf16 = bf16;
  if (bf16 && conv.k > kMaxBf16Inputs) {
    throw Error(Status::kInvalidArgument, "'" + prefix + "weight' has " + std::to_string(conv.k) +
                                              " inputs per channel; bf16 takes at most " +
                                              std::to_string(kMaxBf16Inputs));
  }
  conv.bias.assign(bias.data, bias.data + conv.n);
  const size_t lead = bias_in_panels ? nr : 0, rows = bf16 ? (conv.k + 1) / 2 : conv.k;
  conv.panel_stride = lead + rows * nr;
  const size_t panels = (conv.n + nr - 1) / nr;
  conv.panels = AlignedBuffer(panels * conv.panel_stride);  // zeroed: padding channels stay 0
  for (size_t o = 0; o < conv.n; o++) {
    float* panel = conv.panels.data() + o / nr * conv.panel_stride;
    const size_t j = o % nr;
    if (bias_in_panels) panel[j] = bias.data[o];
    const float* w = weight.data + o * conv.k;
    for (size_t r = 0; r < rows; r++) {
      if (!bf16) {
        panel[lead + r * nr + j] = w[r];
        continue;
      }
      const uint32_t pair = bf16::pair(w[2 * r], 2 * r + 1 < conv.k ? w[2 * r + 1] : 0.0f);
      std::memcpy(panel + lead + r * nr + j, &pair, 4);
    }
  }
  return conv;
}

PackedBlock pack_block(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, const KernelSet& ks) {
  PackedBlock block;
  block.spec = spec;
  const size_t hidden = spec.hidden();
  if (spec.has_expand()) {
    block.expand = pack_conv(arrays, prefix + "expand.", {hidden, spec.cin}, ks.expand.nr, true, ks.bf16);
  }
  block.depthwise = pack_conv(arrays, prefix + "depthwise.", {hidden, 3, 3}, ks.dwconv(spec.stride).nr, true);
  block.project = pack_conv(arrays, prefix + "project.", {spec.cout, hidden}, ks.project.nr, false, ks.bf16);
  return block;
}

mbv2_qu8_requant requant_for(QuantParams out, bool relu6) {
  mbv2_qu8_requant rq{};
  rq.zero_point = out.zero_point;
  rq.lo = static_cast<float>(-out.zero_point);
  rq.hi = relu6 ? static_cast<float>(std::min(255.0, std::nearbyint(6.0 / out.scale)))
                : static_cast<float>(255 - out.zero_point);
  return rq;
}

PackedQConv pack_qconv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                       QuantParams in, QuantParams out, bool relu6, size_t nr, size_t kr) {
  const ArrayView& weight = require(arrays, prefix + "weight", true);
  const ArrayView& scale = require(arrays, prefix + "weight_scale");
  const ArrayView& bias = require(arrays, prefix + "bias");
  check_shape(prefix + "weight", weight, weight_shape);
  check_shape(prefix + "weight_scale", scale, {weight_shape[0]});
  check_shape(prefix + "bias", bias, {weight_shape[0]});
  const bool depthwise = weight_shape.size() == 3;

  PackedQConv conv;
  conv.n = weight_shape[0];
  conv.k = depthwise ? 9 : weight_shape[1];
  conv.nr = nr;
  conv.kr = depthwise ? 1 : kr;
  conv.requant = requant_for(out, relu6);
  const size_t groups = (conv.k + conv.kr - 1) / conv.kr;
  conv.panel_stride = (8 * nr + groups * nr * conv.kr + 63) / 64 * 64;
  const size_t panels = (conv.n + nr - 1) / nr;
  conv.panels = AlignedBuffer(panels * conv.panel_stride / sizeof(float));  // zeroed: padding stays 0
  for (size_t o = 0; o < conv.n; o++) {
    char* panel = const_cast<char*>(conv.panel(o / nr));
    const size_t j = o % nr;
    const int8_t* w = weight.int8 + o * conv.k;
    int64_t sum = 0;
    for (size_t k = 0; k < conv.k; k++) sum += w[k];
    // docs/format.md, version 3: the bias in units of the accumulator, with
    // the input's zero point folded in (sum_k (a - z) w = sum_k a w - z sum_k w).
    const double acc_scale = static_cast<double>(in.scale) * scale.data[o];
    const double bias_q = std::nearbyint(bias.data[o] / acc_scale);
    if (!(std::fabs(bias_q) <= kMaxQuantBias)) {
      throw Error(Status::kInvalidFormat, "array '" + prefix + "bias' channel " + std::to_string(o) +
                                              " is too large for its scales: " + std::to_string(bias.data[o]) +
                                              " / (input scale x weight scale) exceeds 2^30");
    }
    const int32_t b = static_cast<int32_t>(bias_q - static_cast<double>(in.zero_point) * static_cast<double>(sum));
    const float s = static_cast<float>(acc_scale / out.scale);
    std::memcpy(panel + 4 * j, &b, 4);
    std::memcpy(panel + 4 * nr + 4 * j, &s, 4);
    int8_t* wq = reinterpret_cast<int8_t*>(panel + 8 * nr);
    for (size_t k = 0; k < conv.k; k++) wq[(k / conv.kr * nr + j) * conv.kr + k % conv.kr] = w[k];
  }
  return conv;
}

PackedQBlock pack_qblock(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, size_t index,
                         const NetworkSpec& net, const QKernelSet& ks) {
  const QuantIndex q = quant_index(net);
  const QuantParams in = net.quant[index == 0 ? q.stem : q.out[index - 1]];
  const QuantParams dw_in = spec.has_expand() ? net.quant[q.expand[index]] : in;
  PackedQBlock block;
  block.spec = spec;
  block.in = in;
  block.out = net.quant[q.out[index]];
  const size_t hidden = spec.hidden();
  if (spec.has_expand()) {
    block.expand = pack_qconv(arrays, prefix + "expand.", {hidden, spec.cin}, in, dw_in, true, ks.gemm.nr, ks.gemm.kr);
  }
  const QuantParams dw_out = net.quant[q.depthwise[index]];
  block.depthwise = pack_qconv(arrays, prefix + "depthwise.", {hidden, 3, 3}, dw_in, dw_out, true,
                               ks.dwconv(spec.stride).nr, 1);
  block.project = pack_qconv(arrays, prefix + "project.", {spec.cout, hidden}, dw_out, block.out, false, ks.gemm.nr,
                             ks.gemm.kr);
  if (spec.residual()) {
    block.project.requant.residual_zero_point = in.zero_point;
    block.project.requant.residual_scale = static_cast<float>(static_cast<double>(in.scale) / block.out.scale);
  }
  return block;
}

}  // namespace mbv2
