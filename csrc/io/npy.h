// The header of a .npy array, numpy's format versions 1.0 and 2.0: the ones
// the Python loader accepts (3.0 only differs for structured dtypes with
// non-latin-1 field names, which no weight file has).
//
// The parser reports the header as written; judging the dtype, order and
// shape is the caller's business, so its messages can name what it expected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/zip_reader.h"

namespace mbv2::io {

// numpy refuses headers longer than this without allow_pickle; so do we.
inline constexpr std::size_t kMaxNpyHeaderSize = 10000;
inline constexpr std::size_t kMaxNpyDims = 32;  // numpy's NPY_MAXDIMS was 32 for decades

struct NpyArray {
  std::string descr;  // numpy's dtype string, e.g. "<f4"; "|O" for pickled objects
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
  ByteView data;  // everything after the header: the raw elements
};

std::uint64_t element_count(const std::vector<std::uint64_t>& shape);

// Parses `bytes` (one whole .npy file). `name` names the member in messages.
// Throws mbv2::Error(kInvalidFormat).
NpyArray parse_npy(ByteView bytes, const std::string& name);

}  // namespace mbv2::io
