#include "core/packing.h"

#include "core/status.h"

namespace mbv2 {
namespace {

const ArrayView& require(const ArrayMap& arrays, const std::string& name) {
  const auto it = arrays.find(name);
  if (it == arrays.end()) throw Error(Status::kInvalidFormat, "missing array '" + name + "'");
  return it->second;
}

}  // namespace

PackedConv pack_conv(const ArrayMap& arrays, const std::string& prefix, const std::vector<size_t>& weight_shape,
                     size_t nr, bool bias_in_panels) {
  const ArrayView& weight = require(arrays, prefix + "weight");
  const ArrayView& bias = require(arrays, prefix + "bias");
  check_shape(prefix + "weight", weight, weight_shape);
  check_shape(prefix + "bias", bias, {weight_shape[0]});

  PackedConv conv;
  conv.n = weight_shape[0];
  conv.k = 1;
  for (size_t i = 1; i < weight_shape.size(); i++) conv.k *= weight_shape[i];
  conv.nr = nr;
  conv.bias.assign(bias.data, bias.data + conv.n);
  const size_t lead = bias_in_panels ? nr : 0;
  conv.panel_stride = lead + conv.k * nr;
  const size_t panels = (conv.n + nr - 1) / nr;
  conv.panels = AlignedBuffer(panels * conv.panel_stride);  // zeroed: padding channels stay 0
  for (size_t o = 0; o < conv.n; o++) {
    float* panel = conv.panels.data() + o / nr * conv.panel_stride;
    const size_t j = o % nr;
    if (bias_in_panels) panel[j] = bias.data[o];
    for (size_t k = 0; k < conv.k; k++) panel[lead + k * nr + j] = weight.data[o * conv.k + k];
  }
  return conv;
}

PackedBlock pack_block(const ArrayMap& arrays, const std::string& prefix, const BlockSpec& spec, const KernelSet& ks) {
  PackedBlock block;
  block.spec = spec;
  const size_t hidden = spec.hidden();
  if (spec.has_expand()) block.expand = pack_conv(arrays, prefix + "expand.", {hidden, spec.cin}, ks.expand.nr, true);
  block.depthwise = pack_conv(arrays, prefix + "depthwise.", {hidden, 3, 3}, ks.dwconv(spec.stride).nr, true);
  block.project = pack_conv(arrays, prefix + "project.", {spec.cout, hidden}, ks.project.nr, false);
  return block;
}

}  // namespace mbv2
