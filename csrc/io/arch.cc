#include "io/arch.h"

#include <algorithm>

namespace mbv2::io {
namespace {

struct Row {
  int t, c, n, s;
};

// Rows of (t, c, n, s) from the MobileNetV2 paper, table 2.
constexpr Row kInvertedResidualSetting[] = {
    {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
};
constexpr int kStemChannels = 32;
constexpr int kLastChannels = 1280;

}  // namespace

int make_divisible(double v, int divisor) {
  // Python's int() truncates toward zero, as the cast does for these positive values.
  int rounded = std::max(divisor, static_cast<int>(v + divisor / 2.0) / divisor * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

Arch build_arch(double width_mult, int num_classes) {
  Arch arch{width_mult, num_classes, make_divisible(kStemChannels * width_mult), {},
            make_divisible(kLastChannels * std::max(1.0, width_mult))};
  int cin = arch.stem;
  for (const Row& row : kInvertedResidualSetting) {
    int cout = make_divisible(row.c * width_mult);
    for (int i = 0; i < row.n; ++i) {
      arch.blocks.push_back({cin, row.t, cout, i == 0 ? row.s : 1});
      cin = cout;
    }
  }
  return arch;
}

}  // namespace mbv2::io
