#include "core/network.h"

#include <algorithm>

#include "core/status.h"

namespace mbv2 {
namespace {

struct Row {
  size_t t, c, n, s;
};

// Rows of (t, c, n, s) from the MobileNetV2 paper, table 2.
constexpr Row kInvertedResidualSetting[] = {
    {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
};
constexpr size_t kStemChannels = 32;
constexpr size_t kLastChannels = 1280;

}  // namespace

size_t make_divisible(double v, size_t divisor) {
  // Python's int() truncates toward zero, as the cast does for these positive values.
  const double d = static_cast<double>(divisor);
  const size_t rounded = std::max(divisor, static_cast<size_t>(v + d / 2.0) / divisor * divisor);
  return static_cast<double>(rounded) < 0.9 * v ? rounded + divisor : rounded;
}

NetworkSpec mobilenet_v2(double width_mult, size_t num_classes, Padding padding) {
  NetworkSpec spec;
  spec.stem = make_divisible(kStemChannels * width_mult);
  spec.last = make_divisible(kLastChannels * std::max(1.0, width_mult));
  spec.num_classes = num_classes;
  spec.padding = padding;
  size_t cin = spec.stem;
  for (const Row& row : kInvertedResidualSetting) {
    const size_t cout = make_divisible(static_cast<double>(row.c) * width_mult);
    for (size_t i = 0; i < row.n; ++i) {
      spec.blocks.push_back({cin, row.t, cout, i == 0 ? row.s : 1});
      cin = cout;
    }
  }
  return spec;
}

size_t pad_before(size_t size, size_t stride, Padding padding) {
  if (padding == Padding::Torch) return 1;
  // SAME: total = max((out - 1) * stride + 3 - size, 0), the smaller half first.
  const size_t span = (conv_out(size, stride) - 1) * stride + 3;
  return (span > size ? span - size : 0) / 2;
}

Padding parse_padding(const std::string& name) {
  if (name == "torch") return Padding::Torch;
  if (name == "same") return Padding::Same;
  throw Error(Status::kInvalidArgument, "padding must be 'torch' or 'same', got '" + name + "'");
}

const char* padding_name(Padding padding) { return padding == Padding::Torch ? "torch" : "same"; }

std::vector<std::pair<std::string, std::vector<size_t>>> member_shapes(const NetworkSpec& spec) {
  std::vector<std::pair<std::string, std::vector<size_t>>> shapes = {{"stem.weight", {spec.stem, 3, 3, 3}},
                                                                     {"stem.bias", {spec.stem}}};
  for (size_t i = 0; i < spec.blocks.size(); ++i) {
    const BlockSpec& b = spec.blocks[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    if (b.has_expand()) {
      shapes.push_back({p + "expand.weight", {b.hidden(), b.cin}});
      shapes.push_back({p + "expand.bias", {b.hidden()}});
    }
    shapes.push_back({p + "depthwise.weight", {b.hidden(), 3, 3}});
    shapes.push_back({p + "depthwise.bias", {b.hidden()}});
    shapes.push_back({p + "project.weight", {b.cout, b.hidden()}});
    shapes.push_back({p + "project.bias", {b.cout}});
  }
  const size_t cin = spec.blocks.empty() ? spec.stem : spec.blocks.back().cout;
  shapes.push_back({"head.weight", {spec.last, cin}});
  shapes.push_back({"head.bias", {spec.last}});
  shapes.push_back({"classifier.weight", {spec.num_classes, spec.last}});
  shapes.push_back({"classifier.bias", {spec.num_classes}});
  return shapes;
}

std::vector<LayerShape> layer_shapes(const NetworkSpec& spec, size_t height, size_t width) {
  size_t h = conv_out(height, 2), w = conv_out(width, 2);
  std::vector<LayerShape> layers;
  layers.push_back({"stem", height, width, h, w, 3, 0, spec.stem, 2, false, pad_before(height, 2, spec.padding),
                    pad_before(width, 2, spec.padding), uint64_t(h) * w * spec.stem * 27, uint64_t(spec.stem) * 28});
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    const size_t ho = conv_out(h, b.stride), wo = conv_out(w, b.stride), hidden = b.hidden();
    const uint64_t expand = b.has_expand() ? uint64_t(h) * w * b.cin * hidden : 0;
    const uint64_t params = (b.has_expand() ? uint64_t(hidden) * (b.cin + 1) : 0) + uint64_t(hidden) * 10 +
                            uint64_t(b.cout) * (hidden + 1);
    layers.push_back({"block" + std::to_string(i), h, w, ho, wo, b.cin, hidden, b.cout, b.stride, b.residual(),
                      pad_before(h, b.stride, spec.padding), pad_before(w, b.stride, spec.padding),
                      expand + uint64_t(ho) * wo * hidden * (9 + b.cout), params});
    h = ho;
    w = wo;
  }
  const size_t cin = spec.blocks.empty() ? spec.stem : spec.blocks.back().cout;
  layers.push_back({"head", h, w, h, w, cin, 0, spec.last, 1, false, 0, 0, uint64_t(h) * w * cin * spec.last,
                    uint64_t(spec.last) * (cin + 1)});
  layers.push_back({"classifier", 1, 1, 1, 1, spec.last, 0, spec.num_classes, 1, false, 0, 0,
                    uint64_t(spec.last) * spec.num_classes, uint64_t(spec.num_classes) * (spec.last + 1)});
  return layers;
}

}  // namespace mbv2
