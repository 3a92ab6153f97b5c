#include "io/weight_file.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/status.h"
#include "io/npy.h"
#include "io/zip_reader.h"

namespace mbv2::io {
namespace {

using nlohmann::json;
using Shape = std::vector<size_t>;
using Names = std::vector<std::string>;

const std::string kMetaMember = "__meta__";
const std::string kNpySuffix = ".npy";
// Version 1's keys; version 2 adds the head's hidden layers and the output activation.
const Names kMetaKeysV1 = {"format", "version", "width_mult", "num_classes", "input_size",
                           "padding", "preprocess", "labels", "source"};
const Names kMetaKeysV2 = {"format", "version", "width_mult", "num_classes", "input_size", "padding",
                           "preprocess", "labels", "hidden", "activation", "source"};
// Version 3 adds the int8 quantization (null for a float32 file).
const Names kMetaKeysV3 = {"format", "version", "width_mult", "num_classes", "input_size", "padding", "preprocess",
                           "labels", "hidden", "activation", "quantization", "source"};
const Names kQuantKeys = {"weights", "activations", "layers", "calibration", "tensors"};
const Names kCalibrationKeys = {"method", "samples"};
const char kQuantWeights[] = "int8-symmetric-per-channel";
const char kQuantActivations[] = "uint8-asymmetric-per-tensor";
const json kQuantLayers = {{"stem", "float32"}, {"blocks", "int8"}, {"head", "int8"}, {"classifier", "float32"}};
const Names kPreprocessKeys = {"crop_fraction", "mean", "std"};
const Names kHiddenKeys = {"units", "activation"};
const Names kPaddings = {"torch", "same"};
const Names kHiddenActivations = {"relu", "relu6", "none"};
const Names kOutputActivations = {"none", "softmax", "sigmoid"};
// complex128, the widest plain dtype: a member of the right shape but another
// dtype still gets through to the dtype check and its message.
constexpr std::uint64_t kMaxItemSize = 16;
constexpr char kUtf8Bom[] = "\xEF\xBB\xBF";

[[noreturn]] void fail(const std::string& message) { throw Error(Status::kInvalidFormat, message); }

// ---- messages that write values as Python would (the package's users read them) ----

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

// At most this many names a list in a message: 100000 stray members once made a 989 KB one.
constexpr std::size_t kShownNames = 10;

// "['a', 'b', ...]" for the first kShownNames, then how many more.
template <typename It>
std::string some_names(It begin, It end) {
  const std::size_t n = static_cast<std::size_t>(std::distance(begin, end));
  Names shown(begin, n > kShownNames ? std::next(begin, kShownNames) : end);
  return py_list(shown) + (n > kShownNames ? " and " + std::to_string(n - kShownNames) + " more" : "");
}

// Empty when `have` holds exactly the names in `want`; otherwise the names
// missing (in `want`'s order) and extra (sorted), at most kShownNames of each.
std::string differences(std::set<std::string> have, const Names& want, const std::string& extra_word) {
  Names missing;
  for (const std::string& name : want) {
    if (have.erase(name) == 0) missing.push_back(name);
  }
  std::string out = missing.empty() ? "" : "missing " + some_names(missing.begin(), missing.end());
  if (!have.empty()) out += (out.empty() ? "" : ", ") + extra_word + " " + some_names(have.begin(), have.end());
  return out;
}

void check_keys(const json& object, const Names& keys, const std::string& what, int version) {
  std::set<std::string> have;
  for (const auto& item : object.items()) have.insert(item.key());
  std::string diff = differences(std::move(have), keys, "unknown");
  if (!diff.empty()) {
    fail(what + ": " + diff + " keys (format version " + std::to_string(version) + " has exactly " +
         py_list(keys) + ")");
  }
}

json value_or_null(const json& object, const std::string& key) {
  return object.contains(key) ? object.at(key) : json(nullptr);
}

// An integral value, whether written 2 or 2.0 (JSON floats are always finite here).
bool is_integral(const json& v) {
  return is_int(v) || (v.is_number_float() && std::trunc(v.get<double>()) == v.get<double>());
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
  // 2, 2.0 and 1e30 all name a later version; only the refusal's kind differs from "version": "x".
  if (is_integral(version) && version.get<double>() > kFormatVersion) {
    throw Error(Status::kUnsupportedVersion,
                "the file is weight format version " + version.dump() + "; this mbv2-engine reads versions 1 to " +
                    std::to_string(kFormatVersion) + ": upgrade mbv2-engine to load it");
  }
  if (!is_int(version) || version.get<double>() < 1) {
    fail("metadata 'version' must be a positive integer, got " + py_repr(version));
  }
}

bool is_pad_rule(const json& rule) {
  return rule == "same" || (rule.is_array() && rule.size() == 4 && std::all_of(rule.begin(), rule.end(), [](const json& s) {
                              return is_int_in(s, 0, 1);
                            }));
}

// "torch" or "same"; from version 2 on also one rule per stride-2 conv.
std::string padding_problem(const json& padding, int version) {
  if (padding.is_string() && contains(kPaddings, padding.get<std::string>())) return "";
  if (version >= 2 && padding.is_array() && padding.size() == kStridedConvs &&
      std::all_of(padding.begin(), padding.end(), is_pad_rule)) {
    return "";
  }
  return "'padding' must be one of " + py_list(kPaddings) +
         (version >= 2 ? " or a list of " + std::to_string(kStridedConvs) +
                             " rules, each 'same' or [top, bottom, left, right] of 0 or 1"
                       : "") +
         ", got " + py_repr(padding);
}

// Version 2's head: hidden Dense layers and the activation after the classifier.
std::string head_problem(const json& meta) {
  const json &hidden = meta["hidden"], &activation = meta["activation"];
  if (!(hidden.is_array() && hidden.size() <= kMaxHiddenLayers)) {
    return "'hidden' must be a list of at most " + std::to_string(kMaxHiddenLayers) + " layers, got " +
           py_repr(hidden);
  }
  for (std::size_t j = 0; j < hidden.size(); j++) {
    const std::string what = "'hidden[" + std::to_string(j) + "]'";
    if (!hidden[j].is_object()) return what + " must be an object, got " + py_repr(hidden[j]);
    check_keys(hidden[j], kHiddenKeys, "metadata " + what, 2);
    if (!is_int_in(hidden[j]["units"], 1, kMaxHiddenUnits)) {
      return what + " 'units' must be an integer in [1, " + std::to_string(kMaxHiddenUnits) + "], got " +
             py_repr(hidden[j]["units"]);
    }
    const json& act = hidden[j]["activation"];
    if (!(act.is_string() && contains(kHiddenActivations, act.get<std::string>()))) {
      return what + " 'activation' must be one of " + py_list(kHiddenActivations) + ", got " + py_repr(act);
    }
  }
  if (!(activation.is_string() && contains(kOutputActivations, activation.get<std::string>()))) {
    return "'activation' must be one of " + py_list(kOutputActivations) + ", got " + py_repr(activation);
  }
  return "";
}

// Version 3's "quantization": null, or an int8 network's tensors (docs/format.md).
std::string quantization_problem(const json& q, double width_mult, size_t classes) {
  if (q.is_null()) return "";
  if (!q.is_object()) return "'quantization' must be null or an object, got " + py_repr(q);
  check_keys(q, kQuantKeys, "metadata 'quantization'", 3);
  if (q["weights"] != kQuantWeights || q["activations"] != kQuantActivations || q["layers"] != kQuantLayers) {
    return std::string("'quantization' must have 'weights': '") + kQuantWeights + "', 'activations': '" +
           kQuantActivations + "' and 'layers': " + py_repr(kQuantLayers) + " (format version 3), got " +
           py_repr(q["weights"]) + ", " + py_repr(q["activations"]) + ", " + py_repr(q["layers"]);
  }
  const json& cal = q["calibration"];
  if (!cal.is_object()) return "'quantization.calibration' must be an object, got " + py_repr(cal);
  check_keys(cal, kCalibrationKeys, "metadata 'quantization.calibration'", 3);
  if (!cal["method"].is_string() || !is_int_in(cal["samples"], 1, 1e15)) {
    return "'quantization.calibration' needs a string 'method' and an integer 'samples' >= 1, got " + py_repr(cal);
  }
  const NetworkSpec spec = mobilenet_v2(width_mult, classes);
  const QuantIndex index = quant_index(spec);
  const json& tensors = q["tensors"];
  const size_t count = quant_tensor_count(spec);
  if (!tensors.is_array() || tensors.size() != count) {
    return "'quantization.tensors' must list " + std::to_string(count) + " [scale, zero_point] pairs, one per " +
           "activation tensor, got " + (tensors.is_array() ? std::to_string(tensors.size()) + " entries" : py_repr(tensors));
  }
  std::vector<bool> after_relu6(count, true);  // every tensor but the block outputs
  for (size_t out : index.out) after_relu6[out] = false;
  for (size_t t = 0; t < count; t++) {
    const json& pair = tensors[t];
    const bool ok = pair.is_array() && pair.size() == 2 && is_number(pair[0]) &&
                    pair[0].get<double>() >= kMinQuantScale && pair[0].get<double>() <= kMaxQuantScale &&
                    is_int_in(pair[1], 0, after_relu6[t] ? 0 : 255);
    if (!ok) {
      return "'quantization.tensors[" + std::to_string(t) + "]' must be [scale, zero_point] with scale in [" +
             json(kMinQuantScale).dump() + ", " + json(kMaxQuantScale).dump() + "] and zero_point " +
             (after_relu6[t] ? "0 (a ReLU6 output)" : "an integer in [0, 255]") + ", got " + py_repr(pair);
    }
  }
  return "";
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
  const std::string padding = padding_problem(meta["padding"], meta["version"].get<int>());
  if (!padding.empty()) return padding;
  if (!pre.is_object()) return "'preprocess' must be an object, got " + py_repr(pre);
  check_keys(pre, kPreprocessKeys, "metadata 'preprocess'", meta["version"].get<int>());
  const json& crop = pre["crop_fraction"];
  if (!(is_number(crop) && crop.get<double>() >= kMinCropFraction && crop.get<double>() <= 1)) {
    return "'preprocess.crop_fraction' must be a number in [" + json(kMinCropFraction).dump() + ", 1], got " +
           py_repr(crop);
  }
  const auto within = [](const json& v, double lo, double hi) {
    return is_numbers(v, 3) && std::all_of(v.begin(), v.end(), [&](const json& x) {
             return x.get<double>() >= lo && x.get<double>() <= hi;
           });
  };
  if (!(within(pre["mean"], -kMaxMean, kMaxMean) && within(pre["std"], kMinStd, kMaxStd))) {
    return "'preprocess' mean and std must be 3 numbers each, every mean in [-" + json(kMaxMean).dump() + ", " +
           json(kMaxMean).dump() + "] and every std in [" + json(kMinStd).dump() + ", " + json(kMaxStd).dump() +
           "]; got " + py_repr(pre["mean"]) + ", " + py_repr(pre["std"]);
  }
  if (!labels.is_null() && !(labels.is_array() && labels.size() == k.get<std::size_t>() &&
                             std::all_of(labels.begin(), labels.end(), [](const json& s) { return s.is_string(); }))) {
    return "'labels' must be null or a list of num_classes = " + k.dump() + " strings";
  }
  if (!meta["source"].is_object()) return "'source' must be an object, got " + py_repr(meta["source"]);
  const std::string head = meta["version"].get<int>() >= 2 ? head_problem(meta) : "";
  if (!head.empty() || meta["version"].get<int>() < 3) return head;
  return quantization_problem(meta["quantization"], w.get<double>(), k.get<size_t>());
}

PadRule pad_rule(const json& rule) {
  if (rule == "same") return PadRule{true};
  return fixed_pad(rule[0].get<size_t>(), rule[1].get<size_t>(), rule[2].get<size_t>(), rule[3].get<size_t>());
}

Padding padding_of(const json& padding) {
  if (padding.is_string()) return parse_padding(padding.get<std::string>());
  Padding rules;
  for (const json& rule : padding) rules.push_back(pad_rule(rule));
  return rules;
}

std::array<double, 3> three_numbers(const json& v) {
  return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>()};
}

// An earlier file says what version 3 would: no hidden layers, no
// activation (version 1), no quantization (versions 1 and 2).
void add_defaults(json& meta) {
  const int version = meta["version"].get<int>();
  if (version < 3) meta["quantization"] = nullptr;
  if (version >= 2) return;
  meta["hidden"] = json::array();
  meta["activation"] = "none";
}

Metadata check_meta(json& meta) {
  check_version(meta);
  const int version = meta["version"].get<int>();
  check_keys(meta, version >= 3 ? kMetaKeysV3 : version == 2 ? kMetaKeysV2 : kMetaKeysV1, "metadata", version);
  std::string problem = meta_problem(meta);
  if (!problem.empty()) fail("metadata " + problem);
  add_defaults(meta);
  const json& pre = meta["preprocess"];
  Metadata out{version,
               meta["width_mult"].get<double>(),
               meta["num_classes"].get<int>(),
               meta["input_size"][0].get<int>(),
               meta["input_size"][1].get<int>(),
               padding_of(meta["padding"]),
               {pre["crop_fraction"].get<double>(), three_numbers(pre["mean"]), three_numbers(pre["std"])},
               std::nullopt,
               {},
               meta["activation"].get<std::string>(),
               {},
               meta["source"].dump(),
               {}};
  if (!meta["labels"].is_null()) out.labels = meta["labels"].get<Names>();
  for (const json& layer : meta["hidden"]) {
    out.hidden.push_back({layer["units"].get<size_t>(), parse_activation(layer["activation"].get<std::string>())});
  }
  if (!meta["quantization"].is_null()) {
    for (const json& pair : meta["quantization"]["tensors"]) {
      out.quant.push_back({static_cast<float>(pair[0].get<double>()), pair[1].get<int32_t>()});
    }
  }
  return out;
}

// ---- members ------------------------------------------------------------------

// A member's .npy, opened: its header parsed, `reader` at the first payload byte.
struct NpyMember {
  NpyHeader header;
  std::uint64_t payload_size;
  MemberReader reader;
};

// Opens `name`.npy. The member's declared size is first checked against the
// largest .npy header plus `max_payload` (what `bound` describes), before any
// of it is read; only its header (at most kMaxNpyHeaderBytes) is read here.
NpyMember open_npy(const ZipReader& zip, const std::string& name, std::uint64_t max_payload,
                   const std::string& bound) {
  const ZipEntry* entry = zip.find(name + kNpySuffix);
  if (entry == nullptr) fail("member " + quoted(name) + " is missing (expected " + name + kNpySuffix + ")");
  const std::uint64_t max_size = kNpyPeekBytes + kMaxNpyHeaderBytes + max_payload;
  if (entry->uncompressed_size > max_size) {
    fail("member " + quoted(name) + " is " + std::to_string(entry->uncompressed_size) + " bytes, more than " +
         bound + " and a .npy header can take (" + std::to_string(max_size) + ")");
  }
  MemberReader reader = zip.open(*entry);
  std::vector<std::uint8_t> header(kNpyPeekBytes);
  reader.read(header.data(), header.size());
  header.resize(npy_header_size({header.data(), header.size()}, name));
  reader.read(header.data() + kNpyPeekBytes, header.size() - kNpyPeekBytes);
  NpyHeader parsed = parse_npy_header({header.data(), header.size()}, name);
  return {std::move(parsed), reader.remaining(), std::move(reader)};
}

// The payload must be exactly what the header's shape takes: neither missing
// nor trailing bytes.
void check_payload_size(const std::string& name, std::uint64_t have, std::uint64_t want, const std::string& shape) {
  if (have != want) {
    fail("member " + quoted(name) + (have < want ? " is truncated" : " has trailing bytes") + ": " +
         std::to_string(have) + " bytes of data for shape " + shape + ", expected " + std::to_string(want));
  }
}

std::string read_meta_text(const ZipReader& zip) {
  if (zip.find(kMetaMember + kNpySuffix) == nullptr) {
    fail("no " + quoted(kMetaMember) + " member: not an mbv2-engine weight file");
  }
  NpyMember npy = open_npy(zip, kMetaMember, kMaxMetaBytes,
                           "the metadata limit of " + std::to_string(kMaxMetaBytes) + " bytes");
  const NpyHeader& h = npy.header;
  if (!(h.descr == "|u1" || h.descr == "<u1") || h.shape.size() != 1 || h.fortran_order) {
    fail("member " + quoted(kMetaMember) + " must be a 1-D uint8 array (|u1), got " + h.descr + " " +
         py_tuple(h.shape));
  }
  // Compared with the bytes the member has, so a header claiming 10^12 bytes costs nothing.
  check_payload_size(kMetaMember, npy.payload_size, h.shape[0], py_tuple(h.shape));
  if (npy.payload_size > kMaxMetaBytes) {
    fail("member " + quoted(kMetaMember) + " is " + std::to_string(npy.payload_size) +
         " bytes of metadata, more than the limit of " + std::to_string(kMaxMetaBytes));
  }
  std::string text(static_cast<std::size_t>(npy.payload_size), '\0');
  npy.reader.read(reinterpret_cast<std::uint8_t*>(text.data()), text.size());
  npy.reader.finish();
  return text;
}

// What nlohmann would let through but Python's json.loads refuses (a BOM, a
// NUL), and a nesting depth checked before nlohmann recurses into it.
void check_meta_text(std::string_view text) {
  const std::string what = quoted(kMetaMember) + " must be plain UTF-8 JSON";
  if (text.substr(0, 3) == kUtf8Bom) fail(what + ", without a byte-order mark");
  if (std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    fail(what + ": it has a NUL byte at offset " + std::to_string(nul));
  }
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (escaped) {
      escaped = false;
    } else if (in_string) {
      escaped = c == '\\';
      in_string = c != '"';
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) fail(what + " nested at most " + std::to_string(kMaxJsonDepth) + " deep");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

// nlohmann quotes the offending token, which a hostile file can make megabytes long.
std::string clipped(const std::string& message) {
  constexpr std::size_t kMax = 200;
  return message.size() <= kMax ? message : message.substr(0, kMax) + "...";
}

Metadata read_metadata(const ZipReader& zip) {
  std::string text = read_meta_text(zip);
  check_meta_text(text);
  json meta;
  try {
    meta = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    fail(quoted(kMetaMember) + " is not UTF-8 JSON: " + clipped(e.what()));
  }
  try {
    Metadata out = check_meta(meta);
    out.json = meta.dump();
    return out;
  } catch (const json::exception& e) {  // a conversion the checks should have ruled out
    fail("metadata cannot be read: " + std::string(e.what()));
  }
}

// The zip members must be exactly the expected arrays and the metadata; name every difference.
void check_members(const ZipReader& zip, const std::vector<std::pair<std::string, Shape>>& expected) {
  std::set<std::string> names;
  for (const ZipEntry& entry : zip.entries()) {
    std::string_view name = entry.name;
    if (name == kMetaMember + kNpySuffix) continue;
    if (name.size() <= kNpySuffix.size() || name.substr(name.size() - kNpySuffix.size()) != kNpySuffix) {
      fail("unexpected member " + quoted(entry.name) + ": every member of a weight file is NAME" + kNpySuffix);
    }
    names.emplace(name.substr(0, name.size() - kNpySuffix.size()));
  }
  Names wanted;
  for (const auto& member : expected) wanted.push_back(member.first);
  std::string diff = differences(std::move(names), wanted, "unexpected");
  if (!diff.empty()) fail("wrong array members for this architecture: " + diff);
}

// dtype, order and shape, in this order, so a float64 or transposed export is named as such.
void check_header(const std::string& name, const NpyHeader& header, const Shape& expected, bool int8) {
  const std::string member = "member " + quoted(name);
  if (header.descr.find('O') != std::string::npos) {
    fail(member + " is a pickled object array; weight files never hold pickles");
  }
  if (int8 && header.descr != "|i1" && header.descr != "<i1") {
    fail(member + " has dtype " + header.descr + ", expected int8 (|i1): an int8 network's conv weights are int8");
  }
  if (!int8 && header.descr != "<f4") {
    fail(member + " has dtype " + header.descr + ", expected little-endian float32 (<f4)");
  }
  if (header.fortran_order) fail(member + " is stored in Fortran order, expected C order");
  if (!std::equal(header.shape.begin(), header.shape.end(), expected.begin(), expected.end(),
                  [](std::uint64_t a, size_t b) { return a == b; })) {
    fail(member + " has shape " + py_tuple(header.shape) + ", expected " + py_tuple(expected));
  }
}

// The payload goes straight from the archive into the tensor, whose size the
// metadata fixed (within its limits) before the member was opened.
// An int8 network's weights: symmetric, so -128 never occurs.
Tensor read_int8(NpyMember& npy, const std::string& name, const Shape& shape, std::uint64_t count) {
  Tensor tensor{shape, {}, std::vector<int8_t>(static_cast<std::size_t>(count))};
  npy.reader.read(reinterpret_cast<std::uint8_t*>(tensor.int8.data()), tensor.int8.size());
  npy.reader.finish();
  auto bad = std::count(tensor.int8.begin(), tensor.int8.end(), int8_t{-128});
  if (bad != 0) {
    fail("member " + quoted(name) + " has " + std::to_string(bad) +
         " values of -128; int8 weights are symmetric, in [-127, 127]");
  }
  return tensor;
}

// A float32 member: every value finite; a weight scale also within the quantization limits.
Tensor read_float32(NpyMember& npy, const std::string& name, const Shape& shape, std::uint64_t count) {
  Tensor tensor{shape, std::vector<float>(static_cast<std::size_t>(count)), {}};
  npy.reader.read(reinterpret_cast<std::uint8_t*>(tensor.data.data()), tensor.data.size() * sizeof(float));
  npy.reader.finish();
  auto bad = std::count_if(tensor.data.begin(), tensor.data.end(), [](float x) { return !std::isfinite(x); });
  if (bad != 0) fail("member " + quoted(name) + " has " + std::to_string(bad) + " NaN or infinite values");
  const std::string suffix = ".weight_scale";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    bad = std::count_if(tensor.data.begin(), tensor.data.end(),
                        [](float x) { return !(x >= kMinQuantScale && x <= kMaxQuantScale); });
    if (bad != 0) {
      fail("member " + quoted(name) + " has " + std::to_string(bad) + " scales outside [" +
           json(kMinQuantScale).dump() + ", " + json(kMaxQuantScale).dump() + "]");
    }
  }
  return tensor;
}

Tensor read_tensor(const ZipReader& zip, const std::string& name, const Shape& shape, bool int8) {
  std::uint64_t count = 1;
  for (size_t dim : shape) count *= dim;
  NpyMember npy = open_npy(zip, name, count * kMaxItemSize, "shape " + py_tuple(shape));
  check_header(name, npy.header, shape, int8);
  check_payload_size(name, npy.payload_size, count * (int8 ? 1 : sizeof(float)), py_tuple(shape));
  return int8 ? read_int8(npy, name, shape, count) : read_float32(npy, name, shape, count);
}

WeightFile load(const ByteSource& source) {
  ZipReader zip(source);
  Metadata meta = read_metadata(zip);
  WeightFile file{meta, mobilenet_v2(meta.width_mult, meta.num_classes, meta.padding), {}};
  file.network.hidden = meta.hidden;
  file.network.quant = meta.quant;
  auto expected = member_shapes(file.network);
  check_members(zip, expected);
  for (const auto& [name, shape] : expected) {
    file.arrays.emplace(name, read_tensor(zip, name, shape, is_int8_member(file.network, name)));
  }
  return file;
}

}  // namespace

WeightFile load_weight_file_from_memory(const void* data, std::size_t size) {
  if (data == nullptr && size != 0) throw Error(Status::kInvalidArgument, "weight file buffer is NULL");
  return load(MemorySource({static_cast<const std::uint8_t*>(data), size}));
}

WeightFile load_weight_file(const std::string& path) {
  FileSource source(path);
  try {
    return load(source);
  } catch (const Error& e) {
    throw Error(e.status(), path + ": " + e.what());
  }
}

}  // namespace mbv2::io
