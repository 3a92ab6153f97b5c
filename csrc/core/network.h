// The MobileNetV2 network as plain data, in one place: the block table from
// the width multiplier, the padding arithmetic, the weight file's member
// shapes and every layer's shapes and work at one input size. The reader, the
// core's plans and (through mbv2_engine._core) the Python package all take
// the network from here, so a change to it is made once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mbv2 {

// How a 3x3 conv pads its input. Every stride-1 3x3 conv pads 1 on each side
// (torch and TF SAME agree there); each stride-2 one follows its own rule:
// fixed zero rows and columns (torch's 1 on each side, the default, or what a
// Keras ZeroPadding2D before a VALID conv adds), or TF/Keras SAME, which
// depends on the input size: total = max((ceil(n / 2) - 1) * 2 + 3 - n, 0),
// the smaller half first.
struct PadRule {
  bool same = false;
  size_t top = 1, bottom = 1, left = 1, right = 1;  // when !same; each 0 or 1
};

// The weight file's "padding": "torch" and "same" name one rule for every
// stride-2 3x3 conv, a list names each one's, in network order (the stem first).
using Padding = std::vector<PadRule>;

struct BlockSpec {
  size_t cin, t, cout, stride;  // t: expansion factor; t = 1 blocks have no expand conv
  PadRule pad{};                // the depthwise conv's rule (stride-2 blocks only)
  size_t hidden() const { return cin * t; }
  bool has_expand() const { return t != 1; }
  bool residual() const { return stride == 1 && cin == cout; }
};

// A Dense layer between the global average pool and the classifier (the
// hidden layers of a transfer-learning head), with its activation.
enum class Activation { kNone, kRelu, kRelu6 };
struct DenseSpec {
  size_t units;
  Activation activation;
};

// One int8 activation tensor's quantization: real = scale * (q - zero_point).
struct QuantParams {
  float scale;
  int32_t zero_point;
};

struct NetworkSpec {
  size_t stem = 0, last = 0, num_classes = 0;
  PadRule stem_pad{};
  std::vector<BlockSpec> blocks;
  std::vector<DenseSpec> hidden;  // in order; the classifier follows the last
  // An int8 network (format version 3): one entry per activation tensor, in
  // network order (quant_tensor_count); empty for a float32 network.
  std::vector<QuantParams> quant;
  bool int8() const { return !quant.empty(); }
};

// Where an int8 network's activation tensors sit in NetworkSpec::quant: the
// stem output, then per block its expand output (t > 1), depthwise output and
// block output, then the head output (docs/format.md, version 3).
struct QuantIndex {
  size_t stem = 0, head = 0;
  std::vector<size_t> expand, depthwise, out;  // per block; expand is unused when t == 1
};
QuantIndex quant_index(const NetworkSpec& spec);
size_t quant_tensor_count(const NetworkSpec& spec);

// Whether `member` holds int8 values (the int8 convs' weights of a version-3 file).
bool is_int8_member(const NetworkSpec& spec, const std::string& member);

// torchvision's rounding: nearest multiple of `divisor`, never below 90% of v.
size_t make_divisible(double v, size_t divisor = 8);

// MobileNetV2 (paper, table 2) at a width multiplier: 17 inverted-residual blocks.
NetworkSpec mobilenet_v2(double width_mult, size_t num_classes, const Padding& padding = {PadRule{}});

// Gives the stem and every stride-2 block its rule: one rule for all of
// them, or exactly one each (Error kInvalidFormat otherwise).
void apply_padding(NetworkSpec& spec, const Padding& padding);

// One axis of a 3x3 conv at one input size: zero rows (or columns) before
// the input, and the output size. Error kInvalidArgument when the input is
// shorter than the rule's window (size + pads < 3).
struct ConvAxis {
  size_t pad_before, out;
};
ConvAxis conv_rows(size_t size, size_t stride, const PadRule& rule);
ConvAxis conv_cols(size_t size, size_t stride, const PadRule& rule);

// "torch" or "same": one rule for every stride-2 conv; Error kInvalidArgument otherwise.
Padding parse_padding(const std::string& name);
// A fixed rule from [top, bottom, left, right]; Error kInvalidArgument unless each is 0 or 1.
PadRule fixed_pad(size_t top, size_t bottom, size_t left, size_t right);
// "relu", "relu6" or "none"; Error kInvalidArgument otherwise.
Activation parse_activation(const std::string& name);

// Every array member of the weight file (docs/format.md) and its shape, in
// network order; an int8 network's int8 weights each have a `.weight_scale`.
std::vector<std::pair<std::string, std::vector<size_t>>> member_shapes(const NetworkSpec& spec);

// One layer at one input size: what `engine.plan` and `layer_shapes` report.
struct LayerShape {
  std::string name;  // stem, block0 .. block16, head, classifier
  size_t in_h, in_w, out_h, out_w;
  size_t cin, hidden, cout, stride;  // hidden: 0 for layers without one
  bool residual;
  size_t pad_top, pad_left;
  uint64_t macs, params;  // multiply-adds for one image; parameters with BN folded
};

std::vector<LayerShape> layer_shapes(const NetworkSpec& spec, size_t height, size_t width);

}  // namespace mbv2
