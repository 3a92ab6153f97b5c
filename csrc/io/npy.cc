#include "io/npy.h"

#include <cstring>
#include <string_view>

#include "core/status.h"
#include "io/weight_file.h"

namespace mbv2::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
// No member comes near 2^40 elements; bounding each dimension keeps the digits
// of a hostile one from overflowing while they are read.
constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 40;

[[noreturn]] void fail(const std::string& name, const std::string& message) {
  throw Error(Status::kInvalidFormat, "member '" + name + "' is not a valid .npy array: " + message);
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (32, 3, 3, 3), }
// padded with spaces and a newline. This parses exactly that subset of Python
// literals, each key once; anything else (escapes, comments, nested values,
// expressions) is an error, where Python's ast.literal_eval would accept some.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader array;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (!consume('}')) {  // items end with ',' except perhaps the last
      std::string key = parse_string();
      expect(':');
      if (key == "descr" && !seen_descr) {
        array.descr = parse_descr();
        seen_descr = true;
      } else if (key == "fortran_order" && !seen_order) {
        array.fortran_order = parse_bool();
        seen_order = true;
      } else if (key == "shape" && !seen_shape) {
        array.shape = parse_shape();
        seen_shape = true;
      } else {
        fail(name_, "unexpected or repeated header key '" + key + "'");
      }
      if (!consume(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) fail(name_, "trailing characters after the header dict");
    if (!(seen_descr && seen_order && seen_shape)) {
      fail(name_, "the header must have the keys 'descr', 'fortran_order' and 'shape'");
    }
    return array;
  }

 private:
  std::string where() const { return "offset " + std::to_string(pos_); }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t')) ++pos_;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(name_, std::string("malformed header: expected '") + c + "' at " + where());
  }

  std::string parse_string() {
    skip_space();
    char quote = pos_ < text_.size() ? text_[pos_] : '\0';
    if (quote != '\'' && quote != '"') fail(name_, "malformed header: expected a string at " + where());
    std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail(name_, "malformed header: unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    if (value.find('\\') != std::string::npos) fail(name_, "malformed header: escapes in strings are not supported");
    pos_ = end + 1;
    return value;
  }

  std::string parse_descr() {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '[') fail(name_, "structured dtypes are not supported");
    return parse_string();
  }

  bool parse_bool() {
    skip_space();
    for (bool value : {true, false}) {
      std::string_view word = value ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail(name_, "malformed header: 'fortran_order' must be True or False");
  }

  std::vector<std::uint64_t> parse_shape() {
    std::vector<std::uint64_t> shape;
    expect('(');
    while (!consume(')')) {
      shape.push_back(parse_dim());
      if (shape.size() > kMaxNpyDims) fail(name_, "more than " + std::to_string(kMaxNpyDims) + " dimensions");
      if (!consume(',')) {
        expect(')');
        break;
      }
    }
    return shape;
  }

  std::uint64_t parse_dim() {
    skip_space();
    std::size_t start = pos_;
    std::uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<std::uint64_t>(text_[pos_++] - '0');
      if (value > kMaxDim) fail(name_, "a dimension of the shape is implausibly large");
    }
    if (pos_ == start) fail(name_, "malformed header: the shape must be a tuple of non-negative integers");
    return value;
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

}  // namespace

std::size_t npy_header_size(ByteView first, const std::string& name) {
  if (first.size < kNpyPeekBytes) fail(name, "it is too short for a .npy header");
  if (std::memcmp(first.data, kMagic, kMagicSize) != 0) fail(name, "it does not start with the .npy magic string");
  std::uint8_t major = first.data[kMagicSize];
  std::uint8_t minor = first.data[kMagicSize + 1];
  if ((major != 1 && major != 2) || minor != 0) {
    fail(name, ".npy version (" + std::to_string(major) + ", " + std::to_string(minor) + "), expected 1.0 or 2.0");
  }
  // Version 1 stores the header length in 2 bytes, version 2 in 4.
  std::size_t length_size = major == 1 ? 2 : 4;
  std::uint32_t length = 0;
  std::memcpy(&length, first.data + kMagicSize + 2, length_size);
  if (length > kMaxNpyHeaderBytes) {
    fail(name, "its header is " + std::to_string(length) + " bytes, more than the limit of " +
                   std::to_string(kMaxNpyHeaderBytes));
  }
  std::size_t size = kMagicSize + 2 + length_size + length;
  if (size < kNpyPeekBytes) fail(name, "its header is too short to hold the header dict");
  return size;
}

NpyHeader parse_npy_header(ByteView header, const std::string& name) {
  if (npy_header_size(header, name) != header.size) fail(name, "the header is not as long as it says");
  std::size_t prefix = kMagicSize + 2 + (header.data[kMagicSize] == 1 ? 2 : 4);
  std::string_view text(reinterpret_cast<const char*>(header.data + prefix), header.size - prefix);
  return HeaderParser(text, name).parse();
}

}  // namespace mbv2::io
