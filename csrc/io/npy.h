// The header of a .npy array, numpy's format versions 1.0 and 2.0 (3.0 only
// differs for structured dtypes with non-latin-1 field names, which no weight
// file has).
//
// A header is read in two steps, so that nothing past it is needed: the first
// kNpyPeekBytes say how long the whole header is (npy_header_size), then the
// whole header is parsed (parse_npy_header). The parser reports the header as
// written; judging the dtype, order and shape is the caller's business, so its
// messages can name what it expected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/zip_reader.h"

namespace mbv2::io {

// Magic (6), version (2) and the header length (2 in version 1, 4 in version
// 2): enough to know the header's size.
inline constexpr std::size_t kNpyPeekBytes = 12;

struct NpyHeader {
  std::string descr;  // numpy's dtype string, e.g. "<f4"; "|O" for pickled objects
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

// The size of the whole header (magic to the end of the dict) from its first
// bytes, at least kNpyPeekBytes of them. `name` names the member in messages.
// Throws mbv2::Error(kInvalidFormat), also for a header longer than
// kMaxNpyHeaderBytes.
std::size_t npy_header_size(ByteView first_bytes, const std::string& name);

// Parses the whole header, npy_header_size bytes of it.
NpyHeader parse_npy_header(ByteView header, const std::string& name);

}  // namespace mbv2::io
