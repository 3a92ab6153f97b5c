#include "core/common.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "core/status.h"

namespace mbv2 {

Layout parse_layout(const std::string& name) {
  if (name == "nchw") return Layout::NCHW;
  if (name == "nhwc") return Layout::NHWC;
  throw Error(Status::kInvalidArgument, "layout must be 'nchw' or 'nhwc', got '" + name + "'");
}

std::string shape_str(const std::vector<size_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); i++) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

void check_shape(const std::string& name, const ArrayView& array, const std::vector<size_t>& expected) {
  if (array.shape != expected) {
    throw Error(Status::kInvalidFormat,
                "array '" + name + "' has shape " + shape_str(array.shape) + ", expected " + shape_str(expected));
  }
}

AlignedBuffer::AlignedBuffer(size_t count) : size_(count) {
  constexpr size_t kAlign = 64;
  const size_t bytes = std::max<size_t>((count * sizeof(float) + kAlign - 1) / kAlign * kAlign, kAlign);
  data_.reset(static_cast<float*>(std::aligned_alloc(kAlign, bytes)));
  if (!data_) throw std::bad_alloc();
  std::memset(data_.get(), 0, bytes);
}

}  // namespace mbv2
