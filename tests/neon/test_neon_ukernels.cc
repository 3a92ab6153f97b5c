// Every NEON microkernel listed in registry.inc against its scalar twin, over the
// edge cases of docs/design.md ("Adding a kernel"): output channels equal to the kernel's tile, a
// multiple of it, below it and above it (each case sweeps several counts, odd
// widths and K counts around the 4-row and 4-k unrolls), stride 2 (its own
// kernel), the ReLU6 clamp binding at both ends, and the projection from
// each of its starts (c itself, bias + residual, bias, zeros). Outputs live in buffers wider
// than the kernel's view (strides > channels), prefilled, and compared whole,
// so a store outside the view fails too.
//
// Built natively through SIMDe and for aarch64 (run under qemu); see CMakeLists.txt.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/packing.h"
#include "tolerances.h"
#include "ukernels/ukernels.h"

namespace mbv2::neon_tests {
namespace {

template <class Fn>
struct Kernel {
  Fn* fn;
  const char* name;
  size_t nr;
};

struct Kernels {
  std::vector<Kernel<mbv2_expand_ukernel_fn>> expand;
  std::vector<Kernel<mbv2_dwconv3x3s1_ukernel_fn>> dwconv3x3s1;
  std::vector<Kernel<mbv2_dwconv3x3s2_ukernel_fn>> dwconv3x3s2;
  std::vector<Kernel<mbv2_project_ukernel_fn>> project;
  std::vector<Kernel<mbv2_stem_ukernel_fn>> stem;
  std::vector<Kernel<mbv2_head_ukernel_fn>> head;
  std::vector<Kernel<mbv2_load_ukernel_fn>> load;
};

// The registry lines of one ISA. Lines of the ISAs this binary does not build
// (x86 ones on an x86 host) sit in discarded statements: named, never linked.
Kernels registry(std::string_view isa) {
  Kernels kernels;
#define MBV2_UKERNEL(isa_, op, name, nr)                                                     \
  if constexpr (std::string_view(#isa_) == "neon" || std::string_view(#isa_) == "ref") { \
    if (isa == #isa_) kernels.op.push_back({&name, #name, nr});                           \
  }
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL
  return kernels;
}

const Kernels& neon() {
  static const Kernels kernels = registry("neon");
  return kernels;
}

const Kernels& ref() {
  static const Kernels kernels = registry("ref");
  return kernels;
}

TEST(Registry, EveryOpHasOneNeonKernelAndOneScalarTwin) {
  for (const Kernels* k : {&neon(), &ref()}) {
    EXPECT_EQ(k->expand.size(), 1u);
    EXPECT_EQ(k->dwconv3x3s1.size(), 1u);
    EXPECT_EQ(k->dwconv3x3s2.size(), 1u);
    EXPECT_EQ(k->project.size(), 1u);
    EXPECT_EQ(k->stem.size(), 1u);
    EXPECT_EQ(k->head.size(), 1u);
    EXPECT_EQ(k->load.size(), 1u);
  }
}

// ---- data -------------------------------------------------------------------

enum class Channels { kEqual, kMultiple, kBelow, kAbove };

// Output channel counts of one edge class, relative to the tile nr.
std::vector<size_t> channel_counts(Channels c, size_t nr) {
  switch (c) {
    case Channels::kEqual: return {nr};
    case Channels::kMultiple: return {2 * nr, 3 * nr};
    case Channels::kBelow: return {1, 2, 3, nr / 2 + 1, nr - 1};
    case Channels::kAbove: return {nr + 1, nr + 3, 2 * nr + 5};
  }
  return {};
}

const char* channels_name(Channels c) {
  switch (c) {
    case Channels::kEqual: return "ChannelsEqualTile";
    case Channels::kMultiple: return "ChannelsMultipleOfTile";
    case Channels::kBelow: return "ChannelsBelowTile";
    case Channels::kAbove: return "ChannelsAboveTile";
  }
  return "";
}

// Pixels per row (the GEMMs' M, the convolutions' output width): below, at and
// above the 4-row tile, odd ones included.
const size_t kWidths[] = {1, 2, 3, 4, 5, 7, 9, 14};
// K of the GEMMs: below, at and above the 4-k unroll.
const size_t kDepths[] = {1, 3, 4, 5, 8, 17, 40};

// f(nc, m, kc) over every GEMM shape of one channel class, each traced on failure.
template <class F>
void for_each_gemm_shape(Channels channels, size_t nr, F f) {
  for (size_t nc : channel_counts(channels, nr)) {
    for (size_t m : kWidths) {
      for (size_t kc : kDepths) {
        SCOPED_TRACE("nc=" + std::to_string(nc) + " m=" + std::to_string(m) + " kc=" + std::to_string(kc));
        f(nc, m, kc);
      }
    }
  }
}

// f(nc, wo) over every shape of a convolution's output row.
template <class F>
void for_each_row_shape(Channels channels, size_t nr, F f) {
  for (size_t nc : channel_counts(channels, nr)) {
    for (size_t wo : kWidths) {
      SCOPED_TRACE("channels=" + std::to_string(nc) + " wo=" + std::to_string(wo));
      f(nc, wo);
    }
  }
}

// Biases in (-3, 9) push sums past both ends of ReLU6 whatever the dot adds.
class Data {
 public:
  explicit Data(unsigned seed) : rng_(seed) {}
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng_);
    return v;
  }
  std::vector<float> bias(size_t n) { return uniform(n, -3.0f, 9.0f); }

 private:
  std::mt19937 rng_;
};

// Packs a (n, k...) weight the engine's way, for a kernel of panel width nr.
PackedConv pack(const std::vector<float>& weight, const std::vector<float>& bias, std::vector<size_t> shape,
                size_t nr, bool bias_in_panels) {
  const ArrayMap arrays = {{"weight", {weight.data(), shape}}, {"bias", {bias.data(), {shape[0]}}}};
  return pack_conv(arrays, "", shape, nr, bias_in_panels);
}

// Both ends of ReLU6 were hit, so the clamp is really under test.
void expect_clamp_binds(const std::vector<float>& relu6_out) {
  EXPECT_TRUE(std::count(relu6_out.begin(), relu6_out.end(), 0.0f) > 0 &&
              std::count(relu6_out.begin(), relu6_out.end(), 6.0f) > 0);
}

constexpr float kUntouched = -777.0f;  // fills the gaps a kernel must not write

template <class Fn>
using Case = std::tuple<Kernel<Fn>, Channels>;

template <class Fn>
std::string case_name(const testing::TestParamInfo<Case<Fn>>& info) {
  return std::string(std::get<0>(info.param).name) + "_" + channels_name(std::get<1>(info.param));
}

template <class Fn>
auto cases(const std::vector<Kernel<Fn>>& kernels) {
  return testing::Combine(testing::ValuesIn(kernels), testing::Values(Channels::kEqual, Channels::kMultiple,
                                                                      Channels::kBelow, Channels::kAbove));
}

// Runs run(k, out) for the kernel and for its twin, each on its own copy of
// `initial`, and compares the two outputs whole; returns the twin's.
template <class Fn, class Run>
std::vector<float> run_both(const Kernel<Fn>& kernel, const Kernel<Fn>& twin, const std::vector<float>& initial,
                            Run run) {
  std::vector<float> actual = initial, expected = initial;
  run(kernel, actual.data());
  run(twin, expected.data());
  EXPECT_TRUE(all_close(actual, expected, kUkernelVsRef));
  return expected;
}

// ---- expand and head: biased GEMM + ReLU6 -------------------------------------

using ExpandTest = testing::TestWithParam<Case<mbv2_expand_ukernel_fn>>;

TEST_P(ExpandTest, MatchesScalarTwin) {
  const auto& kernel = std::get<0>(GetParam());
  Data data(1);
  std::vector<float> all_out;
  for_each_gemm_shape(std::get<1>(GetParam()), kernel.nr, [&](size_t nc, size_t m, size_t kc) {
    const size_t a_stride = kc + 3, c_stride = nc + 5;
    const auto a = data.uniform(m * a_stride, -1.5f, 1.5f);
    const auto weight = data.uniform(nc * kc, -1.0f, 1.0f);
    const auto bias = data.bias(nc);
    const auto out = run_both(kernel, ref().expand.at(0), std::vector<float>(m * c_stride, kUntouched),
                              [&](const auto& k, float* c) {
                                const PackedConv w = pack(weight, bias, {nc, kc}, k.nr, true);
                                k.fn(m, nc, kc, a.data(), a_stride, w.panels.data(), c, c_stride);
                              });
    all_out.insert(all_out.end(), out.begin(), out.end());
  });
  expect_clamp_binds(all_out);
}

INSTANTIATE_TEST_SUITE_P(Neon, ExpandTest, cases(neon().expand), case_name<mbv2_expand_ukernel_fn>);

using HeadTest = testing::TestWithParam<Case<mbv2_head_ukernel_fn>>;

TEST_P(HeadTest, MatchesScalarTwin) {
  const auto& kernel = std::get<0>(GetParam());
  Data data(2);
  for_each_gemm_shape(std::get<1>(GetParam()), kernel.nr, [&](size_t nc, size_t m, size_t kc) {
    const auto a = data.uniform(m * kc, -1.5f, 1.5f);
    const auto weight = data.uniform(nc * kc, -1.0f, 1.0f);
    const auto bias = data.bias(nc);
    // The pooled sum of earlier rows, then kUntouched past channel nc.
    std::vector<float> sum = data.uniform(nc, 0.0f, 20.0f);
    sum.resize(nc + 3, kUntouched);
    run_both(kernel, ref().head.at(0), sum, [&](const auto& k, float* out) {
      const PackedConv w = pack(weight, bias, {nc, kc}, k.nr, true);
      k.fn(m, nc, kc, a.data(), kc, w.panels.data(), out);
    });
  });
}

INSTANTIATE_TEST_SUITE_P(Neon, HeadTest, cases(neon().head), case_name<mbv2_head_ukernel_fn>);

// ---- project: accumulating GEMM on a K slice of the packed weights -----------

using ProjectTest = testing::TestWithParam<Case<mbv2_project_ukernel_fn>>;

// Each way a chunk starts: onto c itself (a later chunk), onto bias + residual
// (a block's first chunk), onto bias alone (the classifier) and onto zeros (a
// second half's first chunk).
enum class Start { kOntoC, kBiasAndResidual, kBias, kZero };

TEST_P(ProjectTest, AccumulatesLikeScalarTwin) {
  const auto& kernel = std::get<0>(GetParam());
  Data data(3);
  for (Start start : {Start::kOntoC, Start::kBiasAndResidual, Start::kBias, Start::kZero}) {
    for_each_gemm_shape(std::get<1>(GetParam()), kernel.nr, [&](size_t nc, size_t m, size_t kc) {
      // The chunk [k0, k0 + kc) of a wider hidden dimension, as the fused block slices it.
      const size_t k0 = kc % 2 == 0 ? 0 : 5, k_total = k0 + kc + 2, c_stride = nc + 5;
      const auto a = data.uniform(m * kc, 0.0f, 6.0f);
      const auto weight = data.uniform(nc * k_total, -0.5f, 0.5f);
      const auto bias = data.uniform(nc, -1.0f, 1.0f);
      const auto residual = data.uniform(m * c_stride, -4.0f, 4.0f);
      const bool with_bias = start == Start::kBiasAndResidual || start == Start::kBias;
      // c is prefilled (gaps included): only kOntoC may read it, and no call may store into the gaps.
      run_both(kernel, ref().project.at(0), data.uniform(m * c_stride, -4.0f, 4.0f), [&](const auto& k, float* c) {
        const PackedConv w = pack(weight, bias, {nc, k_total}, k.nr, false);
        const float* src = start == Start::kOntoC ? c : start == Start::kBiasAndResidual ? residual.data() : nullptr;
        k.fn(m, nc, kc, a.data(), kc, w.panels.data() + k0 * w.nr, w.panel_stride, with_bias ? bias.data() : nullptr,
             src, c, c_stride);
      });
    });
  }
}

INSTANTIATE_TEST_SUITE_P(Neon, ProjectTest, cases(neon().project), case_name<mbv2_project_ukernel_fn>);

// ---- depthwise 3x3, stride 1 and 2 --------------------------------------------

// A channel slice starting at channel 2 of a wider ring row (in_pixel_stride >
// channels), written into a wider tile of two output rows.
template <size_t Stride>
void check_dwconv(const Kernel<mbv2_dwconv3x3s1_ukernel_fn>& kernel,
                  const Kernel<mbv2_dwconv3x3s1_ukernel_fn>& twin, Channels channels) {
  Data data(10 + Stride);
  std::vector<float> all_out;
  for_each_row_shape(channels, kernel.nr, [&](size_t cc, size_t wo) {
    constexpr size_t kOutRows = 2, kInRows = (kOutRows - 1) * Stride + 3;
    const size_t c0 = 2, in_pixel_stride = cc + 5, out_pixel_stride = cc + 3;
    const size_t row_floats = ((wo - 1) * Stride + 3) * in_pixel_stride, out_row = wo * out_pixel_stride;
    const auto input = data.uniform(kInRows * row_floats, -2.0f, 2.0f);
    const float* rows[kInRows];
    for (size_t i = 0; i < kInRows; i++) rows[i] = input.data() + i * row_floats + c0;
    const auto weight = data.uniform(cc * 9, -0.8f, 0.8f);
    const auto bias = data.bias(cc);
    const auto out = run_both(kernel, twin, std::vector<float>(kOutRows * out_row, kUntouched),
                              [&](const auto& k, float* o) {
                                const PackedConv w = pack(weight, bias, {cc, 3, 3}, k.nr, true);
                                k.fn(wo, cc, rows, in_pixel_stride, w.panels.data(), o, out_pixel_stride, kOutRows,
                                     out_row);
                              });
    all_out.insert(all_out.end(), out.begin(), out.end());
  });
  expect_clamp_binds(all_out);
}

using Dwconv3x3s1Test = testing::TestWithParam<Case<mbv2_dwconv3x3s1_ukernel_fn>>;
using Dwconv3x3s2Test = testing::TestWithParam<Case<mbv2_dwconv3x3s2_ukernel_fn>>;

TEST_P(Dwconv3x3s1Test, MatchesScalarTwin) {
  check_dwconv<1>(std::get<0>(GetParam()), ref().dwconv3x3s1.at(0), std::get<1>(GetParam()));
}

TEST_P(Dwconv3x3s2Test, MatchesScalarTwin) {
  check_dwconv<2>(std::get<0>(GetParam()), ref().dwconv3x3s2.at(0), std::get<1>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Neon, Dwconv3x3s1Test, cases(neon().dwconv3x3s1), case_name<mbv2_dwconv3x3s1_ukernel_fn>);
INSTANTIATE_TEST_SUITE_P(Neon, Dwconv3x3s2Test, cases(neon().dwconv3x3s2), case_name<mbv2_dwconv3x3s2_ukernel_fn>);

// ---- stem: 3x3 stride-2 conv from 3 interleaved channels ------------------------

using StemTest = testing::TestWithParam<Case<mbv2_stem_ukernel_fn>>;

TEST_P(StemTest, MatchesScalarTwin) {
  const auto& kernel = std::get<0>(GetParam());
  Data data(4);
  std::vector<float> all_out;
  for_each_row_shape(std::get<1>(GetParam()), kernel.nr, [&](size_t nc, size_t wo) {
    const size_t row_floats = (2 * wo + 1) * 3, out_pixel_stride = nc + 3;
    const auto image = data.uniform(3 * row_floats, -2.0f, 2.0f);
    const float* rows[3] = {image.data(), image.data() + row_floats, image.data() + 2 * row_floats};
    const auto weight = data.uniform(nc * 27, -0.5f, 0.5f);
    const auto bias = data.bias(nc);
    const auto out = run_both(kernel, ref().stem.at(0), std::vector<float>(wo * out_pixel_stride, kUntouched),
                              [&](const auto& k, float* o) {
                                const PackedConv w = pack(weight, bias, {nc, 3, 3, 3}, k.nr, true);
                                k.fn(wo, nc, rows, w.panels.data(), o, out_pixel_stride);
                              });
    all_out.insert(all_out.end(), out.begin(), out.end());
  });
  expect_clamp_binds(all_out);
}

INSTANTIATE_TEST_SUITE_P(Neon, StemTest, cases(neon().stem), case_name<mbv2_stem_ukernel_fn>);

// The image row load: an exact copy into the padded row (planes wider than the
// row), and the flag for NaN and both infinities in each plane at its first,
// middle and last value, none for the largest float, a subnormal and -0.
TEST(LoadTest, CopiesRowsExactlyAndFindsEveryNonFinite) {
  const auto& kernel = neon().load.at(0);
  const auto& twin = ref().load.at(0);
  std::mt19937 gen(7);
  std::normal_distribution<float> value(0.0f, 2.0f);
  for (size_t w : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{17}, size_t{224}}) {
    SCOPED_TRACE("w " + std::to_string(w));
    const size_t stride = w + 5;
    std::vector<float> planes(3 * stride);
    for (float& v : planes) v = value(gen);
    planes[0] = std::numeric_limits<float>::max();
    planes[stride + w / 2] = 1e-42f;
    planes[2 * stride + w - 1] = -0.0f;
    std::vector<float> actual((w + 2) * 3, -7.0f), expected((w + 2) * 3, -7.0f);
    EXPECT_EQ(kernel.fn(w, planes.data(), stride, actual.data()), 0);
    EXPECT_EQ(twin.fn(w, planes.data(), stride, expected.data()), 0);
    EXPECT_EQ(0, std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)));
    for (size_t c = 0; c < 3; c++) {
      EXPECT_EQ(actual[c], 0.0f);
      EXPECT_EQ(actual[(w + 1) * 3 + c], 0.0f);
      for (size_t x = 0; x < w; x++) ASSERT_EQ(actual[3 + 3 * x + c], planes[c * stride + x]);
    }
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      for (size_t c = 0; c < 3; c++) {
        for (size_t x : {size_t{0}, w / 2, w - 1}) {
          std::vector<float> hit = planes;
          hit[c * stride + x] = bad;
          EXPECT_EQ(kernel.fn(w, hit.data(), stride, actual.data()), 1) << "plane " << c << " x " << x;
        }
      }
    }
  }
}

}  // namespace
}  // namespace mbv2::neon_tests
