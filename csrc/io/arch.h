// The MobileNetV2 architecture as plain data: a port of mbv2_engine/arch.py's
// make_divisible and build_arch, so a width multiplier gives the same channel
// counts in C++ as in Python (the tests compare the two for every width).
#pragma once

#include <vector>

namespace mbv2::io {

struct BlockSpec {
  int cin;
  int t;  // expansion factor; t = 1 blocks have no expand conv
  int cout;
  int stride;

  int hidden() const { return cin * t; }
  bool has_expand() const { return t != 1; }
  bool residual() const { return stride == 1 && cin == cout; }
};

struct Arch {
  double width_mult;
  int num_classes;
  int stem;
  std::vector<BlockSpec> blocks;  // the 17 inverted-residual blocks, in network order
  int last;
};

// torchvision's rounding: nearest multiple of `divisor`, never below 90% of v.
int make_divisible(double v, int divisor = 8);

Arch build_arch(double width_mult = 1.0, int num_classes = 1000);

}  // namespace mbv2::io
