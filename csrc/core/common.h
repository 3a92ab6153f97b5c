// Small shared vocabulary of the core: specs, padding arithmetic, array views
// with shape checks, and the aligned buffer everything is allocated in.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mbv2 {

struct BlockSpec {
  size_t cin, t, cout, stride;
  size_t hidden() const { return cin * t; }
  bool has_expand() const { return t != 1; }
  bool residual() const { return stride == 1 && cin == cout; }
};

enum class Padding { Torch, Same };
enum class Layout { NCHW, NHWC };

Padding parse_padding(const std::string& name);
Layout parse_layout(const std::string& name);

// Same arithmetic as mbv2_engine/arch.py: both paddings give ceil(size / stride)
// outputs; they differ only in how many zero rows/columns come first.
inline size_t conv_out(size_t size, size_t stride) { return (size + stride - 1) / stride; }
size_t pad_before(size_t size, size_t stride, Padding padding);

// A read-only float32 array owned by the caller (numpy, or the .npz reader).
struct ArrayView {
  const float* data = nullptr;
  std::vector<size_t> shape;
};
using ArrayMap = std::map<std::string, ArrayView>;

std::string shape_str(const std::vector<size_t>& shape);

// Throws std::invalid_argument naming the array and both shapes.
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
