// The mbv2-engine weight file (docs/format.md, format version 1), read without numpy.
//
// Validates exactly what mbv2_engine/format.py validates, with the same limits
// and, as far as C++ allows, the same messages: the metadata, the member list,
// each member's dtype, order and shape, and that every value is finite. Every
// refusal is an mbv2::Error: kFileNotFound, kUnsupportedVersion for a newer
// format version, kInvalidFormat for everything else.
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
inline constexpr int kFormatVersion = 1;
// Limits of docs/format.md, the same as format.py's.
inline constexpr double kMaxWidthMult = 4.0;
inline constexpr int kMinClasses = 1;
inline constexpr int kMaxClasses = 100000;
inline constexpr int kMinInput = 32;
inline constexpr int kMaxInput = 4096;

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
  Padding padding;
  Preprocess preprocess;
  std::optional<std::vector<std::string>> labels;  // num_classes names, or none
  std::string source;                              // the "source" object as JSON text; informative only
};

struct WeightFile {
  Metadata meta;
  NetworkSpec network;                   // mobilenet_v2(width_mult, num_classes, padding)
  std::map<std::string, Tensor> arrays;  // member name (without ".npy") -> array, as member_shapes lists them
};

WeightFile load_weight_file(const std::string& path);

// Reads a weight file held in memory; `data` need only live during the call.
WeightFile load_weight_file_from_memory(const void* data, std::size_t size);

}  // namespace mbv2::io
