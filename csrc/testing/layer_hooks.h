// Single layers run through exactly the code the network uses, for tests that
// compare one layer with the float64 reference. Inputs and outputs are NHWC.
// Test hooks: built into mbv2_engine._test_hooks only, never into mbv2_core,
// libmbv2 or mbv2_engine._core. Their argument checks throw Error
// kInvalidArgument; arrays the packing refuses, kInvalidFormat as for a model.
#pragma once

#include <string>
#include <vector>

#include "core/common.h"

namespace mbv2 {

// One inverted-residual block: arrays named expand.weight (optional, with its
// bias), depthwise.weight/bias, project.weight/bias as in docs/format.md.
// x_shape = (N, H, W, Cin).
Tensor run_irblock_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                         const std::vector<size_t>& x_shape, size_t stride, const PadRule& pad);

// The stem conv (arrays weight, bias): (N, H, W, 3) -> (N, Ho, Wo, C0).
Tensor run_stem_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                      const std::vector<size_t>& x_shape, const PadRule& pad);

// The head conv + ReLU6 + average pool (arrays weight, bias): (N, H, W, C) -> (N, L).
Tensor run_head_layer(const std::string& isa, const ArrayMap& arrays, const float* x,
                      const std::vector<size_t>& x_shape);

}  // namespace mbv2
