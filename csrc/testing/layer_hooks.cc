#include "testing/layer_hooks.h"

#include <algorithm>

#include "core/fused_block.h"
#include "core/head.h"
#include "core/input.h"
#include "core/kernel_set.h"
#include "core/packing.h"
#include "core/row_sources.h"
#include "core/status.h"
#include "core/tiling.h"

namespace mbv2 {
namespace {

// (N, H, W, C) with every dimension >= 1, and C as expected when given.
void check_nhwc(const std::vector<size_t>& shape, size_t channels) {
  const bool ok = shape.size() == 4 && std::all_of(shape.begin(), shape.end(), [](size_t d) { return d > 0; }) &&
                  (channels == 0 || shape[3] == channels);
  if (!ok) {
    throw Error(Status::kInvalidArgument, "input has shape " + shape_str(shape) + ", expected (N, H, W, " +
                                              (channels ? std::to_string(channels) : std::string("C")) +
                                              ") with every size >= 1");
  }
}

const ArrayView& require_weight(const ArrayMap& arrays, const std::string& name) {
  const auto it = arrays.find(name);
  if (it == arrays.end()) throw Error(Status::kInvalidArgument, "missing array '" + name + "'");
  if (it->second.shape.empty()) {
    throw Error(Status::kInvalidArgument, "array '" + name + "' must have at least one dimension");
  }
  return it->second;
}

// The block's spec follows from the arrays: hidden from the depthwise weight,
// cout from the projection, t = hidden / cin.
BlockSpec infer_block_spec(const ArrayMap& arrays, size_t cin, size_t stride) {
  const size_t hidden = require_weight(arrays, "depthwise.weight").shape[0];
  const size_t cout = require_weight(arrays, "project.weight").shape[0];
  const bool has_expand = arrays.count("expand.weight") > 0;
  if (stride != 1 && stride != 2) throw Error(Status::kInvalidArgument, "stride must be 1 or 2");
  if (hidden == 0 || (has_expand ? hidden % cin != 0 || hidden == cin : hidden != cin)) {
    throw Error(Status::kInvalidArgument,
                "hidden channels (" + std::to_string(hidden) + ") must be a positive multiple of cin (" +
                    std::to_string(cin) + "), and differ from it exactly when there is an expand conv");
  }
  return {cin, hidden / cin, cout, stride};
}

}  // namespace

Tensor run_irblock_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                         const std::vector<size_t>& x_shape, size_t stride, const PadRule& pad) {
  check_nhwc(x_shape, 0);
  const KernelSet ks = select_kernels(isa);
  const size_t n = x_shape[0], h = x_shape[1], w = x_shape[2], cin = x_shape[3];
  BlockSpec spec = infer_block_spec(arrays, cin, stride);
  spec.pad = pad;
  const PackedBlock block = pack_block(arrays, "", spec, ks);
  const BlockGeometry g = block_geometry(block.spec, h, w, ks);
  AlignedBuffer scratch(ring_floats(block.spec, g) + tile_floats(g));
  const BlockScratch s{scratch.data(), scratch.data() + ring_floats(block.spec, g)};
  Tensor out{{n, g.ho, g.wo, block.spec.cout}, std::vector<float>(n * g.ho * g.wo * block.spec.cout)};
  for (size_t i = 0; i < n; i++) {
    const float* in = x + i * h * w * cin;
    const TensorSource source(ks, block, in, w);
    FusedBlock(ks, block, g, source, block.spec.residual() ? in : nullptr,
               out.data.data() + i * g.ho * g.wo * block.spec.cout, s, {0, block.spec.hidden()})
        .run({0, g.ho});
  }
  return out;
}

Tensor run_stem_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                      const std::vector<size_t>& x_shape, const PadRule& pad) {
  check_nhwc(x_shape, 3);
  const KernelSet ks = select_kernels(isa);
  const size_t n = x_shape[0], h = x_shape[1], w = x_shape[2];
  const size_t c0 = require_weight(arrays, "weight").shape[0];
  const PackedConv stem = pack_conv(arrays, "", {c0, 3, 3, 3}, ks.stem.nr, true);
  const size_t ho = conv_rows(h, 2, pad).out, wo = conv_cols(w, 2, pad).out;
  AlignedBuffer image(padded_image_floats(h, w));
  Tensor out{{n, ho, wo, c0}, std::vector<float>(n * ho * wo * c0)};
  for (size_t i = 0; i < n; i++) {
    load_padded_image(ks.load.fn, x + i * h * w * 3, Layout::NHWC, h, w, 0, h, image.data());
    const StemSource source(ks, stem, image.data(), h, w, pad);
    for (size_t y = 0; y < ho; y++) source.produce(y, 0, c0, out.data.data() + (i * ho + y) * wo * c0);
  }
  return out;
}

Tensor run_head_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                      const std::vector<size_t>& x_shape) {
  check_nhwc(x_shape, 0);
  const KernelSet ks = select_kernels(isa);
  const size_t n = x_shape[0], h = x_shape[1], w = x_shape[2], c = x_shape[3];
  const size_t last = require_weight(arrays, "weight").shape[0];
  const PackedConv head = pack_conv(arrays, "", {last, c}, ks.head.nr, true);
  Tensor out{{n, last}, std::vector<float>(n * last)};
  for (size_t i = 0; i < n; i++) head_pool(ks, head, x + i * h * w * c, h * w, 0, last, out.data.data() + i * last);
  return out;
}

}  // namespace mbv2
