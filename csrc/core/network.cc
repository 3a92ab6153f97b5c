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

NetworkSpec mobilenet_v2(double width_mult, size_t num_classes, const Padding& padding) {
  NetworkSpec spec;
  spec.stem = make_divisible(kStemChannels * width_mult);
  spec.last = make_divisible(kLastChannels * std::max(1.0, width_mult));
  spec.num_classes = num_classes;
  size_t cin = spec.stem;
  for (const Row& row : kInvertedResidualSetting) {
    const size_t cout = make_divisible(static_cast<double>(row.c) * width_mult);
    for (size_t i = 0; i < row.n; ++i) {
      spec.blocks.push_back({cin, row.t, cout, i == 0 ? row.s : 1});
      cin = cout;
    }
  }
  apply_padding(spec, padding);
  return spec;
}

void apply_padding(NetworkSpec& spec, const Padding& padding) {
  std::vector<PadRule*> strided = {&spec.stem_pad};
  for (BlockSpec& b : spec.blocks) {
    if (b.stride == 2) strided.push_back(&b.pad);
  }
  if (padding.size() != 1 && padding.size() != strided.size()) {
    throw Error(Status::kInvalidFormat, "'padding' lists " + std::to_string(padding.size()) +
                                            " rules; the network has " + std::to_string(strided.size()) +
                                            " stride-2 3x3 convs (the stem, then blocks of stride 2)");
  }
  for (size_t i = 0; i < strided.size(); ++i) *strided[i] = padding[padding.size() == 1 ? 0 : i];
}

namespace {

ConvAxis conv_axis(size_t size, size_t stride, bool same, size_t before, size_t after) {
  if (stride == 1) return {1, size};  // every stride-1 3x3 conv pads 1 on each side
  if (same) {
    const size_t out = (size + stride - 1) / stride;
    const size_t span = (out - 1) * stride + 3;
    return {(span > size ? span - size : 0) / 2, out};
  }
  if (size + before + after < 3) {
    throw Error(Status::kInvalidArgument, "a side of " + std::to_string(size) +
                                              " is too short for a 3x3 conv padded by " +
                                              std::to_string(before) + " and " + std::to_string(after));
  }
  return {before, (size + before + after - 3) / stride + 1};
}

}  // namespace

ConvAxis conv_rows(size_t size, size_t stride, const PadRule& rule) {
  return conv_axis(size, stride, rule.same, rule.top, rule.bottom);
}

ConvAxis conv_cols(size_t size, size_t stride, const PadRule& rule) {
  return conv_axis(size, stride, rule.same, rule.left, rule.right);
}

Padding parse_padding(const std::string& name) {
  if (name == "torch") return {PadRule{}};
  if (name == "same") return {PadRule{true}};
  throw Error(Status::kInvalidArgument, "padding must be 'torch' or 'same', got '" + name + "'");
}

PadRule fixed_pad(size_t top, size_t bottom, size_t left, size_t right) {
  if (std::max({top, bottom, left, right}) > 1) {
    throw Error(Status::kInvalidArgument, "a fixed padding rule pads 0 or 1 on each side, got [" +
                                              std::to_string(top) + ", " + std::to_string(bottom) + ", " +
                                              std::to_string(left) + ", " + std::to_string(right) + "]");
  }
  return {false, top, bottom, left, right};
}

Activation parse_activation(const std::string& name) {
  if (name == "none") return Activation::kNone;
  if (name == "relu") return Activation::kRelu;
  if (name == "relu6") return Activation::kRelu6;
  throw Error(Status::kInvalidArgument, "a hidden layer's activation must be 'relu', 'relu6' or 'none', got '" +
                                            name + "'");
}

std::vector<std::pair<std::string, std::vector<size_t>>> member_shapes(const NetworkSpec& spec) {
  std::vector<std::pair<std::string, std::vector<size_t>>> shapes = {{"stem.weight", {spec.stem, 3, 3, 3}},
                                                                     {"stem.bias", {spec.stem}}};
  // A conv's weight, its per-channel scales when int8, and its bias.
  auto conv = [&](const std::string& p, std::vector<size_t> weight) {
    const size_t out = weight[0];
    shapes.push_back({p + "weight", std::move(weight)});
    if (spec.int8()) shapes.push_back({p + "weight_scale", {out}});
    shapes.push_back({p + "bias", {out}});
  };
  for (size_t i = 0; i < spec.blocks.size(); ++i) {
    const BlockSpec& b = spec.blocks[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    if (b.has_expand()) conv(p + "expand.", {b.hidden(), b.cin});
    conv(p + "depthwise.", {b.hidden(), 3, 3});
    conv(p + "project.", {b.cout, b.hidden()});
  }
  const size_t cin = spec.blocks.empty() ? spec.stem : spec.blocks.back().cout;
  conv("head.", {spec.last, cin});
  size_t inputs = spec.last;
  for (size_t j = 0; j < spec.hidden.size(); ++j) {
    const std::string p = "hidden." + std::to_string(j) + ".";
    shapes.push_back({p + "weight", {spec.hidden[j].units, inputs}});
    shapes.push_back({p + "bias", {spec.hidden[j].units}});
    inputs = spec.hidden[j].units;
  }
  shapes.push_back({"classifier.weight", {spec.num_classes, inputs}});
  shapes.push_back({"classifier.bias", {spec.num_classes}});
  return shapes;
}

QuantIndex quant_index(const NetworkSpec& spec) {
  QuantIndex q;
  size_t next = 1;  // 0 is the stem
  for (const BlockSpec& b : spec.blocks) {
    q.expand.push_back(b.has_expand() ? next++ : 0);
    q.depthwise.push_back(next++);
    q.out.push_back(next++);
  }
  q.head = next;
  return q;
}

size_t quant_tensor_count(const NetworkSpec& spec) { return quant_index(spec).head + 1; }

bool is_int8_member(const NetworkSpec& spec, const std::string& member) {
  const std::string suffix = ".weight";
  const bool weight = member.size() > suffix.size() && member.compare(member.size() - suffix.size(), suffix.size(),
                                                                      suffix) == 0;
  return spec.int8() && weight && (member.rfind("blocks.", 0) == 0 || member == "head.weight");
}

namespace {

// conv_rows and conv_cols, with the layer and the input size in a refusal.
std::pair<ConvAxis, ConvAxis> conv_axes(size_t h, size_t w, size_t stride, const PadRule& rule,
                                        const std::string& layer, size_t height, size_t width) {
  try {
    return {conv_rows(h, stride, rule), conv_cols(w, stride, rule)};
  } catch (const Error& e) {
    throw Error(e.status(), "input " + std::to_string(height) + "x" + std::to_string(width) +
                                " is too small for this model's padding: at " + layer + ", " + e.what());
  }
}

}  // namespace

std::vector<LayerShape> layer_shapes(const NetworkSpec& spec, size_t height, size_t width) {
  const auto [rows, cols] = conv_axes(height, width, 2, spec.stem_pad, "the stem", height, width);
  size_t h = rows.out, w = cols.out;
  std::vector<LayerShape> layers;
  layers.push_back({"stem", height, width, h, w, 3, 0, spec.stem, 2, false, rows.pad_before, cols.pad_before,
                    uint64_t(h) * w * spec.stem * 27, uint64_t(spec.stem) * 28});
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    const auto [r, c] = conv_axes(h, w, b.stride, b.pad, "block " + std::to_string(i), height, width);
    const size_t hidden = b.hidden();
    const uint64_t expand = b.has_expand() ? uint64_t(h) * w * b.cin * hidden : 0;
    const uint64_t params = (b.has_expand() ? uint64_t(hidden) * (b.cin + 1) : 0) + uint64_t(hidden) * 10 +
                            uint64_t(b.cout) * (hidden + 1);
    layers.push_back({"block" + std::to_string(i), h, w, r.out, c.out, b.cin, hidden, b.cout, b.stride,
                      b.residual(), r.pad_before, c.pad_before,
                      expand + uint64_t(r.out) * c.out * hidden * (9 + b.cout), params});
    h = r.out;
    w = c.out;
  }
  const size_t cin = spec.blocks.empty() ? spec.stem : spec.blocks.back().cout;
  layers.push_back({"head", h, w, h, w, cin, 0, spec.last, 1, false, 0, 0, uint64_t(h) * w * cin * spec.last,
                    uint64_t(spec.last) * (cin + 1)});
  size_t inputs = spec.last;
  for (size_t j = 0; j <= spec.hidden.size(); j++) {
    const bool classifier = j == spec.hidden.size();
    const size_t units = classifier ? spec.num_classes : spec.hidden[j].units;
    layers.push_back({classifier ? "classifier" : "hidden" + std::to_string(j), 1, 1, 1, 1, inputs, 0, units, 1,
                      false, 0, 0, uint64_t(inputs) * units, uint64_t(units) * (inputs + 1)});
    inputs = units;
  }
  return layers;
}

}  // namespace mbv2
