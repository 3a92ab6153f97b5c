// Tests of the C++ weight-file reader (csrc/io) on fixtures written by numpy:
// tests/cpp/make_fixtures.py, run by ctest before these, puts them in
// $MBV2_FIXTURE_DIR together with manifest.json (every file's expected verdict,
// the architecture from its own copy of the paper's table, and a few values of
// every array).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/network.h"
#include "core/status.h"
#include "fixtures.h"
#include "io/npy.h"
#include "io/weight_file.h"
#include "io/zip_reader.h"

// The largest single allocation since the last reset: the reader must not
// allocate what a hostile file declares before checking it.
static std::atomic<std::size_t> g_largest_allocation{0};

void* operator new(std::size_t n) {
  std::size_t seen = g_largest_allocation.load();
  while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace mbv2::io {
namespace {

using nlohmann::json;
using mbv2::test::fixture;

const json& manifest() {
  static const json parsed = json::parse(std::ifstream(fixture("manifest.json")));
  return parsed;
}

std::vector<std::uint8_t> file_bytes(const std::string& name) {
  std::ifstream file(fixture(name), std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The verdict of loading `load`: "ok" or the error's status_string.
template <typename Load>
std::string verdict(Load load) {
  try {
    load();
    return "ok";
  } catch (const Error& e) {
    return status_string(e.status());
  }
}

// Runs `load` and expects an mbv2::Error with `status` whose message contains `fragment`.
template <typename Load>
void expect_error(Load load, Status status, const std::string& fragment) {
  try {
    load();
    ADD_FAILURE() << "no error; expected " << status_string(status) << ": " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(status_string(e.status()), std::string(status_string(status))) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message: " << e.what() << "\nexpected it to contain: " << fragment;
  }
}

// ---- architecture --------------------------------------------------------------

// The manifest's architecture comes from make_fixtures.py's own copy of the
// paper's table, so this compares two independent implementations.
TEST(Arch, MatchesTheTableForEveryWidth) {
  for (const auto& [width, expected] : manifest()["arch"].items()) {
    SCOPED_TRACE("width_mult " + width);
    NetworkSpec arch = mobilenet_v2(std::stod(width), 1000);
    EXPECT_EQ(arch.stem, expected["stem"].get<size_t>());
    EXPECT_EQ(arch.last, expected["last"].get<size_t>());
    ASSERT_EQ(arch.blocks.size(), expected["blocks"].size());
    for (std::size_t i = 0; i < arch.blocks.size(); ++i) {
      const BlockSpec& b = arch.blocks[i];
      EXPECT_EQ((std::vector<size_t>{b.cin, b.t, b.cout, b.stride}), expected["blocks"][i].get<std::vector<size_t>>())
          << "block " << i;
    }
  }
  EXPECT_EQ(manifest()["arch"].size(), 6u);
}

TEST(Arch, MakeDivisibleMatchesTheOracle) {
  for (const json& sample : manifest()["make_divisible"]) {
    EXPECT_EQ(make_divisible(sample[0].get<double>()), sample[1].get<size_t>()) << "v = " << sample[0];
  }
}

TEST(Arch, BlockFlagsFollowTheTable) {
  NetworkSpec arch = mobilenet_v2(1.0, 1000);
  EXPECT_FALSE(arch.blocks[0].has_expand());  // t = 1
  EXPECT_FALSE(arch.blocks[1].residual());    // stride 2
  EXPECT_TRUE(arch.blocks[2].residual());     // 24 -> 24, stride 1
  EXPECT_EQ(arch.blocks[16].hidden(), 960);
}

// ---- valid files -----------------------------------------------------------------

void expect_matches_manifest(const WeightFile& file, const json& expected) {
  json meta = expected["meta"];
  EXPECT_EQ(file.meta.version, meta["version"].get<int>());
  if (meta["version"] == 1) {  // handed on as version 2 would say it
    meta["hidden"] = json::array();
    meta["activation"] = "none";
  }
  if (meta["version"] < 3) meta["quantization"] = nullptr;  // and as version 3 would
  EXPECT_EQ(file.meta.width_mult, meta["width_mult"].get<double>());
  EXPECT_EQ(file.meta.num_classes, meta["num_classes"].get<int>());
  EXPECT_EQ(json::parse(file.meta.json), meta);
  EXPECT_EQ(file.meta.activation, meta["activation"].get<std::string>());
  ASSERT_EQ(file.network.hidden.size(), meta["hidden"].size());
  for (size_t j = 0; j < file.network.hidden.size(); j++) {
    EXPECT_EQ(file.network.hidden[j].units, meta["hidden"][j]["units"].get<size_t>());
  }
  EXPECT_EQ(file.meta.input_height, meta["input_size"][0].get<int>());
  EXPECT_EQ(file.meta.input_width, meta["input_size"][1].get<int>());
  const json& padding = meta["padding"];
  ASSERT_EQ(file.meta.padding.size(), padding.is_string() ? 1 : padding.size());
  for (size_t i = 0; i < file.meta.padding.size(); i++) {
    const PadRule& rule = file.meta.padding[i];
    const json& want = padding.is_string() ? padding : padding[i];
    EXPECT_EQ(rule.same, want == "same");
    if (want.is_array()) {
      EXPECT_EQ(std::vector<size_t>({rule.top, rule.bottom, rule.left, rule.right}), want.get<std::vector<size_t>>());
    } else if (want == "torch") {
      EXPECT_EQ(std::vector<size_t>({rule.top, rule.bottom, rule.left, rule.right}), std::vector<size_t>(4, 1));
    }
  }
  EXPECT_EQ(file.meta.preprocess.crop_fraction, meta["preprocess"]["crop_fraction"].get<double>());
  EXPECT_EQ(file.meta.preprocess.std[2], meta["preprocess"]["std"][2].get<double>());
  EXPECT_EQ(json::parse(file.meta.source), meta["source"]);
  EXPECT_EQ(file.meta.labels.has_value(), !meta["labels"].is_null());
  if (file.meta.labels) EXPECT_EQ(*file.meta.labels, meta["labels"].get<std::vector<std::string>>());
  EXPECT_EQ(file.network.stem, mobilenet_v2(file.meta.width_mult, file.meta.num_classes).stem);

  ASSERT_EQ(file.arrays.size(), expected["values"].size());
  for (const auto& [name, shape] : member_shapes(file.network)) {
    const Tensor& t = file.arrays.at(name);
    const json& v = expected["values"][name];
    EXPECT_EQ(t.shape, shape) << name;
    ASSERT_FALSE(t.data.empty()) << name;
    EXPECT_EQ(t.data.front(), v[0].get<float>()) << name;
    EXPECT_EQ(t.data.back(), v[1].get<float>()) << name;
    double sum = 0;
    for (float x : t.data) sum += x;
    EXPECT_NEAR(sum, v[2].get<double>(), 1e-9 * t.data.size()) << name;
  }
}

TEST(WeightFile, LoadsEveryValidFixture) {
  for (const json& expected : manifest()["valid"]) {
    SCOPED_TRACE(expected["file"].get<std::string>());
    expect_matches_manifest(load_weight_file(fixture(expected["file"])), expected);
  }
  // Every width stored, two of them compressed too, and two version-2 files.
  EXPECT_EQ(manifest()["valid"].size(), 10u);
}

void expect_same_arrays(const WeightFile& a, const WeightFile& b) {
  ASSERT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [name, tensor] : a.arrays) {
    EXPECT_EQ(tensor.shape, b.arrays.at(name).shape) << name;
    EXPECT_EQ(tensor.data, b.arrays.at(name).data) << name;
  }
}

TEST(WeightFile, LoadsFromMemoryAsFromFile) {
  for (const char* name : {"base.npz", "base_compressed.npz"}) {
    std::vector<std::uint8_t> bytes = file_bytes(name);
    WeightFile from_memory = load_weight_file_from_memory(bytes.data(), bytes.size());
    expect_same_arrays(from_memory, load_weight_file(fixture(name)));
    EXPECT_EQ(from_memory.meta.labels->size(), 3u);
  }
}

TEST(WeightFile, StoredAndDeflateGiveTheSameArrays) {
  expect_same_arrays(load_weight_file(fixture("base.npz")), load_weight_file(fixture("base_compressed.npz")));
}

TEST(WeightFile, ReadsAZip64CentralDirectory) {
  expect_same_arrays(load_weight_file(fixture("zip64.npz")), load_weight_file(fixture("base.npz")));
}

TEST(WeightFile, ReadsNpyVersion2) {
  expect_same_arrays(load_weight_file(fixture("npy_version2.npz")), load_weight_file(fixture("base.npz")));
}

// ---- refusals --------------------------------------------------------------------

TEST(WeightFile, MissingFileIsFileNotFound) {
  expect_error([] { load_weight_file(fixture("no_such_file.npz")); }, Status::kFileNotFound, "does not exist");
}

TEST(WeightFile, DirectoryIsInvalidFormat) {
  expect_error([] { load_weight_file(fixture("")); }, Status::kInvalidFormat, "is not a file");
}

TEST(WeightFile, NullBufferIsInvalidArgument) {
  expect_error([] { load_weight_file_from_memory(nullptr, 10); }, Status::kInvalidArgument, "NULL");
  expect_error([] { load_weight_file_from_memory(nullptr, 0); }, Status::kInvalidFormat, "not a zip");
}

TEST(WeightFile, FileErrorsNameThePath) {
  std::string path = fixture("bad_json.npz");
  expect_error([&] { load_weight_file(path); }, Status::kInvalidFormat, path + ": ");
}

// ---- every fixture's verdict ---------------------------------------------------

constexpr Status kFormat = Status::kInvalidFormat;

// Every file make_fixtures.py wrote, loaded, gives the verdict its manifest records.
TEST(WeightFileFixtures, EveryFileHasTheManifestsVerdict) {
  const json& expected = manifest()["expected"];
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fixture(""))) {
    if (entry.path().extension() != ".npz") continue;
    const std::string name = entry.path().filename().string();
    ++files;
    ASSERT_TRUE(expected.contains(name)) << name << " has no verdict in manifest.json";
    EXPECT_EQ(verdict([&] { load_weight_file(entry.path().string()); }), expected[name].get<std::string>()) << name;
  }
  EXPECT_EQ(files, expected.size());
}

TEST(WeightFileFixtures, FromMemoryAsFromFile) {
  for (const auto& [name, want] : manifest()["expected"].items()) {
    std::vector<std::uint8_t> bytes = file_bytes(name);
    EXPECT_EQ(verdict([&] { load_weight_file_from_memory(bytes.data(), bytes.size()); }), want.get<std::string>())
        << name;
  }
}

// Nothing a file declares is allocated before it is checked: refusing a file
// never allocates more than the file's own size plus the directory limit (a
// 17 MiB metadata compressed to 17 KB, a 5 GiB deflate member, a header
// claiming 10^12 bytes all cost that much at most).
TEST(WeightFileFixtures, RefusalsAllocateNoMoreThanTheFileHolds) {
  for (const auto& [name, want] : manifest()["expected"].items()) {
    if (want == "ok") continue;
    const std::string path = fixture(name).string();
    g_largest_allocation = 0;
    verdict([&] { load_weight_file(path); });
    EXPECT_LE(g_largest_allocation.load(), std::filesystem::file_size(path) + kMaxDirectoryBytes) << name;
  }
}

// A 3 GiB file of zeros (a hole: no disk space) is refused from its last 64 KiB.
TEST(WeightFile, RefusesASparse3GiBFileQuickly) {
  const std::filesystem::path path = fixture("sparse_3gib.tmp");  // not .npz: not one of the fixtures
  std::ofstream{path, std::ios::binary};
  std::filesystem::resize_file(path, manifest()["sparse"]["size"].get<std::uintmax_t>());
  g_largest_allocation = 0;
  auto start = std::chrono::steady_clock::now();
  expect_error([&] { load_weight_file(path.string()); }, kFormat, "no end-of-central-directory record");
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::filesystem::remove(path);
  EXPECT_LT(took.count(), 1.0);
  EXPECT_LT(g_largest_allocation.load(), std::size_t{1} << 20);
}

// ---- the messages: each names the culprit and what was expected -----------------

struct CorruptCase {
  const char* file;
  const char* fragment;
};

const CorruptCase kCorruptCases[] = {
    // the zip structure
    {"truncated_half", "truncated or corrupt zip archive: no end-of-central-directory record"},
    {"truncated_tail", "no end-of-central-directory record"},
    {"trailing_garbage", "no end-of-central-directory record"},
    {"not_zip", "not a zip/npz archive"},
    {"empty", "not a zip/npz archive"},
    {"prefix_junk", "it does not start with a local file header: bytes before the first member?"},
    {"prefix_garbage", "does not end where the end record begins"},
    {"directory_size_wrong", "does not end where the end record begins"},
    {"directory_offset_wrong", "does not end where the end record begins"},
    {"eocd_count_low", "bytes after the 106 entries the end record declares"},
    {"eocd_count_high", "central directory ends early"},
    {"eocd_count_huge", "it declares 60000 members, more than the limit of 1024"},
    {"directory_too_small", "cannot hold the 500 entries the end record declares"},
    {"duplicate_member", "member 'stem.bias.npy' appears twice"},
    {"nul_in_name", "member name 'stem.bias\\x00npy' contains a NUL byte"},
    {"encrypted", "member 'head.weight.npy' is encrypted"},
    {"method_99", "member 'head.weight.npy' uses compression method 99; only stored (0) and deflate (8)"},
    {"method_bzip2", "uses compression method 12"},
    {"method_lzma", "uses compression method 14"},
    {"stored_past_end", "member 'head.weight.npy' declares 1073741824 bytes at offset"},
    {"deflate_claims_5gib", "member 'head.weight.npy' declares 5368709120 bytes inflated from"},
    {"deflate_beyond_shape", "member 'stem.bias' is"},
    {"local_name_mismatch", "the local header of 'head.weight.npy' names a different member, 'head.weight.npz'"},
    {"local_method_mismatch", "the local header of 'head.weight.npy' disagrees with the central directory on the "
                              "compression method"},
    {"local_size_mismatch", "disagrees with the central directory on the CRC-32 or sizes"},
    {"local_crc_mismatch", "disagrees with the central directory on the CRC-32 or sizes"},
    {"crc_mismatch", "member 'head.weight.npy' fails its CRC-32 check"},
    {"bad_deflate", "member 'head.weight.npy'"},  // corrupt deflate data or, as here, a CRC mismatch
    {"deflate_shorter_than_declared", "member 'head.weight.npy' inflates to fewer bytes than its declared size"},
    {"deflate_longer_than_declared", "member 'head.weight.npy' inflates to more than its declared size"},
    // the .npy members
    {"trailing_bytes", "member 'stem.bias' has trailing bytes: 36 bytes of data for shape (8,), expected 32"},
    {"payload_short", "member 'stem.bias' is truncated: 28 bytes of data for shape (8,), expected 32"},
    {"descr_native", "member 'stem.bias' has dtype =f4, expected little-endian float32 (<f4)"},
    {"descr_no_order", "member 'stem.bias' has dtype |f4"},
    {"descr_name", "member 'stem.bias' has dtype float32"},
    {"npy_repeated_key", "member 'stem.bias' is not a valid .npy array: unexpected or repeated header key 'shape'"},
    {"npy_comment", "member 'stem.bias' is not a valid .npy array: malformed header"},
    {"npy_unclosed_paren", "member 'stem.bias' is not a valid .npy array: malformed header"},
    {"npy_version3", "member 'stem.bias' is not a valid .npy array: .npy version (3, 0)"},
    {"member_without_npy", "unexpected member 'stem.bias': every member of a weight file is NAME.npy"},
    {"missing_member", "wrong array members for this architecture: missing ['blocks.3.project.bias']"},
    {"extra_member", "wrong array members for this architecture: unexpected ['extra.weight']"},
    {"expand_on_t1", "unexpected ['blocks.0.expand.weight']"},
    {"wrong_shape", "member 'stem.weight' has shape (3, 3, 3, 16), expected (8, 3, 3, 3)"},
    {"wrong_dtype", "member 'stem.bias' has dtype <f8, expected little-endian float32 (<f4)"},
    {"big_endian", "member 'stem.bias' has dtype >f4"},
    {"fortran_order", "member 'head.weight' is stored in Fortran order, expected C order"},
    {"object_array", "member 'stem.bias' is a pickled object array; weight files never hold pickles"},
    {"nan_values", "member 'head.bias' has 4 NaN or infinite values"},
    // the metadata member
    {"no_meta", "no '__meta__' member: not an mbv2-engine weight file"},
    {"meta_wrong_dtype", "member '__meta__' must be a 1-D uint8 array (|u1), got <i4 (4,)"},
    {"meta_descr_native", "member '__meta__' must be a 1-D uint8 array (|u1), got =u1"},
    {"meta_shape_1e12", "member '__meta__' is truncated: "},
    {"meta_shape_1e15", "member '__meta__' is not a valid .npy array: a dimension of the shape is implausibly large"},
    {"meta_shape_2e64", "member '__meta__' is not a valid .npy array: a dimension of the shape is implausibly large"},
    {"meta_too_large", "more than the metadata limit of 16777216 bytes and a .npy header can take"},
    {"meta_bom", "'__meta__' must be plain UTF-8 JSON, without a byte-order mark"},
    {"meta_trailing_nul", "'__meta__' must be plain UTF-8 JSON: it has a NUL byte at offset"},
    {"meta_deep_json", "'__meta__' must be plain UTF-8 JSON nested at most 32 deep"},
    {"meta_depth_33", "nested at most 32 deep"},
    {"bad_json", "'__meta__' is not UTF-8 JSON"},
    {"not_utf8", "'__meta__' is not UTF-8 JSON"},
    {"meta_overlong_utf8", "'__meta__' is not UTF-8 JSON"},
    {"meta_number_overflow", "'__meta__' is not UTF-8 JSON: [json.exception.out_of_range.406] number overflow"},
    {"meta_integer_overflow", "'__meta__' is not UTF-8 JSON: [json.exception.out_of_range.406] number overflow"},
    {"version_400_digits", "number overflow"},
    {"meta_not_object", "metadata must be a JSON object, got array"},
    // the metadata's values
    {"bad_version", "version 4; this mbv2-engine reads versions 1 to 3"},
    {"version_1e30", "version 1e+30; this mbv2-engine reads versions 1 to 3"},
    {"version_1e30_float", "version 1e+30; this mbv2-engine reads versions 1 to 3"},
    {"version_4_float", "version 4.0; this mbv2-engine reads versions 1 to 3"},
    {"version_1_float", "metadata 'version' must be a positive integer, got 1.0"},
    {"version_fraction", "metadata 'version' must be a positive integer, got 1.5"},
    {"version_negative", "metadata 'version' must be a positive integer, got -3"},
    {"version_zero", "metadata 'version' must be a positive integer, got 0"},
    {"version_string", "metadata 'version' must be a positive integer, got '1'"},
    {"wrong_format_name", "metadata 'format' is 'something-else', expected 'mbv2-engine-weights'"},
    {"unknown_meta_key", "metadata: unknown ['color'] keys (format version 1 has exactly"},
    {"missing_meta_key", "metadata: missing ['padding'] keys"},
    {"width_too_large", "'width_mult' must be a number in (0, 4.0], got 4.5"},
    {"width_bool", "'width_mult' must be a number in (0, 4.0], got True"},
    {"classes_zero", "'num_classes' must be an integer in [1, 100000], got 0"},
    {"input_too_small", "'input_size' must be [H, W] with integers in [32, 4096], got [16, 224]"},
    {"bad_padding", "'padding' must be one of ['torch', 'same'], got 'valid'"},
    {"crop_too_large", "'preprocess.crop_fraction' must be a number in [0.05, 1], got 1.5"},
    {"std_zero", "'preprocess' mean and std must be 3 numbers each, every mean in [-1000.0, 1000.0] and every std in "
                 "[0.001, 1000.0]"},
    {"preprocess_unknown_key", "metadata 'preprocess': unknown ['gamma'] keys"},
    {"labels_wrong_count", "'labels' must be null or a list of num_classes = 3 strings"},
    {"source_not_object", "'source' must be an object, got 'a camera'"},
    {"v2_no_hidden", "unexpected ['hidden.0.bias', 'hidden.0.weight', 'hidden.1.bias', 'hidden.1.weight']"},
    {"v2_missing_activation", "metadata: missing ['activation'] keys (format version 2 has exactly"},
    {"v1_with_hidden_keys", "metadata: unknown ['activation', 'hidden'] keys (format version 1 has exactly"},
    {"v1_padding_list", "'padding' must be one of ['torch', 'same'], got ['same', [0, 1, 0, 1]"},
    {"v2_padding_rule_2", "or a list of 5 rules, each 'same' or [top, bottom, left, right] of 0 or 1, got"},
    {"v2_padding_four_rules", "or a list of 5 rules"},
    {"v2_padding_valid", "got ['valid', [0, 1, 0, 1]"},
    {"v2_padding_bool", "got ['same', [False, True, 0, 1]"},
    {"v2_hidden_units_zero", "'hidden[0]' 'units' must be an integer in [1, 4096], got 0"},
    {"v2_hidden_units_too_many", "'hidden[0]' 'units' must be an integer in [1, 4096], got 4097"},
    {"v2_hidden_too_many_layers", "'hidden' must be a list of at most 8 layers"},
    {"v2_hidden_tanh", "'hidden[0]' 'activation' must be one of ['relu', 'relu6', 'none'], got 'tanh'"},
    {"v2_hidden_unknown_key", "metadata 'hidden[0]': unknown ['dropout'] keys (format version 2 has exactly"},
    {"v2_output_relu", "'activation' must be one of ['none', 'softmax', 'sigmoid'], got 'relu'"},
    {"v2_hidden_wrong_shape", "member 'hidden.1.weight' has shape (16, 25), expected (16, 24)"},
    {"v2_hidden_member_missing", "missing ['hidden.0.bias']"},
    {"v3_missing_quantization", "metadata: missing ['quantization'] keys (format version 3 has exactly"},
    {"v2_with_quantization", "metadata: unknown ['quantization'] keys (format version 2 has exactly"},
    {"v3_scale_zero", "'quantization.tensors[0]' must be [scale, zero_point] with scale in [1e-09, 1000000000.0] "
                      "and zero_point 0 (a ReLU6 output), got [0.0, 0]"},
    {"v3_scale_negative", "'quantization.tensors[4]' must be [scale, zero_point]"},
    {"v3_scale_huge", "'quantization.tensors[5]' must be [scale, zero_point]"},
    {"v3_zero_point_300", "zero_point an integer in [0, 255], got [0.05, 300]"},
    {"v3_zero_point_after_relu6", "'quantization.tensors[3]' must be [scale, zero_point] with scale in"},
    {"v3_zero_point_float", "got [0.05, 120.5]"},
    {"v3_tensors_short", "'quantization.tensors' must list 52 [scale, zero_point] pairs, one per activation "
                         "tensor, got 51 entries"},
    {"v3_layers_stem_int8", "'quantization' must have 'weights': 'int8-symmetric-per-channel'"},
    {"v3_weights_asymmetric", "got 'int8-asymmetric'"},
    {"v3_unknown_key", "metadata 'quantization': unknown ['bits'] keys"},
    {"v3_calibration_samples_zero", "'quantization.calibration' needs a string 'method' and an integer 'samples'"},
    {"v3_weight_float", "member 'blocks.1.expand.weight' has dtype <f4, expected int8 (|i1)"},
    {"v3_weight_uint8", "member 'blocks.1.expand.weight' has dtype |u1, expected int8 (|i1)"},
    {"v3_weight_minus_128", "values of -128; int8 weights are symmetric, in [-127, 127]"},
    {"v3_weight_scale_zero", "member 'blocks.1.expand.weight_scale' has 48 scales outside [1e-09, 1000000000.0]"},
    {"v3_weight_scale_nan", "member 'head.weight_scale' has 1280 NaN or infinite values"},
    {"v3_weight_scale_missing", "missing ['head.weight_scale']"},
    {"v3_stem_int8", "member 'stem.weight' has dtype |i1, expected little-endian float32 (<f4)"},
};

class RejectsCorruptFile : public testing::TestWithParam<CorruptCase> {};

// The status comes from the manifest, the message fragment from the table above.
TEST_P(RejectsCorruptFile, WithStatusAndMessage) {
  const std::string name = std::string(GetParam().file) + ".npz";
  const std::string status = manifest()["expected"].at(name);
  ASSERT_NE(status, "ok");
  Status want = status == "unsupported version" ? Status::kUnsupportedVersion : kFormat;
  expect_error([&] { load_weight_file(fixture(name)); }, want, GetParam().fragment);
}

INSTANTIATE_TEST_SUITE_P(WeightFile, RejectsCorruptFile, testing::ValuesIn(kCorruptCases),
                         [](const testing::TestParamInfo<CorruptCase>& info) { return std::string(info.param.file); });

TEST(WeightFile, EveryRefusedFixtureHasAMessageCase) {
  std::set<std::string> cased;
  for (const CorruptCase& c : kCorruptCases) cased.insert(std::string(c.file) + ".npz");
  for (const auto& [name, want] : manifest()["expected"].items()) {
    if (want != "ok") EXPECT_TRUE(cased.count(name)) << name << " is refused but kCorruptCases has no message for it";
  }
}

// ---- metadata as the Python package receives it ------------------------------------

TEST(WeightFile, MetadataJsonIsTheValidatedObject) {
  WeightFile file = load_weight_file(fixture("meta_unicode.npz"));
  json meta = json::parse(file.meta.json);
  EXPECT_EQ(meta["source"]["file"], "r\u00e9seau \u2603 \U0001f600.pth");
  EXPECT_EQ(meta["source"]["note"], std::string("tab\t quote\" nul\0", 16));
  EXPECT_EQ(meta["source"]["big"].get<std::uint64_t>(), ~std::uint64_t{0});
  EXPECT_EQ(file.meta.json.find('\0'), std::string::npos);  // the NUL is written as \u0000
  EXPECT_EQ(json::parse(file.meta.source), meta["source"]);
  EXPECT_NE(load_weight_file(fixture("meta_depth_32.npz")).meta.json.find(std::string(30, '[') + "]"),
            std::string::npos);
}

// ---- .npy headers ------------------------------------------------------------------

std::vector<std::uint8_t> npy_v1(const std::string& header) {
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  return {file.begin(), file.end()};
}

// Both steps, as the reader takes them: the size from the first bytes, then the parse.
NpyHeader parse(const std::vector<std::uint8_t>& bytes) {
  std::size_t size = npy_header_size({bytes.data(), bytes.size()}, "x");
  return parse_npy_header({bytes.data(), std::min(size, bytes.size())}, "x");
}

TEST(Npy, ParsesTheHeaderNumpyWrites) {
  auto bytes = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n");
  NpyHeader header = parse(bytes);
  EXPECT_EQ(header.descr, "<f4");
  EXPECT_FALSE(header.fortran_order);
  EXPECT_EQ(header.shape, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(npy_header_size({bytes.data(), bytes.size()}, "x"), bytes.size());
}

TEST(Npy, AcceptsAnyKeyOrderQuotesAndTupleForm) {
  EXPECT_EQ(parse(npy_v1("{\"shape\": (7,), \"fortran_order\": True, \"descr\": \"|u1\"}")).shape,
            std::vector<std::uint64_t>{7});
  EXPECT_TRUE(parse(npy_v1("{'shape': (), 'fortran_order': True, 'descr': '<f8'}")).shape.empty());
}

TEST(Npy, RefusesMalformedHeaders) {
  const char* headers[] = {
      "{'descr': '<f4', 'fortran_order': False}",                              // a key missing
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",       // an extra key
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",  // a repeated key
      "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}",                      // not a bool
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",               // negative dim
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",               // no comma
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}",         // structured
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,)}",   // absurd dim
      "{'descr': '<f4', 'fortran_order': False, 'shape': ()} junk",            // trailing junk
      "{'descr': '<f4', 'fortran_order': False, 'shape': ()",                   // unterminated
      "{'descr': '<f4\\', 'fortran_order': False, 'shape': ()}",                // an escape
      "{'descr': '<f4', 'fortran_order': False, 'shape': (8, }",                // an unclosed (
      "{'descr': '<f4', 'fortran_order': False, # a comment\n 'shape': ()}",    // a comment
  };
  for (const char* header : headers) {
    expect_error([&] { parse(npy_v1(header)); }, Status::kInvalidFormat, "member 'x' is not a valid .npy array");
  }
}

TEST(Npy, RefusesBadPrefixes) {
  auto bytes = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': ()}");
  expect_error([&] { parse({bytes.begin(), bytes.begin() + 9}); }, kFormat, "too short for a .npy header");
  expect_error([&] { parse({bytes.begin(), bytes.end() - 1}); }, kFormat, "not as long as it says");
  bytes[8] = 0x11;  // a header length of 0x2711 = 10001 bytes: more than numpy's limit
  bytes[9] = 0x27;
  expect_error([&] { parse(bytes); }, kFormat, "more than the limit of 10000");
  bytes[0] = 'X';
  expect_error([&] { parse(bytes); }, kFormat, "magic string");
}

// ---- corrupted bytes: every outcome is a clean load or an mbv2::Error ------------------

// Loads `bytes`; true on success, false on an mbv2::Error. Anything else (another
// exception, or a crash, an over-read under ASan) fails the test.
bool loads_cleanly(const std::vector<std::uint8_t>& bytes, const std::string& what) {
  try {
    load_weight_file_from_memory(bytes.data(), bytes.size());
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": escaped as a non-mbv2 exception: " << e.what();
    return false;
  }
}

// Flips bytes of `file` at the positions `pick` selects, each flip on its own.
template <typename Pick>
void flip_bytes(const char* file, Pick pick) {
  const std::vector<std::uint8_t> original = file_bytes(file);
  int refused = 0;
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    if (!pick(pos, original.size())) continue;
    for (std::uint8_t mask : {0xFF, 0x01}) {
      std::vector<std::uint8_t> bytes = original;
      bytes[pos] ^= mask;
      refused += !loads_cleanly(bytes, "byte " + std::to_string(pos) + " ^ " + std::to_string(mask));
    }
  }
  EXPECT_GT(refused, 0);
}

// The structure: every byte of the central directory and end records (the last
// 8 KB), of the first members' headers, and a sample of the rest.
TEST(ReaderSurvivesCorruption, FlippedBytesStored) {
  flip_bytes("base.npz", [](std::size_t pos, std::size_t size) {
    return pos < 1024 || pos + 8192 >= size || pos % 211 == 0;
  });
}

// The same structure code runs for deflate members; here the compressed data matters.
TEST(ReaderSurvivesCorruption, FlippedBytesDeflate) {
  flip_bytes("base_compressed.npz", [](std::size_t pos, std::size_t) { return pos % 97 == 0; });
}

class SurvivesTruncation : public testing::TestWithParam<const char*> {};

TEST_P(SurvivesTruncation, AnyLength) {
  const std::vector<std::uint8_t> original = file_bytes(GetParam());
  for (std::size_t size = 0; size < original.size(); size += size + 64 < original.size() ? 97 : 1) {
    std::vector<std::uint8_t> bytes(original.begin(), original.begin() + size);
    EXPECT_FALSE(loads_cleanly(bytes, "first " + std::to_string(size) + " bytes")) << size;
  }
}

INSTANTIATE_TEST_SUITE_P(WeightFile, SurvivesTruncation, testing::Values("base.npz", "base_compressed.npz"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param).find("compressed") != std::string::npos ? "Deflate"
                                                                                                  : "Stored";
                         });

}  // namespace
}  // namespace mbv2::io
