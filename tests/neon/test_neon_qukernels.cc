// Every NEON int8 microkernel of registry-int8.inc (ISAs neon and neondot)
// against its scalar twin, bit for bit: both get their weights from the
// engine's packer (pack_qconv, each for its own nr and kr) out of the same int8
// weights, float scales and bias, so they see the same int32 biases and float
// requantization scales. The edge classes: output channels equal to the
// kernel's panel, a multiple of it, below it, above it, and 1; m (pixels) of 1
// to 56 and k of 1 to 960 around the 4-row tile and the k unrolls; depthwise
// stride 1 and 2 with odd widths; the clamp binding at both ends; ReLU6 with its
// top below 255; the residual with zero points 0 and 255; input zero points 0
// and 255; all-255 activations against weights of +-127 (the overflow case).
//
// Reads past what the contract allows fail: the last A row (readable up to kc
// rounded up to 4 bytes), the residual, the depthwise input rows and the packed
// panels each end at an inaccessible page. Writes outside the view fail too:
// outputs are prefilled with random bytes, wider than nc (strides > nc) and
// with a margin before and after, and compared whole.
//
// Built natively through SIMDe and for aarch64 (run under qemu); see CMakeLists.txt.
// The ISA cannot be chosen through kernel_set on x86, so the kernels are called
// directly; the neondot ones are skipped on an aarch64 CPU without DotProd.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "core/packing.h"
#include "ukernels/ukernels.h"

#if defined(__aarch64__)
#include "core/kernel_set.h"
#endif

namespace mbv2::neon_tests {
namespace {

template <class Fn>
struct QKernel {
  Fn* fn;
  const char* name;
  const char* isa;
  size_t nr, kr;
};

// gtest names a failing case's kernel by this.
template <class Fn>
void PrintTo(const QKernel<Fn>& kernel, std::ostream* os) {
  *os << kernel.name;
}

struct QKernels {
  std::vector<QKernel<mbv2_qu8_gemm_ukernel_fn>> gemm;
  std::vector<QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>> dwconv3x3s1;
  std::vector<QKernel<mbv2_qu8_dwconv3x3s2_ukernel_fn>> dwconv3x3s2;
  std::vector<QKernel<mbv2_qu8_quantize_ukernel_fn>> quantize;
};

// The registry lines of the given ISAs. Lines of the ISAs this binary does not
// build (x86 ones on an x86 host) sit in discarded statements: named, never linked.
QKernels registry(std::initializer_list<std::string_view> isas) {
  QKernels kernels;
#define MBV2_QUKERNEL(isa_, op, name, nr, kr)                                                        \
  if constexpr (std::string_view(#isa_) == "neon" || std::string_view(#isa_) == "neondot" ||         \
                std::string_view(#isa_) == "ref") {                                                  \
    if (std::find(isas.begin(), isas.end(), std::string_view(#isa_)) != isas.end()) {                \
      kernels.op.push_back({&name, #name, #isa_, nr, kr});                                           \
    }                                                                                                \
  }
#include "ukernels/registry-int8.inc"
#undef MBV2_QUKERNEL
  return kernels;
}

const QKernels& neon() {
  static const QKernels kernels = registry({"neon", "neondot"});
  return kernels;
}

const QKernels& ref() {
  static const QKernels kernels = registry({"ref"});
  return kernels;
}

// Whether this CPU runs the ISA's kernels (SIMDe runs all of them).
bool cpu_runs(std::string_view isa) {
#if defined(__aarch64__) && defined(__linux__)
  if (isa == "neondot") return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__)
  if (isa == "neondot") return false;  // no HWCAP to ask outside Linux
#endif
  return isa == "neon" || isa == "neondot";
}

#define MBV2_SKIP_UNLESS_CPU_RUNS(kernel) \
  if (!cpu_runs((kernel).isa)) GTEST_SKIP() << "this CPU lacks the " << (kernel).isa << " instructions"

TEST(QRegistry, EveryNeonIsaHasOneKernelPerOpNamedForIt) {
  for (std::string_view isa : {"neon", "neondot"}) {
    const QKernels k = registry({isa});
    ASSERT_EQ(k.gemm.size(), 1u) << isa;
    ASSERT_EQ(k.dwconv3x3s1.size(), 1u) << isa;
    ASSERT_EQ(k.dwconv3x3s2.size(), 1u) << isa;
    ASSERT_EQ(k.quantize.size(), 1u) << isa;
    const std::string suffix = "__" + std::string(isa);
    for (std::string_view name : {k.gemm[0].name, k.dwconv3x3s1[0].name, k.dwconv3x3s2[0].name, k.quantize[0].name}) {
      EXPECT_EQ(name.substr(0, 9), "mbv2_qu8_") << name;
      EXPECT_TRUE(name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) << name;
    }
    EXPECT_EQ(k.dwconv3x3s1[0].kr, 1u);
    EXPECT_EQ(k.dwconv3x3s2[0].kr, 1u);
  }
  EXPECT_EQ(ref().gemm.size(), 1u);
  EXPECT_EQ(ref().dwconv3x3s1.size(), 1u);
  EXPECT_EQ(ref().dwconv3x3s2.size(), 1u);
  EXPECT_EQ(ref().quantize.size(), 1u);
}

#if defined(__aarch64__)
// On aarch64 the core's dispatch offers both ISAs (neondot where the CPU has it).
TEST(QRegistry, KernelSetSelectsTheNeonIsas) {
  const auto isas = available_int8_isas();
  EXPECT_NE(std::find(isas.begin(), isas.end(), "neon"), isas.end());
  const QKernelSet neon_ks = select_qkernels("neon");
  EXPECT_STREQ(neon_ks.gemm.name, neon().gemm.at(0).name);
  EXPECT_EQ(neon_ks.gemm.kr, 1u);
  const bool dot = cpu_runs("neondot");
  EXPECT_EQ(std::find(isas.begin(), isas.end(), "neondot") != isas.end(), dot);
  EXPECT_EQ(select_qkernels("auto").isa, dot ? "neondot" : "neon");
  if (dot) EXPECT_EQ(select_qkernels("neondot").gemm.kr, 4u);
}
#endif

// ---- memory -------------------------------------------------------------------

// n bytes that end right before an inaccessible page, so a read past them
// faults. The start is as aligned as n is (to 64 at most).
class Guarded {
 public:
  explicit Guarded(size_t n) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (n + page - 1) / page;
    size_ = (data_pages + 1) * page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(p);
    if (mprotect(base_ + data_pages * page, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data_ = base_ + data_pages * page - n;
  }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  ~Guarded() { munmap(base_, size_); }
  uint8_t* data() { return data_; }
  size_t size() const { return n_; }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t n_ = 0, size_ = 0;
};

// ---- data -------------------------------------------------------------------

enum class Channels { kEqual, kMultiple, kBelow, kAbove, kOne };

std::vector<size_t> channel_counts(Channels c, size_t nr) {
  switch (c) {
    case Channels::kEqual: return {nr};
    case Channels::kMultiple: return {2 * nr, 3 * nr};
    case Channels::kBelow: return {2, 3, nr / 2 + 1, nr - 1};
    case Channels::kAbove: return {nr + 1, nr + 3, 2 * nr + 5};
    case Channels::kOne: return {1};
  }
  return {};
}

const char* channels_name(Channels c) {
  switch (c) {
    case Channels::kEqual: return "ChannelsEqualPanel";
    case Channels::kMultiple: return "ChannelsMultipleOfPanel";
    case Channels::kBelow: return "ChannelsBelowPanel";
    case Channels::kAbove: return "ChannelsAbovePanel";
    case Channels::kOne: return "OneChannel";
  }
  return "";
}

// The GEMMs' M (pixels): around the 4-row tile, and a row of 56.
const size_t kRows[] = {1, 2, 3, 4, 5, 7, 13, 56};
// The GEMMs' K: each tail of the 8-k (neon) and 4-group (neondot) unrolls,
// odd ones (A rows then end in bytes past kc), and the largest layer's 960.
const size_t kDepths[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 17, 24, 28, 960};
// Depthwise output widths, odd ones for stride 2.
const size_t kWidths[] = {1, 2, 3, 5, 7, 14, 56};

// One requantization setting: the zero points of the input, the output and
// the residual (none when !residual), and ReLU6 or the whole uint8 range.
struct QuantCase {
  const char* name;
  int32_t in_zero;
  bool relu6;
  int32_t out_zero;
  bool residual;
  int32_t residual_zero;
};

const QuantCase kQuantCases[] = {
    {"Relu6", 0, true, 0, false, 0},                     // hi = 200: ReLU6 below 255
    {"Relu6InputZero255", 255, true, 0, false, 0},
    {"LinearOutZero128", 0, false, 128, false, 0},
    {"LinearInputZero255OutZero0", 255, false, 0, false, 0},
    {"ResidualZero0", 128, false, 128, true, 0},
    {"ResidualZero255", 0, false, 255, true, 255},
};

constexpr float kInScale = 1.0f / 64;
constexpr float kRelu6OutScale = 6.0f / 200;  // hi = rint(6 / scale) = 200
constexpr float kLinearOutScale = 1.0f / 20;
constexpr float kResidualInScale = 1.0f / 40;

class Data {
 public:
  explicit Data(unsigned seed) : rng_(seed) {}
  void bytes(uint8_t* p, size_t n) {
    std::uniform_int_distribution<int> dist(0, 255);
    for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(dist(rng_));
  }
  std::vector<uint8_t> bytes(size_t n) {
    std::vector<uint8_t> v(n);
    bytes(v.data(), n);
    return v;
  }
  std::vector<int8_t> weights(size_t n) {
    std::uniform_int_distribution<int> dist(-128, 127);
    std::vector<int8_t> v(n);
    for (int8_t& x : v) x = static_cast<int8_t>(dist(rng_));
    return v;
  }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng_);
    return v;
  }

 private:
  std::mt19937 rng_;
};

// Weights, per-channel scales and float bias of one conv, in the file's form.
struct QWeights {
  std::vector<size_t> shape;
  std::vector<int8_t> weight;
  std::vector<float> scale, bias;
};

// Per-channel weight scales that keep the sum of k products near +-4 real
// units whatever k, and biases past both ends of every output range.
QWeights random_weights(Data& data, std::vector<size_t> shape, size_t k) {
  QWeights w;
  w.weight = data.weights(shape[0] * k);
  w.scale = data.uniform(shape[0], 0.5f, 2.0f);
  for (float& s : w.scale) s /= 127.0f * std::sqrt(static_cast<float>(k));
  w.bias = data.uniform(shape[0], -14.0f, 14.0f);
  w.shape = std::move(shape);
  return w;
}

// The packed panels, copied to end at an inaccessible page.
struct QPacked {
  PackedQConv conv;
  std::unique_ptr<Guarded> panels;
};

QPacked pack(const QWeights& w, const QuantCase& q, size_t nr, size_t kr) {
  const ArrayMap arrays = {{"weight", ArrayView{nullptr, w.shape, w.weight.data()}},
                           {"weight_scale", ArrayView{w.scale.data(), {w.shape[0]}}},
                           {"bias", ArrayView{w.bias.data(), {w.shape[0]}}}};
  const QuantParams in{kInScale, q.in_zero};
  const QuantParams out{q.relu6 ? kRelu6OutScale : kLinearOutScale, q.out_zero};
  QPacked p{pack_qconv(arrays, "", w.shape, in, out, q.relu6, nr, kr), nullptr};
  const size_t bytes = (w.shape[0] + nr - 1) / nr * p.conv.panel_stride;
  p.panels = std::make_unique<Guarded>(bytes);
  std::memcpy(p.panels->data(), p.conv.panels.data(), bytes);
  if (q.residual) {
    p.conv.requant.residual_zero_point = q.residual_zero;
    p.conv.requant.residual_scale = static_cast<float>(static_cast<double>(kResidualInScale) / out.scale);
  }
  return p;
}

constexpr size_t kMargin = 19;  // bytes before and after an output that no kernel may write

// An output of rows x stride bytes between two margins, prefilled with random
// bytes; view() is where the kernel writes.
struct Output {
  std::vector<uint8_t> bytes;
  uint8_t* view() { return bytes.data() + kMargin; }
};

Output make_output(Data& data, size_t rows, size_t stride) {
  return {data.bytes(2 * kMargin + rows * stride)};
}

// Kernel and twin outputs equal byte for byte, margins and gaps included; the
// first difference is named by its row and channel.
testing::AssertionResult same_bytes(const Output& actual, const Output& expected, size_t stride) {
  size_t bad = 0, first = 0;
  for (size_t i = actual.bytes.size(); i-- > 0;) {
    if (actual.bytes[i] != expected.bytes[i]) bad++, first = i;
  }
  if (bad == 0) return testing::AssertionSuccess();
  auto failure = testing::AssertionFailure() << bad << " bytes differ; the first ";
  if (first < kMargin || first >= kMargin + (actual.bytes.size() - 2 * kMargin)) {
    failure << "in a margin, at byte " << first;
  } else {
    failure << "at row " << (first - kMargin) / stride << ", channel " << (first - kMargin) % stride;
  }
  return failure << ": " << int(actual.bytes[first]) << " instead of " << int(expected.bytes[first]);
}

// The gaps (channels nc..stride of each row) and margins still hold the prefill.
testing::AssertionResult untouched_outside(const Output& out, const Output& prefill, size_t rows, size_t nc,
                                           size_t stride) {
  for (size_t i = 0; i < out.bytes.size(); i++) {
    const bool inside = i >= kMargin && i < kMargin + rows * stride && (i - kMargin) % stride < nc;
    if (!inside && out.bytes[i] != prefill.bytes[i]) {
      return testing::AssertionFailure() << "byte " << i << " outside the view was written";
    }
  }
  return testing::AssertionSuccess();
}

// Output values seen, to check that the clamp bound at both ends.
struct Seen {
  bool low = false, high = false;
  void add(const uint8_t* out, size_t rows, size_t nc, size_t stride, uint8_t lo, uint8_t hi) {
    for (size_t i = 0; i < rows; i++) {
      for (size_t n = 0; n < nc; n++) {
        low = low || out[i * stride + n] == lo;
        high = high || out[i * stride + n] == hi;
      }
    }
  }
};

// The clamp's ends as output bytes.
constexpr uint8_t kClampLow = 0;  // lo + zero point, in every case
uint8_t clamp_high(const QuantCase& q) { return q.relu6 ? 200 : 255; }

template <class Fn>
using Case = std::tuple<QKernel<Fn>, Channels, QuantCase>;

template <class Fn>
std::string case_name(const testing::TestParamInfo<Case<Fn>>& info) {
  return std::string(std::get<0>(info.param).name) + "_" + channels_name(std::get<1>(info.param)) + "_" +
         std::get<2>(info.param).name;
}

template <class Fn>
auto cases(const std::vector<QKernel<Fn>>& kernels) {
  return testing::Combine(testing::ValuesIn(kernels),
                          testing::Values(Channels::kEqual, Channels::kMultiple, Channels::kBelow, Channels::kAbove,
                                          Channels::kOne),
                          testing::ValuesIn(kQuantCases));
}

// ---- GEMM ---------------------------------------------------------------------

// One GEMM shape, kernel against twin. a: m rows a_stride apart, the last one
// ending at kc rounded up to 4 at an inaccessible page; the bytes past kc are
// random (the zero weights there must cancel them).
void check_gemm_shape(const QKernel<mbv2_qu8_gemm_ukernel_fn>& kernel, const QWeights& w, const QuantCase& q,
                      const uint8_t* a, size_t a_stride, size_t m, Data& data, Seen* seen) {
  const size_t nc = w.shape[0], kc = w.shape[1];
  const size_t c_stride = nc + (nc % 2 == 0 ? 5 : 1);
  const auto& twin = ref().gemm.at(0);
  QPacked packed = pack(w, q, kernel.nr, kernel.kr);
  QPacked packed_twin = pack(w, q, twin.nr, twin.kr);
  std::unique_ptr<Guarded> residual;
  if (q.residual) {
    const size_t r_stride = nc + 7;
    residual = std::make_unique<Guarded>((m - 1) * r_stride + nc);
    data.bytes(residual->data(), residual->size());
    for (QPacked* p : {&packed, &packed_twin}) {
      p->conv.requant.residual = residual->data();
      p->conv.requant.residual_stride = r_stride;
    }
  }
  const Output prefill = make_output(data, m, c_stride);
  Output actual = prefill, expected = prefill;
  kernel.fn(m, nc, kc, a, a_stride, packed.panels->data(), packed.conv.panel_stride, &packed.conv.requant,
            actual.view(), c_stride);
  twin.fn(m, nc, kc, a, a_stride, packed_twin.panels->data(), packed_twin.conv.panel_stride,
          &packed_twin.conv.requant, expected.view(), c_stride);
  EXPECT_TRUE(same_bytes(actual, expected, c_stride));
  EXPECT_TRUE(untouched_outside(expected, prefill, m, nc, c_stride));
  if (seen) seen->add(expected.view(), m, nc, c_stride, kClampLow, clamp_high(q));
}

using QGemmTest = testing::TestWithParam<Case<mbv2_qu8_gemm_ukernel_fn>>;

TEST_P(QGemmTest, MatchesScalarTwinBitForBit) {
  const auto& [kernel, channels, q] = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  Data data(7);
  Seen seen;
  for (size_t nc : channel_counts(channels, kernel.nr)) {
    for (size_t kc : kDepths) {
      const QWeights w = random_weights(data, {nc, kc}, kc);
      for (size_t m : kRows) {
        SCOPED_TRACE("nc=" + std::to_string(nc) + " m=" + std::to_string(m) + " kc=" + std::to_string(kc));
        // A tight stride (a row is exactly kc rounded up to 4) or a wider one.
        const size_t kc4 = (kc + 3) / 4 * 4, a_stride = m % 2 == 0 ? kc4 : kc4 + 4 + kc % 3;
        Guarded a((m - 1) * a_stride + kc4);
        data.bytes(a.data(), a.size());
        check_gemm_shape(kernel, w, q, a.data(), a_stride, m, data, &seen);
        if (HasFailure()) return;
      }
    }
  }
  EXPECT_TRUE(seen.low) << "the clamp's low end never bound";
  EXPECT_TRUE(seen.high) << "the clamp's high end never bound";
}

INSTANTIATE_TEST_SUITE_P(Neon, QGemmTest, cases(neon().gemm), case_name<mbv2_qu8_gemm_ukernel_fn>);

// All-255 activations against weights of +-127 (every channel all +127, all
// -127, or alternating by k), scaled so that the sums stay inside the output
// range: the largest sums a kernel must carry (255 x 127 x kc in int32),
// where a scheme with 16-bit partial sums or a saturating step would go wrong.
using QGemmExtremesTest = testing::TestWithParam<QKernel<mbv2_qu8_gemm_ukernel_fn>>;

TEST_P(QGemmExtremesTest, AllMaxActivationsAgainstFullScaleWeights) {
  const auto& kernel = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  Data data(8);
  for (int32_t in_zero : {0, 255}) {
    const QuantCase q{"", in_zero, false, 128, false, 0};
    for (size_t nc : {size_t{1}, kernel.nr, 2 * kernel.nr + 5}) {
      for (size_t kc : {1, 3, 4, 5, 24, 960}) {
        QWeights w;
        w.shape = {nc, kc};
        w.weight.resize(nc * kc);
        for (size_t n = 0; n < nc; n++) {
          for (size_t k = 0; k < kc; k++) {
            const int sign = n % 3 == 0 ? 1 : n % 3 == 1 ? -1 : (k % 2 == 0 ? 1 : -1);
            w.weight[n * kc + k] = static_cast<int8_t>(127 * sign);
          }
        }
        w.scale.assign(nc, 1.0f / (127.0f * static_cast<float>(kc)));
        w.bias = data.uniform(nc, -1.0f, 1.0f);
        for (size_t m : {1, 7, 13}) {
          SCOPED_TRACE("in_zero=" + std::to_string(in_zero) + " nc=" + std::to_string(nc) +
                       " m=" + std::to_string(m) + " kc=" + std::to_string(kc));
          const size_t a_stride = (kc + 3) / 4 * 4;
          Guarded a(m * a_stride);
          std::memset(a.data(), 255, a.size());
          check_gemm_shape(kernel, w, q, a.data(), a_stride, m, data, nullptr);
          if (HasFailure()) return;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Neon, QGemmExtremesTest, testing::ValuesIn(neon().gemm),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- depthwise 3x3, stride 1 and 2 ----------------------------------------------

// One output row of `cc` channels, a slice starting at channel 2 of a wider
// ring row (in_pixel_stride > channels) whose last needed byte ends at an
// inaccessible page, written into a wider row of pixels.
template <size_t Stride, class Fill>
void check_dwconv_shape(const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& kernel,
                        const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& twin, const QWeights& w, const QuantCase& q,
                        size_t wo, Data& data, Fill fill, Seen* seen) {
  const size_t cc = w.shape[0];
  const size_t c0 = 2, in_pixel_stride = cc + 5, out_pixel_stride = cc + 3;
  const size_t row_bytes = ((wo - 1) * Stride + 3) * in_pixel_stride;
  Guarded input(2 * row_bytes + ((wo - 1) * Stride + 2) * in_pixel_stride + c0 + cc);
  fill(input.data(), input.size());
  const uint8_t* rows[3] = {input.data() + c0, input.data() + row_bytes + c0, input.data() + 2 * row_bytes + c0};
  QPacked packed = pack(w, q, kernel.nr, 1);
  QPacked packed_twin = pack(w, q, twin.nr, 1);
  std::unique_ptr<Guarded> residual;
  if (q.residual) {
    // The twin reads the residual as row 0 for every pixel (quant-common.h).
    residual = std::make_unique<Guarded>(cc);
    data.bytes(residual->data(), residual->size());
    for (QPacked* p : {&packed, &packed_twin}) {
      p->conv.requant.residual = residual->data();
      p->conv.requant.residual_stride = 0;
    }
  }
  const Output prefill = make_output(data, wo, out_pixel_stride);
  Output actual = prefill, expected = prefill;
  kernel.fn(wo, cc, rows, in_pixel_stride, packed.panels->data(), packed.conv.panel_stride, &packed.conv.requant,
            actual.view(), out_pixel_stride);
  twin.fn(wo, cc, rows, in_pixel_stride, packed_twin.panels->data(), packed_twin.conv.panel_stride,
          &packed_twin.conv.requant, expected.view(), out_pixel_stride);
  EXPECT_TRUE(same_bytes(actual, expected, out_pixel_stride));
  EXPECT_TRUE(untouched_outside(expected, prefill, wo, cc, out_pixel_stride));
  if (seen) seen->add(expected.view(), wo, cc, out_pixel_stride, kClampLow, clamp_high(q));
}

template <size_t Stride>
void check_dwconv(const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& kernel,
                  const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& twin, Channels channels, const QuantCase& q) {
  Data data(20 + Stride);
  Seen seen;
  const auto random_fill = [&](uint8_t* p, size_t n) { data.bytes(p, n); };
  for (size_t cc : channel_counts(channels, kernel.nr)) {
    for (size_t wo : kWidths) {
      const QWeights w = random_weights(data, {cc, 3, 3}, 9);
      SCOPED_TRACE("channels=" + std::to_string(cc) + " wo=" + std::to_string(wo));
      check_dwconv_shape<Stride>(kernel, twin, w, q, wo, data, random_fill, &seen);
      if (testing::Test::HasFailure()) return;
    }
  }
  EXPECT_TRUE(seen.low) << "the clamp's low end never bound";
  EXPECT_TRUE(seen.high) << "the clamp's high end never bound";
}

// All-255 inputs against taps of +-127, as for the GEMM.
template <size_t Stride>
void check_dwconv_extremes(const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& kernel,
                           const QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>& twin) {
  Data data(30 + Stride);
  const QuantCase q{"", 0, false, 128, false, 0};
  const auto all_max = [](uint8_t* p, size_t n) { std::memset(p, 255, n); };
  for (size_t cc : {size_t{1}, kernel.nr, 2 * kernel.nr + 5}) {
    QWeights w;
    w.shape = {cc, 3, 3};
    w.weight.resize(cc * 9);
    for (size_t n = 0; n < cc; n++) {
      for (size_t t = 0; t < 9; t++) {
        w.weight[n * 9 + t] = static_cast<int8_t>(n % 3 == 0 ? 127 : n % 3 == 1 ? -127 : (t % 2 == 0 ? 127 : -127));
      }
    }
    w.scale.assign(cc, 1.0f / (127.0f * 9));
    w.bias = data.uniform(cc, -1.0f, 1.0f);
    for (size_t wo : {1, 7, 14}) {
      SCOPED_TRACE("channels=" + std::to_string(cc) + " wo=" + std::to_string(wo));
      check_dwconv_shape<Stride>(kernel, twin, w, q, wo, data, all_max, nullptr);
      if (testing::Test::HasFailure()) return;
    }
  }
}

using QDwconv3x3s1Test = testing::TestWithParam<Case<mbv2_qu8_dwconv3x3s1_ukernel_fn>>;
using QDwconv3x3s2Test = testing::TestWithParam<Case<mbv2_qu8_dwconv3x3s2_ukernel_fn>>;

TEST_P(QDwconv3x3s1Test, MatchesScalarTwinBitForBit) {
  MBV2_SKIP_UNLESS_CPU_RUNS(std::get<0>(GetParam()));
  check_dwconv<1>(std::get<0>(GetParam()), ref().dwconv3x3s1.at(0), std::get<1>(GetParam()), std::get<2>(GetParam()));
}

TEST_P(QDwconv3x3s2Test, MatchesScalarTwinBitForBit) {
  MBV2_SKIP_UNLESS_CPU_RUNS(std::get<0>(GetParam()));
  check_dwconv<2>(std::get<0>(GetParam()), ref().dwconv3x3s2.at(0), std::get<1>(GetParam()), std::get<2>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Neon, QDwconv3x3s1Test, cases(neon().dwconv3x3s1),
                         case_name<mbv2_qu8_dwconv3x3s1_ukernel_fn>);
INSTANTIATE_TEST_SUITE_P(Neon, QDwconv3x3s2Test, cases(neon().dwconv3x3s2),
                         case_name<mbv2_qu8_dwconv3x3s2_ukernel_fn>);

using QDwconvExtremesTest = testing::TestWithParam<QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>>;

TEST_P(QDwconvExtremesTest, AllMaxInputsAgainstFullScaleTaps) {
  const auto& kernel = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  const bool s2 = std::string_view(kernel.name).find("dwconv3x3s2") != std::string_view::npos;
  if (s2) {
    check_dwconv_extremes<2>(kernel, ref().dwconv3x3s2.at(0));
  } else {
    check_dwconv_extremes<1>(kernel, ref().dwconv3x3s1.at(0));
  }
}

std::vector<QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>> all_dwconv() {
  auto all = neon().dwconv3x3s1;
  all.insert(all.end(), neon().dwconv3x3s2.begin(), neon().dwconv3x3s2.end());
  return all;
}

INSTANTIATE_TEST_SUITE_P(Neon, QDwconvExtremesTest, testing::ValuesIn(all_dwconv()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- the requantization's roundings ----------------------------------------------

// Random data lands next to a rounding tie too rarely to tell a fused
// multiply-add from the twin's multiply, then add (two roundings). These cases
// are made to: per channel an accumulator (the bias; all weights zero), a scale
// and a residual byte for which float(acc) * scale + (r - rzp) * rs is exactly a
// tie of nearbyint when each product is rounded first, and is not when either
// product is fused with the sum (FMA, vfmaq, vmlaq, or GCC contracting a*b+c).
// The test checks that the twin, built with -ffp-contract=off, gives the
// two-rounding answer and the fused one would differ, and that the kernel
// agrees with the twin.
enum class Fused { kResidualProduct, kAccProduct };

struct TieChannel {
  int32_t acc;
  float scale;
  uint8_t r;
  int32_t unfused;  // nearbyint of the twin's arithmetic
};

struct TieCase {
  float residual_scale;
  int32_t residual_zero;
  std::vector<TieChannel> channels;
};

// The tie t + 0.5 whose two neighbours the two arithmetics reach: error e > 0
// pushes the fused sum up to t + 1, so t must be even for ties-to-even to give t.
double tie_for(double e) { return e > 0 ? 2.5 : 3.5; }

TieCase make_ties(Fused fused, size_t channels, Data& data) {
  TieCase tc;
  std::mt19937 rng(99);
  if (fused == Fused::kResidualProduct) {
    // scale = 2^-17: float(acc) * scale is exact, and the residual's product
    // r * rs (rs not a power of 2) is rounded; v = tie - p, acc = v * 2^17.
    tc.residual_scale = 0.3f + 0.1f * data.uniform(1, 0.0f, 1.0f)[0];
    tc.residual_zero = 0;
    const float scale = std::ldexp(1.0f, -17);
    std::uniform_int_distribution<int> rdist(200, 255);
    while (tc.channels.size() < channels) {
      const int r = rdist(rng);
      const float p = static_cast<float>(r) * tc.residual_scale;
      const double e = static_cast<double>(r) * tc.residual_scale - p;
      if (std::fabs(e) < std::ldexp(1.0, -21)) continue;  // too close to move the sum off the tie
      const float v = static_cast<float>(tie_for(e) - p);
      const double acc = std::ldexp(static_cast<double>(v), 17);
      const float fused_sum = std::fmaf(static_cast<float>(r), tc.residual_scale, v);
      tc.channels.push_back({static_cast<int32_t>(acc), scale, static_cast<uint8_t>(r),
                             static_cast<int32_t>(std::nearbyint(v + p))});
      EXPECT_EQ(static_cast<double>(v) + p, tie_for(e));
      EXPECT_NE(std::nearbyint(fused_sum), std::nearbyint(v + p));
    }
  } else {
    // rs = 0.5 and rzp = 128: the residual's product is exact, and
    // float(acc) * scale (scale not a power of 2) is rounded onto a multiple of
    // 0.5 near 12; r then brings the sum to the tie.
    tc.residual_scale = 0.5f;
    tc.residual_zero = 128;
    std::uniform_real_distribution<float> sdist(1.0e-6f, 1.4e-6f);
    while (tc.channels.size() < channels) {
      const float scale = sdist(rng);
      const int32_t acc0 = static_cast<int32_t>(12.0 / scale);
      for (int32_t acc = acc0 - 200; acc < acc0 + 200 && tc.channels.size() < channels; acc++) {
        const float af = static_cast<float>(acc);
        const float v = af * scale;
        const double e = static_cast<double>(af) * scale - v;
        if (std::fmod(static_cast<double>(v), 0.5) != 0.0 || std::fabs(e) < std::ldexp(1.0, -22)) continue;
        const double p = tie_for(e) - v;
        const int r = 128 + static_cast<int>(2 * p);
        if (r < 0 || r > 255 || 2 * p != static_cast<int>(2 * p)) continue;
        const float pf = static_cast<float>(r - 128) * tc.residual_scale;
        tc.channels.push_back({acc, scale, static_cast<uint8_t>(r), static_cast<int32_t>(std::nearbyint(v + pf))});
        EXPECT_EQ(static_cast<double>(v) + pf, tie_for(e));
        EXPECT_NE(std::nearbyint(std::fmaf(af, scale, pf)), std::nearbyint(v + pf));
        break;  // one channel per scale
      }
    }
  }
  return tc;
}

// Zero weights; then each channel's bias and scale overwritten in the panels.
QPacked pack_ties(const TieCase& tc, std::vector<size_t> shape, size_t nr, size_t kr) {
  QWeights w;
  w.shape = shape;
  size_t k = 1;
  for (size_t i = 1; i < shape.size(); i++) k *= shape[i];
  w.weight.assign(shape[0] * k, 0);
  w.scale.assign(shape[0], 1.0f / 127);
  w.bias.assign(shape[0], 0.0f);
  QPacked p = pack(w, {"", 0, false, 128, false, 0}, nr, kr);
  for (size_t n = 0; n < shape[0]; n++) {
    uint8_t* panel = p.panels->data() + n / nr * p.conv.panel_stride;
    std::memcpy(panel + 4 * (n % nr), &tc.channels[n].acc, 4);
    std::memcpy(panel + 4 * nr + 4 * (n % nr), &tc.channels[n].scale, 4);
  }
  p.conv.requant.residual_scale = tc.residual_scale;
  p.conv.requant.residual_zero_point = tc.residual_zero;
  return p;
}

const Fused kFused[] = {Fused::kResidualProduct, Fused::kAccProduct};

using QGemmRoundingTest = testing::TestWithParam<QKernel<mbv2_qu8_gemm_ukernel_fn>>;

TEST_P(QGemmRoundingTest, MultiplyThenAddAtTies) {
  const auto& kernel = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  const auto& twin = ref().gemm.at(0);
  Data data(40);
  for (Fused fused : kFused) {
    const size_t nc = 2 * kernel.nr + 5, m = 7, kc = 5, a_stride = 8, c_stride = nc + 3, r_stride = nc + 1;
    SCOPED_TRACE(fused == Fused::kResidualProduct ? "fusing the residual's product" : "fusing the scale's product");
    const TieCase tc = make_ties(fused, nc, data);
    Guarded a(m * a_stride), residual((m - 1) * r_stride + nc);
    data.bytes(a.data(), a.size());
    for (size_t i = 0; i < m; i++) {
      for (size_t n = 0; n < nc; n++) residual.data()[i * r_stride + n] = tc.channels[n].r;
    }
    QPacked packed = pack_ties(tc, {nc, kc}, kernel.nr, kernel.kr);
    QPacked packed_twin = pack_ties(tc, {nc, kc}, twin.nr, twin.kr);
    for (QPacked* p : {&packed, &packed_twin}) {
      p->conv.requant.residual = residual.data();
      p->conv.requant.residual_stride = r_stride;
    }
    const Output prefill = make_output(data, m, c_stride);
    Output actual = prefill, expected = prefill;
    kernel.fn(m, nc, kc, a.data(), a_stride, packed.panels->data(), packed.conv.panel_stride, &packed.conv.requant,
              actual.view(), c_stride);
    twin.fn(m, nc, kc, a.data(), a_stride, packed_twin.panels->data(), packed_twin.conv.panel_stride,
            &packed_twin.conv.requant, expected.view(), c_stride);
    for (size_t n = 0; n < nc; n++) {
      ASSERT_EQ(expected.view()[n], static_cast<uint8_t>(tc.channels[n].unfused + 128))
          << "the twin fused a product (channel " << n << "): is it built with -ffp-contract=off?";
    }
    EXPECT_TRUE(same_bytes(actual, expected, c_stride));
  }
}

INSTANTIATE_TEST_SUITE_P(Neon, QGemmRoundingTest, testing::ValuesIn(neon().gemm),
                         [](const auto& info) { return std::string(info.param.name); });

using QDwconvRoundingTest = testing::TestWithParam<QKernel<mbv2_qu8_dwconv3x3s1_ukernel_fn>>;

TEST_P(QDwconvRoundingTest, MultiplyThenAddAtTies) {
  const auto& kernel = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  const bool s2 = std::string_view(kernel.name).find("dwconv3x3s2") != std::string_view::npos;
  const auto& twin = s2 ? ref().dwconv3x3s2.at(0) : ref().dwconv3x3s1.at(0);
  Data data(41);
  for (Fused fused : kFused) {
    const size_t cc = 2 * kernel.nr + 5, wo = 5, in_pixel_stride = cc, out_pixel_stride = cc + 3;
    SCOPED_TRACE(fused == Fused::kResidualProduct ? "fusing the residual's product" : "fusing the scale's product");
    const TieCase tc = make_ties(fused, cc, data);
    const size_t row_bytes = ((wo - 1) * (s2 ? 2 : 1) + 3) * in_pixel_stride;
    Guarded input(3 * row_bytes), residual(cc);
    data.bytes(input.data(), input.size());
    for (size_t n = 0; n < cc; n++) residual.data()[n] = tc.channels[n].r;
    const uint8_t* rows[3] = {input.data(), input.data() + row_bytes, input.data() + 2 * row_bytes};
    QPacked packed = pack_ties(tc, {cc, 3, 3}, kernel.nr, 1);
    QPacked packed_twin = pack_ties(tc, {cc, 3, 3}, twin.nr, 1);
    for (QPacked* p : {&packed, &packed_twin}) p->conv.requant.residual = residual.data();
    const Output prefill = make_output(data, wo, out_pixel_stride);
    Output actual = prefill, expected = prefill;
    kernel.fn(wo, cc, rows, in_pixel_stride, packed.panels->data(), packed.conv.panel_stride, &packed.conv.requant,
              actual.view(), out_pixel_stride);
    twin.fn(wo, cc, rows, in_pixel_stride, packed_twin.panels->data(), packed_twin.conv.panel_stride,
            &packed_twin.conv.requant, expected.view(), out_pixel_stride);
    for (size_t n = 0; n < cc; n++) {
      ASSERT_EQ(expected.view()[n], static_cast<uint8_t>(tc.channels[n].unfused + 128))
          << "the twin fused a product (channel " << n << "): is it built with -ffp-contract=off?";
    }
    EXPECT_TRUE(same_bytes(actual, expected, out_pixel_stride));
  }
}

INSTANTIATE_TEST_SUITE_P(Neon, QDwconvRoundingTest, testing::ValuesIn(all_dwconv()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- the stem output's quantization ------------------------------------------

using QQuantizeTest = testing::TestWithParam<QKernel<mbv2_qu8_quantize_ukernel_fn>>;

// Lengths around the 16-value vector and a whole 112-pixel row of 32 channels,
// read up to an inaccessible page; values past both ends of the clamp (hi 180,
// and 255), and exact ties k + 0.5 of x * inv_scale, which round to the even k.
TEST_P(QQuantizeTest, MatchesScalarTwinBitForBit) {
  const auto& kernel = GetParam();
  MBV2_SKIP_UNLESS_CPU_RUNS(kernel);
  const auto& twin = ref().quantize.at(0);
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> value(-0.5f, 6.5f);
  std::uniform_int_distribution<int> code(0, 254);
  for (float scale : {0.5f, 6.0f / 180, 0.01f}) {
    const float inv = static_cast<float>(1.0 / scale);
    const float hi = static_cast<float>(std::min(255.0, std::nearbyint(6.0 / scale)));
    for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{53}, size_t{112 * 32}}) {
      SCOPED_TRACE("scale " + std::to_string(scale) + ", n " + std::to_string(n));
      Guarded x(n * sizeof(float));
      float* xf = reinterpret_cast<float*>(x.data());
      for (size_t i = 0; i < n; i++) xf[i] = i % 10 == 0 ? (static_cast<float>(code(gen)) + 0.5f) / inv : value(gen);
      std::vector<uint8_t> actual(n + 7, 77), expected(n + 7, 77);
      kernel.fn(n, xf, inv, hi, actual.data());
      twin.fn(n, xf, inv, hi, expected.data());
      EXPECT_EQ(actual, expected);
      for (size_t i = 0; i < n; i += 10) {
        const float q = xf[i] * inv;
        ASSERT_EQ(expected[i], static_cast<uint8_t>(std::nearbyint(std::min(q, hi)))) << "tie at " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Neon, QQuantizeTest, testing::ValuesIn(neon().quantize),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mbv2::neon_tests
