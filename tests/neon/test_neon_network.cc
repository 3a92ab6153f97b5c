// The fused core on aarch64: dispatch finds NEON through HWCAP, and a small
// random network (every block class: t = 1, expansion, stride 2, residual,
// channel counts off the 8-wide tiles, odd input sides) gives the same logits
// through the NEON kernels (at 1 and 2 threads) as through the scalar
// reference. Cross-built only
// (the core compiles NEON kernels for aarch64 targets), run under qemu.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/kernel_set.h"
#include "core/model.h"
#include "tolerances.h"

namespace mbv2::neon_tests {
namespace {

TEST(NeonDispatch, AutoPicksNeonOnAarch64) {
  const auto isas = available_isas();
  EXPECT_NE(std::find(isas.begin(), isas.end(), "neon"), isas.end());
  EXPECT_EQ(select_kernels("auto").isa, "neon");
  EXPECT_EQ(select_kernels("neon").expand.name, std::string("mbv2_f32_expand_relu6_ukernel_4x8__neon"));
}

// "torch", "same", or "fixed": a Keras-style ZeroPadding2D rule on each of the four stride-2 convs.
NetworkSpec small_network(const std::string& padding) {
  NetworkSpec spec;
  spec.stem = 8;
  spec.blocks = {{8, 1, 5, 1}, {5, 6, 12, 2}, {12, 6, 12, 1}, {12, 4, 20, 2}, {20, 6, 20, 1}, {20, 6, 13, 2}};
  spec.last = 36;
  spec.num_classes = 10;
  apply_padding(spec, padding == "fixed" ? Padding{PadRule{true}, fixed_pad(0, 1, 0, 1), fixed_pad(1, 1, 0, 1),
                                                   fixed_pad(0, 1, 1, 1)}
                                         : parse_padding(padding));
  return spec;
}

// Random weights under the file's names, scaled so activations stay O(1) while
// ReLU6 still binds (as tests/test_core_blocks.py does).
class Weights {
 public:
  explicit Weights(const NetworkSpec& spec) {
    add("stem.", {spec.stem, 3, 3, 3}, 0.4f);
    for (size_t i = 0; i < spec.blocks.size(); i++) {
      const BlockSpec& b = spec.blocks[i];
      const std::string prefix = "blocks." + std::to_string(i) + ".";
      if (b.has_expand()) add(prefix + "expand.", {b.hidden(), b.cin}, 3.0f / std::sqrt(float(b.cin)));
      add(prefix + "depthwise.", {b.hidden(), 3, 3}, 0.6f);
      add(prefix + "project.", {b.cout, b.hidden()}, 1.0f / std::sqrt(float(b.hidden())));
    }
    add("head.", {spec.last, spec.blocks.back().cout}, 1.0f / std::sqrt(float(spec.blocks.back().cout)));
    add("classifier.", {spec.num_classes, spec.last}, 1.0f / std::sqrt(float(spec.last)));
  }
  const ArrayMap& arrays() const { return arrays_; }

 private:
  void add(const std::string& prefix, std::vector<size_t> shape, float scale) {
    size_t n = 1;
    for (size_t d : shape) n *= d;
    std::normal_distribution<float> dist(0.0f, scale), bias_dist(0.5f, 1.0f);
    auto& weight = storage_[prefix + "weight"];
    auto& bias = storage_[prefix + "bias"];
    for (size_t i = 0; i < n; i++) weight.push_back(dist(rng_));
    for (size_t i = 0; i < shape[0]; i++) bias.push_back(bias_dist(rng_));
    arrays_[prefix + "weight"] = {weight.data(), shape};
    arrays_[prefix + "bias"] = {bias.data(), {shape[0]}};
  }

  std::mt19937 rng_{7};
  std::map<std::string, std::vector<float>> storage_;  // map nodes never move, so views stay valid
  ArrayMap arrays_;
};

// (padding, layout, height, width, threads of the NEON model)
using NetworkCase = std::tuple<std::string, Layout, size_t, size_t, size_t>;
using NeonNetworkTest = testing::TestWithParam<NetworkCase>;

TEST_P(NeonNetworkTest, LogitsMatchReference) {
  const auto [padding, layout, height, width, threads] = GetParam();
  const NetworkSpec spec = small_network(padding);
  const Weights weights(spec);
  const Model neon(weights.arrays(), spec, "neon", threads);
  const Model ref(weights.arrays(), spec, "ref", 1);
  const size_t batch = 2;
  std::vector<float> x(batch * 3 * height * width);
  std::mt19937 rng(11);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  for (float& v : x) v = pixel(rng);
  std::vector<float> actual(batch * spec.num_classes), expected(actual.size());
  neon.run(x.data(), batch, height, width, layout, actual.data());
  ref.run(x.data(), batch, height, width, layout, expected.data());
  // Two float32 paths that round differently (FMA, tile order) drift apart no
  // further than either drifts from float64: the network entry bounds both.
  EXPECT_TRUE(all_close(actual, expected, kNetworkVsF64));
}

std::string network_case_name(const testing::TestParamInfo<NetworkCase>& info) {
  const auto [padding, layout, height, width, threads] = info.param;
  return padding + (layout == Layout::NCHW ? "Nchw" : "Nhwc") +
         std::to_string(height) + "x" + std::to_string(width) + "Threads" + std::to_string(threads);
}

INSTANTIATE_TEST_SUITE_P(Neon, NeonNetworkTest,
                         testing::Values(NetworkCase{"torch", Layout::NCHW, 33, 35, 1},
                                         NetworkCase{"same", Layout::NHWC, 33, 35, 1},
                                         NetworkCase{"fixed", Layout::NCHW, 33, 35, 1},
                                         NetworkCase{"torch", Layout::NHWC, 32, 48, 2}),
                         network_case_name);

}  // namespace
}  // namespace mbv2::neon_tests
