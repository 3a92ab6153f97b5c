// Tests of the C API (mbv2.h) and its C++ wrapper (mbv2.hpp), linked against
// libmbv2 the way a host links it: the happy path, then every error status.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "mbv2/mbv2.h"
#include "mbv2/mbv2.hpp"

namespace {

using mbv2::test::fixture;
using mbv2::test::random_images;

// make_fixtures.py: width 0.35, 17 classes, input 224x192, "same" padding;
// the compressed twin also carries labels "class 0".."class 16".
// Functions, not constants: gtest_discover_tests lists the tests without $MBV2_FIXTURE_DIR.
std::string model() { return fixture("valid_0.35.npz").string(); }
std::string labelled_model() { return fixture("valid_0.35_compressed.npz").string(); }
constexpr size_t kClasses = 17;
constexpr size_t kSide = 64;  // run() takes any size; a small one keeps the tests fast

std::string error_message() { return mbv2_last_error_message(); }

mbv2_engine* create(const std::string& path, const char* isa = "ref", const char* dtype = "fp32") {
  mbv2_engine_options options;
  EXPECT_EQ(mbv2_engine_options_init(&options), MBV2_STATUS_OK);
  options.isa = isa;
  options.dtype = dtype;
  options.threads = 1;
  mbv2_engine* engine = nullptr;
  EXPECT_EQ(mbv2_engine_create_from_file(path.c_str(), &options, &engine), MBV2_STATUS_OK) << error_message();
  return engine;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::vector<float> run(const mbv2_engine* engine, const std::vector<float>& x, size_t n,
                       mbv2_layout layout = MBV2_LAYOUT_NCHW) {
  std::vector<float> out(n * kClasses);
  EXPECT_EQ(mbv2_engine_run(engine, x.data(), n, kSide, kSide, layout, out.data(), out.size()), MBV2_STATUS_OK)
      << error_message();
  return out;
}

// NCHW -> NHWC for a batch of kSide x kSide images.
std::vector<float> to_nhwc(const std::vector<float>& nchw, size_t n) {
  std::vector<float> nhwc(nchw.size());
  const size_t plane = kSide * kSide;
  for (size_t i = 0; i < n; i++) {
    for (size_t c = 0; c < 3; c++) {
      for (size_t p = 0; p < plane; p++) nhwc[(i * plane + p) * 3 + c] = nchw[(i * 3 + c) * plane + p];
    }
  }
  return nhwc;
}

void expect_failure(mbv2_status got, mbv2_status expected, const std::string& fragment) {
  EXPECT_EQ(got, expected) << "got " << mbv2_status_string(got) << ": " << error_message();
  EXPECT_NE(error_message().find(fragment), std::string::npos)
      << "message: " << error_message() << "\nexpected it to contain: " << fragment;
}

mbv2_status create_status(const std::string& path, const char* isa = "auto", size_t threads = 0) {
  mbv2_engine_options options;
  mbv2_engine_options_init(&options);
  options.isa = isa;
  options.threads = threads;
  static int sentinel;
  mbv2_engine* engine = reinterpret_cast<mbv2_engine*>(&sentinel);  // a failure must reset it to NULL
  const mbv2_status status = mbv2_engine_create_from_file(path.c_str(), &options, &engine);
  if (status != MBV2_STATUS_OK) EXPECT_EQ(engine, nullptr);
  mbv2_engine_destroy(status == MBV2_STATUS_OK ? engine : nullptr);
  return status;
}

// ---- happy path ------------------------------------------------------------------

TEST(CApi, VersionAndStatusStrings) {
  EXPECT_STREQ(mbv2_version(), MBV2_TEST_VERSION);
  EXPECT_STREQ(mbv2_status_string(MBV2_STATUS_OK), "ok");
  EXPECT_STREQ(mbv2_status_string(MBV2_STATUS_INVALID_FORMAT), "invalid format");
  EXPECT_STREQ(mbv2_status_string(MBV2_STATUS_UNSUPPORTED_ISA), "unsupported isa");
  EXPECT_STREQ(mbv2_status_string(static_cast<mbv2_status>(99)), "unknown status");
}

TEST(CApi, OptionDefaults) {
  mbv2_engine_options options{7, "x", "y"};
  ASSERT_EQ(mbv2_engine_options_init(&options), MBV2_STATUS_OK);
  EXPECT_EQ(options.threads, 0u);
  EXPECT_STREQ(options.isa, "auto");
  EXPECT_STREQ(options.dtype, "fp32");
}

TEST(CApi, ReportsTheFilesMetadata) {
  mbv2_engine* engine = create(labelled_model());
  size_t height = 0, width = 0, classes = 0;
  ASSERT_EQ(mbv2_engine_get_input_size(engine, &height, &width), MBV2_STATUS_OK);
  EXPECT_EQ(height, 224u);
  EXPECT_EQ(width, 192u);
  ASSERT_EQ(mbv2_engine_get_num_classes(engine, &classes), MBV2_STATUS_OK);
  EXPECT_EQ(classes, kClasses);
  mbv2_preprocess p;
  ASSERT_EQ(mbv2_engine_get_preprocess(engine, &p), MBV2_STATUS_OK);
  EXPECT_EQ(p.crop_fraction, 0.875);
  EXPECT_EQ(p.mean[2], 0.406);
  EXPECT_EQ(p.std[0], 0.229);
  const char* label = nullptr;
  ASSERT_EQ(mbv2_engine_get_label(engine, 16, &label), MBV2_STATUS_OK);
  EXPECT_STREQ(label, "class 16");
  const char* isa = nullptr;
  ASSERT_EQ(mbv2_engine_get_isa(engine, &isa), MBV2_STATUS_OK);
  EXPECT_STREQ(isa, "ref");
  mbv2_engine_destroy(engine);
}

TEST(CApi, NoLabelsGivesNull) {
  mbv2_engine* engine = create(model());
  const char* label = "unset";
  ASSERT_EQ(mbv2_engine_get_label(engine, 0, &label), MBV2_STATUS_OK);
  EXPECT_EQ(label, nullptr);
  mbv2_engine_destroy(engine);
}

TEST(CApi, RunGivesFiniteLogitsThatDependOnTheImage) {
  mbv2_engine* engine = create(model());
  const auto a = run(engine, random_images(1, kSide, kSide, 1), 1);
  const auto b = run(engine, random_images(1, kSide, kSide, 2), 1);
  for (float v : a) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NE(a, b);
  mbv2_engine_destroy(engine);
}

TEST(CApi, BatchNhwcAndNchwAgree) {
  mbv2_engine* engine = create(model());
  const auto x = random_images(3, kSide, kSide, 3);
  const auto batch = run(engine, x, 3);
  EXPECT_EQ(run(engine, to_nhwc(x, 3), 3, MBV2_LAYOUT_NHWC), batch);
  const std::vector<float> third(x.begin() + 2 * 3 * kSide * kSide, x.end());
  EXPECT_EQ(run(engine, third, 1), std::vector<float>(batch.begin() + 2 * kClasses, batch.end()));
  mbv2_engine_destroy(engine);
}

TEST(CApi, FromMemoryEqualsFromFile) {
  const std::vector<char> bytes = file_bytes(labelled_model());
  mbv2_engine_options options;
  mbv2_engine_options_init(&options);
  options.isa = "ref";
  mbv2_engine* in_memory = nullptr;
  ASSERT_EQ(mbv2_engine_create_from_memory(bytes.data(), bytes.size(), &options, &in_memory), MBV2_STATUS_OK)
      << error_message();
  mbv2_engine* from_file = create(labelled_model());
  const auto x = random_images(1, kSide, kSide, 4);
  EXPECT_EQ(run(in_memory, x, 1), run(from_file, x, 1));
  mbv2_engine_destroy(in_memory);
  mbv2_engine_destroy(from_file);
}

// Issue 18, item 5: under LeakSanitizer (.ci/cpp-tests.sh) any engine, pool,
// plan or arena left behind is reported; every engine gives the first's logits.
TEST(CApi, AThousandEnginesComeAndGo) {
  const std::vector<char> bytes = file_bytes(model());
  const auto x = random_images(1, kSide, kSide, 5);
  std::vector<float> first;
  for (int i = 0; i < 1000; i++) {
    mbv2_engine_options options;
    mbv2_engine_options_init(&options);
    options.threads = 1 + i % 2;  // a pool of workers started and joined every other time
    mbv2_engine* engine = nullptr;
    ASSERT_EQ(mbv2_engine_create_from_memory(bytes.data(), bytes.size(), &options, &engine), MBV2_STATUS_OK)
        << error_message();
    const auto logits = run(engine, x, 1);
    if (first.empty()) first = logits;
    ASSERT_EQ(logits, first) << "engine " << i;
    mbv2_engine_destroy(engine);
  }
}

TEST(CApi, NullOptionsMeanDefaults) {
  mbv2_engine* engine = nullptr;
  ASSERT_EQ(mbv2_engine_create_from_file(model().c_str(), nullptr, &engine), MBV2_STATUS_OK) << error_message();
  const char* isa = nullptr;
  ASSERT_EQ(mbv2_engine_get_isa(engine, &isa), MBV2_STATUS_OK);
  EXPECT_GT(std::strlen(isa), 0u);
  mbv2_engine_destroy(engine);
  mbv2_engine_destroy(nullptr);
}

TEST(CApi, RunsAnInt8FileUnchanged) {
  mbv2_engine* engine = create(fixture("v3_int8_0.35.npz").string());
  const char* precision = nullptr;
  ASSERT_EQ(mbv2_engine_get_precision(engine, &precision), MBV2_STATUS_OK);
  EXPECT_STREQ(precision, "int8");
  const auto x = random_images(2, kSide, kSide, 9);
  const auto logits = run(engine, x, 2);
  EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float v) { return std::isfinite(v); }));
  EXPECT_EQ(run(engine, to_nhwc(x, 2), 2, MBV2_LAYOUT_NHWC), logits);
  mbv2_engine* float_engine = create(model());
  ASSERT_EQ(mbv2_engine_get_precision(float_engine, &precision), MBV2_STATUS_OK);
  EXPECT_STREQ(precision, "float32");
  expect_failure(mbv2_engine_get_precision(engine, nullptr), MBV2_STATUS_INVALID_ARGUMENT, "precision is NULL");
  mbv2_engine_destroy(float_engine);
  mbv2_engine_destroy(engine);
}

// The ISA is checked against the file's precision: an int8 file takes the
// int8-only ISAs (a check before the file was read once judged them as float32
// ISAs and called them unknown). Each runs here or is refused for this CPU.
TEST(CApi, AnInt8FileTakesTheInt8OnlyIsas) {
#if defined(__x86_64__) || defined(_M_X64)
  const char* isas[] = {"avxvnni", "amx"};
#else
  const char* isas[] = {"neondot"};
#endif
  for (const char* isa : isas) {
    mbv2_engine_options options;
    mbv2_engine_options_init(&options);
    options.isa = isa;
    mbv2_engine* engine = nullptr;
    const mbv2_status status = mbv2_engine_create_from_file(fixture("v3_int8_0.35.npz").string().c_str(), &options,
                                                            &engine);
    if (status == MBV2_STATUS_OK) {
      const char* got = nullptr;
      ASSERT_EQ(mbv2_engine_get_isa(engine, &got), MBV2_STATUS_OK);
      EXPECT_STREQ(got, isa);
      mbv2_engine_destroy(engine);
    } else {
      EXPECT_EQ(status, MBV2_STATUS_UNSUPPORTED_ISA) << error_message();
      EXPECT_EQ(error_message().find("unknown"), std::string::npos) << isa << ": " << error_message();
    }
  }
}

// The reference bf16 kernels run on any CPU: the option reaches the core. Its
// accuracy is tested in Python (tests/test_bf16.py), and its logits against
// the Python engine's (tests/test_capi_parity.py): this fixture's weights are
// unnormalised, so its logits (up to 250) move by ~100 for a last-bit change
// anywhere, float32's two ISAs included.
TEST(CApi, RunsBf16WhenAsked) {
  mbv2_engine* engine = create(model(), "ref", "bf16");
  mbv2_engine* float_engine = create(model());
  const char* precision = nullptr;
  ASSERT_EQ(mbv2_engine_get_precision(engine, &precision), MBV2_STATUS_OK);
  EXPECT_STREQ(precision, "bf16");
  const auto x = random_images(2, kSide, kSide, 4);
  const auto logits = run(engine, x, 2);
  EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float v) { return std::isfinite(v); }));
  EXPECT_NE(logits, run(float_engine, x, 2));
  EXPECT_EQ(run(engine, to_nhwc(x, 2), 2, MBV2_LAYOUT_NHWC), logits);
  mbv2_engine_destroy(float_engine);
  mbv2_engine_destroy(engine);
}

TEST(CApiErrors, Bf16ForAnInt8FileOrAnUnknownDtypeIsInvalid) {
  for (const auto& [path, dtype] : {std::pair<std::string, const char*>{fixture("v3_int8_0.35.npz").string(), "bf16"},
                                    {model(), "fp16"}}) {
    mbv2_engine_options options;
    mbv2_engine_options_init(&options);
    options.isa = "ref";
    options.dtype = dtype;
    mbv2_engine* engine = nullptr;
    expect_failure(mbv2_engine_create_from_file(path.c_str(), &options, &engine), MBV2_STATUS_INVALID_ARGUMENT,
                   dtype);
    EXPECT_EQ(engine, nullptr);
  }
}

// ---- every error status ---------------------------------------------------------

TEST(CApiErrors, BadPathIsFileNotFound) {
  const std::string path = fixture("no_such_model.npz").string();
  expect_failure(create_status(path), MBV2_STATUS_FILE_NOT_FOUND, "no_such_model.npz' does not exist");
  EXPECT_EQ(error_message().rfind("mbv2_engine_create_from_file: ", 0), 0u) << "names the function";
}

TEST(CApiErrors, CorruptFilesAreInvalidFormat) {
  expect_failure(create_status(fixture("truncated_half.npz").string()), MBV2_STATUS_INVALID_FORMAT, "truncated");
  expect_failure(create_status(fixture("not_zip.npz").string()), MBV2_STATUS_INVALID_FORMAT, "not a zip");
  expect_failure(create_status(fixture("crc_mismatch.npz").string()), MBV2_STATUS_INVALID_FORMAT, "CRC");
  expect_failure(create_status(fixture("nan_values.npz").string()), MBV2_STATUS_INVALID_FORMAT, "head.bias");
}

TEST(CApiErrors, NetworkTheCoreCannotRunIsInvalidFormat) {
  // base.npz has width 0.01: every layer rounds to 8 channels, so block 0 gets a residual.
  expect_failure(create_status(fixture("base.npz").string()), MBV2_STATUS_INVALID_FORMAT, "cannot run");
}

TEST(CApiErrors, NewerFormatIsUnsupportedVersion) {
  expect_failure(create_status(fixture("bad_version.npz").string()), MBV2_STATUS_UNSUPPORTED_VERSION, "version 4");
}

TEST(CApiErrors, ANetworkTheCoreCannotRunNamesTheFile) {
  // base.npz passes the reader (width 0.01) but gives block 0 a residual the fused stem cannot feed.
  expect_failure(create_status(fixture("base.npz").string()), MBV2_STATUS_INVALID_FORMAT,
                 "base.npz: the engine cannot run this network");
}

TEST(CApiErrors, ABatchWhoseSizeWouldOverflowIsInvalidArgument) {
  // n x 3 x h x w wraps 64 bits for this n; out_len = n x classes does not, so only the size check stops it.
  mbv2_engine* engine = nullptr;
  ASSERT_EQ(mbv2_engine_create_from_file(model().c_str(), nullptr, &engine), MBV2_STATUS_OK);
  size_t classes = 0;
  ASSERT_EQ(mbv2_engine_get_num_classes(engine, &classes), MBV2_STATUS_OK);
  const size_t n = (size_t{1} << 62) / classes;
  float x = 0, out = 0;
  EXPECT_EQ(mbv2_engine_run(engine, &x, n, 8192, 8192, MBV2_LAYOUT_NCHW, &out, n * classes),
            MBV2_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(error_message().find("floats, the most one run takes"), std::string::npos) << error_message();
  mbv2_engine_destroy(engine);
}

TEST(CApiErrors, ThreadsPastTheBoundAreInvalidArgument) {
  // 2^40 threads once came back as OUT_OF_MEMORY after trying to allocate for them.
  for (size_t threads : {size_t{257}, size_t{1} << 40}) {
    expect_failure(create_status(model(), "auto", threads), MBV2_STATUS_INVALID_ARGUMENT,
                   "threads must be between 1 and 256");
  }
}

TEST(CApiErrors, UnknownIsaIsUnsupportedIsa) {
  expect_failure(create_status(model(), "mmx-9000"), MBV2_STATUS_UNSUPPORTED_ISA, "isa 'mmx-9000' is unknown");
}

TEST(CApiErrors, WrongOutputLengthIsInvalidArgument) {
  mbv2_engine* engine = create(model());
  const auto x = random_images(2, kSide, kSide, 5);
  std::vector<float> out(2 * kClasses + 1);
  for (size_t len : {size_t{0}, kClasses, 2 * kClasses - 1, 2 * kClasses + 1}) {
    expect_failure(mbv2_engine_run(engine, x.data(), 2, kSide, kSide, MBV2_LAYOUT_NCHW, out.data(), len),
                   MBV2_STATUS_INVALID_ARGUMENT, "expected n x classes = 2 x 17");
  }
  mbv2_engine_destroy(engine);
}

TEST(CApiErrors, BadInputSizeOrLayoutIsInvalidArgument) {
  mbv2_engine* engine = create(model());
  const auto x = random_images(1, kSide, kSide, 6);
  std::vector<float> out(kClasses);
  expect_failure(mbv2_engine_run(engine, x.data(), 1, 16, 16, MBV2_LAYOUT_NCHW, out.data(), out.size()),
                 MBV2_STATUS_INVALID_ARGUMENT, "between 32 and");
  expect_failure(mbv2_engine_run(engine, x.data(), 0, kSide, kSide, MBV2_LAYOUT_NCHW, out.data(), 0),
                 MBV2_STATUS_INVALID_ARGUMENT, "N = 0");
  expect_failure(mbv2_engine_run(engine, x.data(), 1, kSide, kSide, static_cast<mbv2_layout>(5), out.data(),
                                 out.size()),
                 MBV2_STATUS_INVALID_ARGUMENT, "layout is 5");
  const char* label = nullptr;
  expect_failure(mbv2_engine_get_label(engine, kClasses, &label), MBV2_STATUS_INVALID_ARGUMENT, "out of range");
  mbv2_engine_destroy(engine);
}

// ReLU6 would clamp a NaN or an infinity to a plausible activation, so such
// an input must fail, wherever it sits: any image of a batch, either layout,
// a row loaded by either thread of a team.
TEST(CApiErrors, NanOrInfinityInTheInputIsInvalidArgument) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (size_t threads : {1, 2}) {
    mbv2_engine_options options;
    mbv2_engine_options_init(&options);
    options.threads = threads;
    mbv2_engine* engine = nullptr;
    ASSERT_EQ(mbv2_engine_create_from_file(model().c_str(), &options, &engine), MBV2_STATUS_OK);
    for (size_t n : {1, 3}) {
      const auto clean = random_images(n, kSide, kSide, 8);
      std::vector<float> out(n * kClasses);
      for (mbv2_layout layout : {MBV2_LAYOUT_NCHW, MBV2_LAYOUT_NHWC}) {
        // The last value of the batch, the first, and a green one in the middle of the first image.
        for (size_t at : {clean.size() - 1, size_t{0}, kSide * kSide + kSide * kSide / 2}) {
          for (float bad : {nan, inf, -inf}) {
            auto x = clean;
            x[at] = bad;
            expect_failure(mbv2_engine_run(engine, x.data(), n, kSide, kSide, layout, out.data(), out.size()),
                           MBV2_STATUS_INVALID_ARGUMENT, "holds 1 NaN or infinite values");
          }
        }
        EXPECT_EQ(mbv2_engine_run(engine, clean.data(), n, kSide, kSide, layout, out.data(), out.size()),
                  MBV2_STATUS_OK);
      }
    }
    mbv2_engine_destroy(engine);
  }
}

TEST(CApiErrors, NullPointersAreInvalidArgument) {
  mbv2_engine* engine = create(model());
  const auto x = random_images(1, kSide, kSide, 7);
  std::vector<float> out(kClasses);
  size_t size = 0;
  const char* text = nullptr;
  mbv2_preprocess p;
  mbv2_engine* created = nullptr;
  const char bytes[] = "PK";
  const mbv2_status invalid = MBV2_STATUS_INVALID_ARGUMENT;
  expect_failure(mbv2_engine_options_init(nullptr), invalid, "options is NULL");
  expect_failure(mbv2_engine_create_from_file(nullptr, nullptr, &created), invalid, "path is NULL");
  expect_failure(mbv2_engine_create_from_file(model().c_str(), nullptr, nullptr), invalid, "engine is NULL");
  expect_failure(mbv2_engine_create_from_memory(nullptr, 10, nullptr, &created), invalid, "data is NULL");
  expect_failure(mbv2_engine_create_from_memory(bytes, 2, nullptr, nullptr), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_input_size(nullptr, &size, &size), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_input_size(engine, nullptr, &size), invalid, "height is NULL");
  expect_failure(mbv2_engine_get_input_size(engine, &size, nullptr), invalid, "width is NULL");
  expect_failure(mbv2_engine_get_num_classes(nullptr, &size), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_num_classes(engine, nullptr), invalid, "num_classes is NULL");
  expect_failure(mbv2_engine_get_preprocess(nullptr, &p), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_preprocess(engine, nullptr), invalid, "preprocess is NULL");
  expect_failure(mbv2_engine_get_label(nullptr, 0, &text), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_label(engine, 0, nullptr), invalid, "label is NULL");
  expect_failure(mbv2_engine_get_isa(nullptr, &text), invalid, "engine is NULL");
  expect_failure(mbv2_engine_get_isa(engine, nullptr), invalid, "isa is NULL");
  expect_failure(mbv2_engine_run(nullptr, x.data(), 1, kSide, kSide, MBV2_LAYOUT_NCHW, out.data(), kClasses),
                 invalid, "mbv2_engine_run: engine is NULL");
  expect_failure(mbv2_engine_run(engine, nullptr, 1, kSide, kSide, MBV2_LAYOUT_NCHW, out.data(), kClasses),
                 invalid, "input is NULL");
  expect_failure(mbv2_engine_run(engine, x.data(), 1, kSide, kSide, MBV2_LAYOUT_NCHW, nullptr, kClasses),
                 invalid, "out is NULL");
  EXPECT_EQ(created, nullptr);
  mbv2_engine_destroy(engine);
}

TEST(CApiErrors, LastErrorIsPerThread) {
  expect_failure(mbv2_engine_options_init(nullptr), MBV2_STATUS_INVALID_ARGUMENT, "options is NULL");
  std::string other;
  std::thread([&] {
    other = error_message();
    mbv2_engine_get_isa(nullptr, nullptr);
  }).join();
  EXPECT_EQ(other, "");
  EXPECT_NE(error_message().find("options is NULL"), std::string::npos) << "another thread's failure leaked in";
}

// ---- the C++ wrapper ---------------------------------------------------------------

TEST(CppWrapper, RunsLikeTheCApi) {
  const mbv2::Engine engine(labelled_model(), mbv2::Options{1, "ref"});
  EXPECT_EQ(engine.num_classes(), kClasses);
  EXPECT_EQ(engine.input_height(), 224u);
  EXPECT_EQ(engine.input_width(), 192u);
  EXPECT_EQ(engine.preprocess().crop_fraction, 0.875);
  EXPECT_EQ(engine.isa(), "ref");
  ASSERT_EQ(engine.labels().size(), kClasses);
  EXPECT_EQ(engine.labels()[3], "class 3");
  const auto x = random_images(2, kSide, kSide, 8);
  mbv2_engine* c_engine = create(labelled_model());
  EXPECT_EQ(engine.run(x.data(), 2, kSide, kSide), run(c_engine, x, 2));
  mbv2_engine_destroy(c_engine);
}

TEST(CppWrapper, FromMemoryMovesAndHasNoLabels) {
  const std::vector<char> bytes = file_bytes(model());
  mbv2::Engine engine = mbv2::Engine::from_memory(bytes.data(), bytes.size());
  EXPECT_TRUE(engine.labels().empty());
  mbv2::Engine moved(std::move(engine));
  EXPECT_EQ(moved.num_classes(), kClasses);
  EXPECT_EQ(engine.get(), nullptr);
}

TEST(CppWrapper, ThrowsWithTheStatusAndMessage) {
  try {
    mbv2::Engine engine(fixture("bad_version.npz").string());
    FAIL() << "no exception";
  } catch (const mbv2::Exception& e) {
    EXPECT_EQ(e.status(), MBV2_STATUS_UNSUPPORTED_VERSION);
    EXPECT_NE(std::string(e.what()).find("bad_version.npz"), std::string::npos) << e.what();
  }
  const mbv2::Engine engine(model(), mbv2::Options{1, "ref"});
  const auto x = random_images(1, kSide, kSide, 9);
  EXPECT_THROW(engine.run(x.data(), 1, 8, 8), mbv2::Exception);
  EXPECT_THROW(mbv2::Engine(model(), mbv2::Options{1, "mmx-9000"}), mbv2::Exception);
}

}  // namespace
