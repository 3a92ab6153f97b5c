// Small shared vocabulary of the core: layouts, array views with shape
// checks, owned tensors, and the aligned buffer everything is allocated in.
// The network itself (BlockSpec, Padding, NetworkSpec) is in core/network.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/network.h"

namespace mbv2 {

enum class Layout { NCHW, NHWC };

Layout parse_layout(const std::string& name);  // "nchw" or "nhwc"; Error(kInvalidArgument) otherwise

// A read-only array owned by someone else (numpy, or a Tensor): float32 in
// `data`, or int8 in `int8` (an int8 network's weights), the other null.
struct ArrayView {
  const float* data = nullptr;
  std::vector<size_t> shape;
  const int8_t* int8 = nullptr;
};
using ArrayMap = std::map<std::string, ArrayView>;

// An array, C order, that owns its values (the reader's arrays, a test hook's
// output): float32 in `data`, or int8 in `int8`.
struct Tensor {
  std::vector<size_t> shape;
  std::vector<float> data;
  std::vector<int8_t> int8;
  ArrayView view() const {
    return int8.empty() ? ArrayView{data.data(), shape} : ArrayView{nullptr, shape, int8.data()};
  }
};

std::string shape_str(const std::vector<size_t>& shape);

// Throws Error kInvalidFormat naming the array and both shapes: the engine cannot run it.
void check_shape(const std::string& name, const ArrayView& array, const std::vector<size_t>& expected);

// 64-byte aligned, zero-initialised floats: one cache line, one AVX-512 vector.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t count);
  float* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
  size_t size_ = 0;
};

}  // namespace mbv2
