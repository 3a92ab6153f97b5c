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

struct BlockSpec {
  size_t cin, t, cout, stride;  // t: expansion factor; t = 1 blocks have no expand conv
  size_t hidden() const { return cin * t; }
  bool has_expand() const { return t != 1; }
  bool residual() const { return stride == 1 && cin == cout; }
};

// "torch": every 3x3 conv pads 1 on each side. "same": TF/Keras SAME padding.
enum class Padding { Torch, Same };

struct NetworkSpec {
  size_t stem = 0, last = 0, num_classes = 0;
  std::vector<BlockSpec> blocks;
  Padding padding = Padding::Torch;
};

// torchvision's rounding: nearest multiple of `divisor`, never below 90% of v.
size_t make_divisible(double v, size_t divisor = 8);

// MobileNetV2 (paper, table 2) at a width multiplier: 17 inverted-residual blocks.
NetworkSpec mobilenet_v2(double width_mult, size_t num_classes, Padding padding = Padding::Torch);

// Both paddings give ceil(size / stride) outputs; they differ only in how many
// zero rows/columns come first.
inline size_t conv_out(size_t size, size_t stride) { return (size + stride - 1) / stride; }
size_t pad_before(size_t size, size_t stride, Padding padding);

Padding parse_padding(const std::string& name);  // "torch" or "same"; Error(kInvalidArgument) otherwise
const char* padding_name(Padding padding);

// Every array member of the weight file (docs/format.md) and its shape, in network order.
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
