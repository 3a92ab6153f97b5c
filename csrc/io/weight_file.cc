#include "io/weight_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "io/npy.h"
#include "core/status.h"
#include "io/zip_reader.h"

namespace mbv2::io {
namespace {

using nlohmann::json;
using Shape = std::vector<size_t>;
using Names = std::vector<std::string>;

const std::string kMetaMember = "__meta__";
const std::string kNpySuffix = ".npy";
const Names kMetaKeys = {"format", "version", "width_mult", "num_classes", "input_size",
                         "padding", "preprocess", "labels", "source"};
const Names kPreprocessKeys = {"crop_fraction", "mean", "std"};
const Names kPaddings = {"torch", "same"};
// The metadata of 100000 long labels fits easily; anything larger is not metadata.
constexpr std::uint64_t kMaxMetaSize = std::uint64_t{64} << 20;
// complex128, the widest plain dtype: a member of the right shape but another
// dtype still gets through to the dtype check and its message.
constexpr std::uint64_t kMaxItemSize = 16;
constexpr std::uint64_t kNpyPrefixSize = 12;  // magic, version and a 4-byte header length

[[noreturn]] void fail(const std::string& message) { throw Error(Status::kInvalidFormat, message); }

// ---- messages that read like format.py's (Python reprs) ----------------------

std::string quoted(const std::string& s) { return "'" + s + "'"; }

template <typename Items, typename Render>
std::string join(const Items& items, Render render) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + render(item);
  return out;
}

std::string py_repr(const json& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_string()) return quoted(v.get<std::string>());
  if (v.is_array()) return "[" + join(v, py_repr) + "]";
  if (v.is_object()) {
    return "{" + join(v.items(), [](const auto& kv) { return quoted(kv.key()) + ": " + py_repr(kv.value()); }) + "}";
  }
  return v.dump();
}

std::string py_list(const Names& names) { return "[" + join(names, quoted) + "]"; }

template <typename Dim>
std::string py_tuple(const std::vector<Dim>& shape) {
  return "(" + join(shape, [](Dim d) { return std::to_string(d); }) + (shape.size() == 1 ? ",)" : ")");
}

// ---- metadata -----------------------------------------------------------------

bool is_int(const json& v) { return v.is_number_integer(); }  // JSON booleans are not numbers here
bool is_number(const json& v) { return v.is_number() && std::isfinite(v.get<double>()); }
bool is_int_in(const json& v, double lo, double hi) {
  return is_int(v) && v.get<double>() >= lo && v.get<double>() <= hi;
}
bool is_numbers(const json& v, std::size_t n) {
  return v.is_array() && v.size() == n && std::all_of(v.begin(), v.end(), is_number);
}
bool contains(const Names& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Empty when `have` holds exactly the names in `want`; otherwise every name
// missing (in `want`'s order) and extra (sorted), as format.py's _differences.
std::string differences(std::set<std::string> have, const Names& want, const std::string& extra_word) {
  Names missing;
  for (const std::string& name : want) {
    if (have.erase(name) == 0) missing.push_back(name);
  }
  std::string out = missing.empty() ? "" : "missing " + py_list(missing);
  if (!have.empty()) out += (out.empty() ? "" : ", ") + extra_word + " " + py_list({have.begin(), have.end()});
  return out;
}

void check_keys(const json& object, const Names& keys, const std::string& what) {
  std::set<std::string> have;
  for (const auto& item : object.items()) have.insert(item.key());
  std::string diff = differences(std::move(have), keys, "unknown");
  if (!diff.empty()) {
    fail(what + ": " + diff + " keys (format version " + std::to_string(kFormatVersion) + " has exactly " +
         py_list(keys) + ")");
  }
}

json value_or_null(const json& object, const std::string& key) {
  return object.contains(key) ? object.at(key) : json(nullptr);
}

// Format name and version first: a newer file must say so, not fail on a new key.
void check_version(const json& meta) {
  if (!meta.is_object()) fail("metadata must be a JSON object, got " + std::string(meta.type_name()));
  json format = value_or_null(meta, "format");
  if (format != kFormatName) {
    fail("metadata 'format' is " + py_repr(format) + ", expected " + quoted(kFormatName) +
         ": not an mbv2-engine weight file");
  }
  json version = value_or_null(meta, "version");
  if (!is_int(version) || version.get<double>() < 1) {
    fail("metadata 'version' must be a positive integer, got " + py_repr(version));
  }
  if (version.get<double>() > kFormatVersion) {
    throw Error(Status::kUnsupportedVersion,
                "the file is weight format version " + version.dump() + "; this mbv2-engine reads version " +
                    std::to_string(kFormatVersion) + " only: upgrade mbv2-engine to load it");
  }
}

// The first value outside the limits of docs/format.md, described; empty if all fit.
std::string meta_problem(const json& meta) {
  const json &w = meta["width_mult"], &k = meta["num_classes"], &size = meta["input_size"];
  const json &pre = meta["preprocess"], &labels = meta["labels"];
  if (!(is_number(w) && w.get<double>() > 0 && w.get<double>() <= kMaxWidthMult)) {
    return "'width_mult' must be a number in (0, " + json(kMaxWidthMult).dump() + "], got " + py_repr(w);
  }
  if (!is_int_in(k, kMinClasses, kMaxClasses)) {
    return "'num_classes' must be an integer in [" + std::to_string(kMinClasses) + ", " +
           std::to_string(kMaxClasses) + "], got " + py_repr(k);
  }
  if (!(size.is_array() && size.size() == 2 &&
        std::all_of(size.begin(), size.end(), [](const json& s) { return is_int_in(s, kMinInput, kMaxInput); }))) {
    return "'input_size' must be [H, W] with integers in [" + std::to_string(kMinInput) + ", " +
           std::to_string(kMaxInput) + "], got " + py_repr(size);
  }
  if (!(meta["padding"].is_string() && contains(kPaddings, meta["padding"].get<std::string>()))) {
    return "'padding' must be one of " + py_list(kPaddings) + ", got " + py_repr(meta["padding"]);
  }
  if (!pre.is_object()) return "'preprocess' must be an object, got " + py_repr(pre);
  check_keys(pre, kPreprocessKeys, "metadata 'preprocess'");
  const json& crop = pre["crop_fraction"];
  if (!(is_number(crop) && crop.get<double>() > 0 && crop.get<double>() <= 1)) {
    return "'preprocess.crop_fraction' must be a number in (0, 1], got " + py_repr(crop);
  }
  if (!(is_numbers(pre["mean"], 3) && is_numbers(pre["std"], 3) &&
        std::all_of(pre["std"].begin(), pre["std"].end(), [](const json& s) { return s.get<double>() > 0; }))) {
    return "'preprocess' mean and std must be 3 numbers each, std > 0; got " + py_repr(pre["mean"]) + ", " +
           py_repr(pre["std"]);
  }
  if (!labels.is_null() && !(labels.is_array() && labels.size() == k.get<std::size_t>() &&
                             std::all_of(labels.begin(), labels.end(), [](const json& s) { return s.is_string(); }))) {
    return "'labels' must be null or a list of num_classes = " + k.dump() + " strings";
  }
  if (!meta["source"].is_object()) return "'source' must be an object, got " + py_repr(meta["source"]);
  return "";
}

std::array<double, 3> three_numbers(const json& v) {
  return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>()};
}

Metadata check_meta(const json& meta) {
  check_version(meta);
  check_keys(meta, kMetaKeys, "metadata");
  std::string problem = meta_problem(meta);
  if (!problem.empty()) fail("metadata " + problem);
  const json& pre = meta["preprocess"];
  Metadata out{meta["version"].get<int>(),
               meta["width_mult"].get<double>(),
               meta["num_classes"].get<int>(),
               meta["input_size"][0].get<int>(),
               meta["input_size"][1].get<int>(),
               parse_padding(meta["padding"].get<std::string>()),
               {pre["crop_fraction"].get<double>(), three_numbers(pre["mean"]), three_numbers(pre["std"])},
               std::nullopt,
               meta["source"].dump()};
  if (!meta["labels"].is_null()) out.labels = meta["labels"].get<Names>();
  return out;
}

// ---- members ------------------------------------------------------------------

// A member's .npy, its header parsed. Sizes are checked against `max_size`
// before anything is inflated, so a corrupt size field cannot cost gigabytes.
NpyArray read_npy(const ZipReader& zip, const std::string& name, std::uint64_t max_size,
                      std::vector<std::uint8_t>& scratch) {
  const ZipEntry* entry = zip.find(name + kNpySuffix);
  if (entry == nullptr) fail("member " + quoted(name) + " is missing (expected " + name + kNpySuffix + ")");
  if (entry->uncompressed_size > max_size) {
    fail("member " + quoted(name) + " is " + std::to_string(entry->uncompressed_size) +
         " bytes, more than its expected shape can take (" + std::to_string(max_size) + ")");
  }
  return parse_npy(zip.extract(*entry, scratch), name);
}

json read_meta(const ZipReader& zip, std::vector<std::uint8_t>& scratch) {
  if (zip.find(kMetaMember + kNpySuffix) == nullptr) {
    fail("no " + quoted(kMetaMember) + " member: not an mbv2-engine weight file");
  }
  NpyArray array = read_npy(zip, kMetaMember, kMaxMetaSize, scratch);
  bool is_uint8 = array.descr.size() == 3 && std::string_view("|<>=").find(array.descr[0]) != std::string_view::npos &&
                  array.descr.substr(1) == "u1";
  if (!is_uint8 || array.shape.size() != 1 || array.fortran_order) {
    fail("member " + quoted(kMetaMember) + " must be a 1-D uint8 array, got " + array.descr + " " +
         py_tuple(array.shape));
  }
  if (array.data.size != array.shape[0]) {
    fail("member " + quoted(kMetaMember) + " is truncated or corrupt: " + std::to_string(array.data.size) +
         " bytes of data for shape " + py_tuple(array.shape));
  }
  auto text = reinterpret_cast<const char*>(array.data.data);
  try {
    return json::parse(text, text + array.data.size);
  } catch (const json::parse_error& e) {
    fail(quoted(kMetaMember) + " is not UTF-8 JSON: " + e.what());
  }
}

// The zip members must be exactly the expected arrays and the metadata; name every difference.
void check_members(const ZipReader& zip, const std::vector<std::pair<std::string, Shape>>& expected) {
  std::set<std::string> names;
  for (const ZipEntry& entry : zip.entries()) {
    std::string_view name = entry.name;
    if (name == kMetaMember + kNpySuffix) continue;
    // format.py strips ".npy" where present: another name is an extra member as it stands.
    bool npy = name.size() >= kNpySuffix.size() && name.substr(name.size() - kNpySuffix.size()) == kNpySuffix;
    names.emplace(npy ? name.substr(0, name.size() - kNpySuffix.size()) : name);
  }
  Names wanted;
  for (const auto& member : expected) wanted.push_back(member.first);
  std::string diff = differences(std::move(names), wanted, "unexpected");
  if (!diff.empty()) fail("wrong array members for this architecture: " + diff);
}

// dtype, order and shape, checked in format.py's order, then the payload size.
void check_header(const std::string& name, const NpyArray& array, const Shape& expected) {
  const std::string member = "member " + quoted(name);
  if (array.descr.find('O') != std::string::npos) {
    fail(member + " is a pickled object array; weight files never hold pickles");
  }
  if (array.descr != "<f4") fail(member + " has dtype " + array.descr + ", expected little-endian float32 (<f4)");
  if (array.fortran_order) fail(member + " is stored in Fortran order, expected C order");
  if (!std::equal(array.shape.begin(), array.shape.end(), expected.begin(), expected.end(),
                  [](std::uint64_t a, size_t b) { return a == b; })) {
    fail(member + " has shape " + py_tuple(array.shape) + ", expected " + py_tuple(expected));
  }
  if (array.data.size != element_count(array.shape) * sizeof(float)) {
    fail(member + " is truncated or corrupt: " + std::to_string(array.data.size) + " bytes of data for shape " +
         py_tuple(expected));
  }
}

Tensor read_tensor(const ZipReader& zip, const std::string& name, const Shape& shape,
                   std::vector<std::uint8_t>& scratch) {
  std::uint64_t count = element_count({shape.begin(), shape.end()});
  NpyArray array = read_npy(zip, name, kNpyPrefixSize + kMaxNpyHeaderSize + count * kMaxItemSize, scratch);
  check_header(name, array, shape);
  Tensor tensor{shape, std::vector<float>(count)};
  std::memcpy(tensor.data.data(), array.data.data, array.data.size);  // the payload may be unaligned
  auto bad = std::count_if(tensor.data.begin(), tensor.data.end(), [](float x) { return !std::isfinite(x); });
  if (bad != 0) fail("member " + quoted(name) + " has " + std::to_string(bad) + " NaN or infinite values");
  return tensor;
}

}  // namespace

WeightFile load_weight_file_from_memory(const void* data, std::size_t size) {
  if (data == nullptr && size != 0) throw Error(Status::kInvalidArgument, "weight file buffer is NULL");
  ByteView bytes{static_cast<const std::uint8_t*>(data), size};
  if (size < 2 || std::memcmp(bytes.data, "PK", 2) != 0) {
    fail("not a zip/npz archive; expected an mbv2-engine weight file written by `mbv2-engine export` "
         "(docs/format.md)");
  }
  ZipReader zip(bytes);
  std::vector<std::uint8_t> scratch;
  Metadata meta = check_meta(read_meta(zip, scratch));
  WeightFile file{meta, mobilenet_v2(meta.width_mult, meta.num_classes, meta.padding), {}};
  auto expected = member_shapes(file.network);
  check_members(zip, expected);
  for (const auto& [name, shape] : expected) file.arrays.emplace(name, read_tensor(zip, name, shape, scratch));
  return file;
}

WeightFile load_weight_file(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_file_bytes(path);
  try {
    return load_weight_file_from_memory(bytes.data(), bytes.size());
  } catch (const Error& e) {
    throw Error(e.status(), path + ": " + e.what());
  }
}

}  // namespace mbv2::io
