// The mbv2-engine weight file (docs/format.md, format versions 1 to 3), read without numpy.
//
// This reader is the executable form of docs/format.md: the C API and the
// Python package (through its binding) both load weight files here. It checks
// the zip structure, every size the file declares (against the file's own size
// and the limits below, before allocating anything for it), the metadata, the
// member list, each member's dtype, order and shape, and that every value is
// finite. Every refusal is an mbv2::Error: kFileNotFound, kIoError,
// kUnsupportedVersion for a newer format version, kInvalidFormat for the rest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/common.h"
#include "core/network.h"

namespace mbv2::io {

inline constexpr char kFormatName[] = "mbv2-engine-weights";
inline constexpr int kFormatVersion = 3;  // and every earlier version

// ---- limits of docs/format.md (its "Limits" section gives the same reasons) ----

// Wider networks than 4x are not MobileNetV2 any more; the largest member,
// the classifier at 100000 classes and width 4, is then 2 GB.
inline constexpr double kMaxWidthMult = 4.0;
inline constexpr int kMinClasses = 1;
// ImageNet-21k has 21841 classes: 100000 leaves room and bounds the classifier.
inline constexpr int kMaxClasses = 100000;
// Five stride-2 stages leave a 1x1 map at 32; 4096 bounds the activations.
inline constexpr int kMinInput = 32;
inline constexpr int kMaxInput = 4096;

// A weight file has 107 members; ten times that still lets a file with a few
// stray members be named member by member, and bounds the directory's entries.
inline constexpr std::size_t kMaxMembers = 1024;
// A numpy directory entry is about 100 bytes (46 fixed, the name, a zip64
// extra); 1 KiB an entry is generous and caps the directory's one allocation.
inline constexpr std::uint64_t kMaxDirectoryBytes = kMaxMembers * 1024;
// Deflate cannot expand more than 1032:1 (a 258-byte match in 2 bits), so a
// deflate member declaring more than this is lying; refused before inflating.
inline constexpr std::uint64_t kMaxDeflateRatio = 1032;
inline constexpr std::uint64_t kDeflateSlackBytes = 64;  // for tiny streams: a block header, one literal
// 100000 labels of 160 bytes each; more is not metadata.
inline constexpr std::uint64_t kMaxMetaBytes = std::uint64_t{16} << 20;
// Version 1 metadata nests 3 deep (object, "preprocess", "mean"); 32 leaves
// room in "source" while keeping nlohmann's recursive parse, copy, dump and
// destructor (and Python's json.loads of Metadata::json) at a small stack depth.
inline constexpr std::size_t kMaxJsonDepth = 32;
// Preprocessing scales pixels in [0, 1] by (x - mean) / std in float32: these
// bounds keep every input within +-2e6 (a std of 1e-40 made infinities, one of
// 1e39 made zeros) while allowing every convention in use (caffe's std of
// 1/255 is 0.0039). A crop_fraction below 0.05 would upscale a picture 20
// times before cropping it.
inline constexpr double kMinCropFraction = 0.05;
inline constexpr double kMaxMean = 1000;
inline constexpr double kMinStd = 0.001;
inline constexpr double kMaxStd = 1000;
// MobileNetV2's stride-2 3x3 convs: the stem and the first block of four rows.
inline constexpr std::size_t kStridedConvs = 5;
// A transfer-learning head has one or two hidden Dense layers; 8 of 4096 units
// bound the head's members at 64 MiB each and the classifier (100000 classes
// x 4096) below the width-4 one.
inline constexpr std::size_t kMaxHiddenLayers = 8;
inline constexpr int kMaxHiddenUnits = 4096;
// An int8 network's activation and weight scales: wide enough for any
// trained network (a weight scale is max|w| / 127), narrow enough that every
// requantization multiplier (s_in x s_w / s_out) stays a normal float32.
inline constexpr double kMinQuantScale = 1e-9;
inline constexpr double kMaxQuantScale = 1e9;
// numpy's own limit (np.load's max_header_size): it refuses longer .npy headers.
inline constexpr std::size_t kMaxNpyHeaderBytes = 10000;
// A member has at most 4 dimensions; numpy's NPY_MAXDIMS was 32 for decades.
inline constexpr std::size_t kMaxNpyDims = 32;

struct Preprocess {
  double crop_fraction;
  std::array<double, 3> mean;
  std::array<double, 3> std;
};

struct Metadata {
  int version;
  double width_mult;
  int num_classes;
  int input_height;
  int input_width;
  Padding padding;  // one rule for every stride-2 conv, or one each (core/network.h)
  Preprocess preprocess;
  std::optional<std::vector<std::string>> labels;  // num_classes names, or none
  std::vector<DenseSpec> hidden;                   // version 2; none in version 1
  std::string activation;                          // after the classifier: "none", "softmax" or "sigmoid"
  std::vector<QuantParams> quant;                  // version 3, an int8 network: its tensors; empty for float32
  std::string source;                              // the "source" object as JSON text; informative only
  // The whole validated metadata object, re-serialised (nlohmann's dump()):
  // plain UTF-8 JSON, at most kMaxJsonDepth deep, for Python's json.loads. A
  // version-1 file gets version 2's "hidden": [] and "activation": "none",
  // and a file before version 3 gets "quantization": null.
  std::string json;
};

struct WeightFile {
  Metadata meta;
  NetworkSpec network;                   // mobilenet_v2(width_mult, num_classes, padding), with the hidden layers
  std::map<std::string, Tensor> arrays;  // member name (without ".npy") -> array, as member_shapes lists them
};

WeightFile load_weight_file(const std::string& path);

// Reads a weight file held in memory; `data` need only live during the call.
WeightFile load_weight_file_from_memory(const void* data, std::size_t size);

}  // namespace mbv2::io
