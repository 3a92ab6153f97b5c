// Tests of the C++ weight-file reader (csrc/io) on fixtures written by numpy:
// tests/cpp/make_fixtures.py, run by ctest before these, puts them in
// $MBV2_FIXTURE_DIR together with manifest.json (arch.py's results and a few
// values of every array).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures.h"
#include "core/network.h"
#include "io/npy.h"
#include "core/status.h"
#include "io/weight_file.h"
#include "io/zip_reader.h"

namespace mbv2::io {
namespace {

using nlohmann::json;
using mbv2::test::fixture;

const json& manifest() {
  static const json parsed = json::parse(std::ifstream(fixture("manifest.json")));
  return parsed;
}

std::vector<std::uint8_t> file_bytes(const std::string& name) { return read_file_bytes(fixture(name)); }

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

TEST(Arch, MatchesArchPyForEveryWidth) {
  for (const auto& [width, expected] : manifest()["arch"].items()) {
    SCOPED_TRACE("width_mult " + width);
    NetworkSpec arch = mobilenet_v2(std::stod(width), 1000);
    EXPECT_EQ(arch.stem, expected["stem"].get<int>());
    EXPECT_EQ(arch.last, expected["last"].get<int>());
    ASSERT_EQ(arch.blocks.size(), expected["blocks"].size());
    for (std::size_t i = 0; i < arch.blocks.size(); ++i) {
      const BlockSpec& b = arch.blocks[i];
      EXPECT_EQ((std::vector<int>{b.cin, b.t, b.cout, b.stride}), expected["blocks"][i].get<std::vector<int>>())
          << "block " << i;
    }
  }
  EXPECT_EQ(manifest()["arch"].size(), 6u);
}

TEST(Arch, MakeDivisibleMatchesArchPy) {
  for (const json& sample : manifest()["make_divisible"]) {
    EXPECT_EQ(make_divisible(sample[0].get<double>()), sample[1].get<int>()) << "v = " << sample[0];
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
  const json& meta = expected["meta"];
  EXPECT_EQ(file.meta.version, 1);
  EXPECT_EQ(file.meta.width_mult, meta["width_mult"].get<double>());
  EXPECT_EQ(file.meta.num_classes, meta["num_classes"].get<int>());
  EXPECT_EQ(file.meta.input_height, meta["input_size"][0].get<int>());
  EXPECT_EQ(file.meta.input_width, meta["input_size"][1].get<int>());
  EXPECT_EQ(file.meta.padding, meta["padding"] == "torch" ? Padding::Torch : Padding::Same);
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
  EXPECT_EQ(manifest()["valid"].size(), 8u);  // every width stored, two of them compressed too
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

struct CorruptCase {
  const char* file;
  Status status;
  const char* fragment;
};

constexpr Status kFormat = Status::kInvalidFormat;

const CorruptCase kCorruptCases[] = {
    {"truncated_half", kFormat, "truncated or corrupt zip archive: no end-of-central-directory record"},
    {"truncated_tail", kFormat, "no end-of-central-directory record"},
    {"not_zip", kFormat, "not a zip/npz archive"},
    {"empty", kFormat, "not a zip/npz archive"},
    {"crc_mismatch", kFormat, "member 'head.weight.npy' fails its CRC-32 check"},
    {"bad_deflate", kFormat, "member 'head.weight.npy'"},
    {"duplicate_member", kFormat, "member 'stem.bias.npy' appears twice"},
    {"bad_version", Status::kUnsupportedVersion, "version 2; this mbv2-engine reads version 1 only"},
    {"version_zero", kFormat, "metadata 'version' must be a positive integer, got 0"},
    {"version_string", kFormat, "metadata 'version' must be a positive integer, got '1'"},
    {"wrong_format_name", kFormat, "metadata 'format' is 'something-else', expected 'mbv2-engine-weights'"},
    {"unknown_meta_key", kFormat, "metadata: unknown ['color'] keys (format version 1 has exactly"},
    {"missing_meta_key", kFormat, "metadata: missing ['padding'] keys"},
    {"bad_json", kFormat, "'__meta__' is not UTF-8 JSON"},
    {"not_utf8", kFormat, "'__meta__' is not UTF-8 JSON"},
    {"meta_not_object", kFormat, "metadata must be a JSON object, got array"},
    {"meta_wrong_dtype", kFormat, "member '__meta__' must be a 1-D uint8 array, got <i4 (4,)"},
    {"no_meta", kFormat, "no '__meta__' member: not an mbv2-engine weight file"},
    {"width_too_large", kFormat, "'width_mult' must be a number in (0, 4.0], got 4.5"},
    {"width_bool", kFormat, "'width_mult' must be a number in (0, 4.0], got True"},
    {"classes_zero", kFormat, "'num_classes' must be an integer in [1, 100000], got 0"},
    {"input_too_small", kFormat, "'input_size' must be [H, W] with integers in [32, 4096], got [16, 224]"},
    {"bad_padding", kFormat, "'padding' must be one of ['torch', 'same'], got 'valid'"},
    {"crop_too_large", kFormat, "'preprocess.crop_fraction' must be a number in (0, 1], got 1.5"},
    {"std_zero", kFormat, "'preprocess' mean and std must be 3 numbers each, std > 0"},
    {"preprocess_unknown_key", kFormat, "metadata 'preprocess': unknown ['gamma'] keys"},
    {"labels_wrong_count", kFormat, "'labels' must be null or a list of num_classes = 3 strings"},
    {"source_not_object", kFormat, "'source' must be an object, got 'a camera'"},
    {"missing_member", kFormat, "wrong array members for this architecture: missing ['blocks.3.project.bias']"},
    {"extra_member", kFormat, "wrong array members for this architecture: unexpected ['extra.weight']"},
    {"expand_on_t1", kFormat, "unexpected ['blocks.0.expand.weight']"},
    {"wrong_shape", kFormat, "member 'stem.weight' has shape (3, 3, 3, 16), expected (8, 3, 3, 3)"},
    {"wrong_dtype", kFormat, "member 'stem.bias' has dtype <f8, expected little-endian float32 (<f4)"},
    {"big_endian", kFormat, "member 'stem.bias' has dtype >f4"},
    {"fortran_order", kFormat, "member 'head.weight' is stored in Fortran order, expected C order"},
    {"object_array", kFormat, "member 'stem.bias' is a pickled object array; weight files never hold pickles"},
    {"nan_values", kFormat, "member 'head.bias' has 4 NaN or infinite values"},
    {"npy_version3", kFormat, "member 'stem.bias' is not a valid .npy array: .npy version (3, 0)"},
};

class RejectsCorruptFile : public testing::TestWithParam<CorruptCase> {};

TEST_P(RejectsCorruptFile, WithStatusAndMessage) {
  const CorruptCase& c = GetParam();
  expect_error([&] { load_weight_file(fixture(std::string(c.file) + ".npz")); }, c.status, c.fragment);
}

INSTANTIATE_TEST_SUITE_P(WeightFile, RejectsCorruptFile, testing::ValuesIn(kCorruptCases),
                         [](const testing::TestParamInfo<CorruptCase>& info) { return std::string(info.param.file); });

// ---- .npy headers ------------------------------------------------------------------

std::vector<std::uint8_t> npy_v1(const std::string& header, std::size_t payload = 0) {
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header +
                     std::string(payload, '\0');
  return {file.begin(), file.end()};
}

NpyArray parse(const std::vector<std::uint8_t>& bytes) { return parse_npy({bytes.data(), bytes.size()}, "x"); }

TEST(Npy, ParsesTheHeaderNumpyWrites) {
  auto bytes = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n", 24);
  NpyArray array = parse(bytes);
  EXPECT_EQ(array.descr, "<f4");
  EXPECT_FALSE(array.fortran_order);
  EXPECT_EQ(array.shape, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(array.data.size, 24u);
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
  };
  for (const char* header : headers) {
    expect_error([&] { parse(npy_v1(header)); }, Status::kInvalidFormat, "member 'x' is not a valid .npy array");
  }
}

TEST(Npy, RefusesBadPrefixes) {
  auto bytes = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': ()}");
  expect_error([&] { parse({bytes.begin(), bytes.begin() + 9}); }, kFormat, "ends inside the header");
  expect_error([&] { parse({bytes.begin(), bytes.end() - 1}); }, kFormat, "ends inside the header");
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
TEST(SurvivesCorruption, FlippedBytesStored) {
  flip_bytes("base.npz", [](std::size_t pos, std::size_t size) {
    return pos < 1024 || pos + 8192 >= size || pos % 211 == 0;
  });
}

// The same structure code runs for deflate members; here the compressed data matters.
TEST(SurvivesCorruption, FlippedBytesDeflate) {
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
