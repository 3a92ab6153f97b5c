#include "core/head.h"

#include <algorithm>

namespace mbv2 {
namespace {

// Pixels per head kernel call: all 49 of a 7x7 map, so the head's weights
// stream from L3 once per image; bigger maps go in blocks whose input rows
// (128 x 320 floats, 160 KB) stay in L2 while every panel passes over them.
constexpr size_t kHeadPixels = 128;

}  // namespace

void head_pool(const KernelSet& ks, const PackedConv& head, const float* in, size_t pixels, size_t n0, size_t n1,
               float* pooled) {
  const float* panels = head.panels.data() + n0 / head.nr * head.panel_stride;
  std::fill(pooled + n0, pooled + n1, 0.0f);
  for (size_t p = 0; p < pixels; p += kHeadPixels) {
    ks.head.fn(std::min(kHeadPixels, pixels - p), n1 - n0, head.k, in + p * head.k, head.k, panels, pooled + n0);
  }
  const float scale = 1.0f / static_cast<float>(pixels);
  for (size_t n = n0; n < n1; n++) pooled[n] *= scale;
}

}  // namespace mbv2
