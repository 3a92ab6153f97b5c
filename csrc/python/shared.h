// What both Python modules (mbv2_engine._core and mbv2_engine._test_hooks)
// share: the core's errors raised as mbv2_engine.errors classes, and numpy
// arrays in and out of the core's types.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/kernel_set.h"
#include "core/network.h"

namespace mbv2::python {

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Int8Array = py::array_t<int8_t, py::array::c_style>;

// For the calling module: mbv2::Error raises mbv2_engine.errors.STATUS_ERRORS
// [status_string(status)], std::bad_alloc OutOfMemoryError.
void register_error_translator();

// Error kInvalidArgument with `what` unless ok.
void require(bool ok, const std::string& what);

// A float32 numpy array, made C-contiguous (a copy only if it was not). Other
// dtypes are refused rather than converted: a float64 batch is usually a bug.
FloatArray as_float32(const py::object& obj, const std::string& name);

std::vector<size_t> shape_of(const py::array& array);

// Registry lines as dicts: isa, op, name, nr.
py::list ukernel_dicts(const std::vector<UkernelInfo>& kernels);

// Array views borrow numpy memory: `keep` holds the (possibly copied) arrays
// alive. An int8 numpy array becomes an int8 view (an int8 network's
// weights), every other one a float32 view (other dtypes are refused).
struct BorrowedArrays {
  ArrayMap map;
  std::vector<FloatArray> keep;
  std::vector<Int8Array> keep_int8;

  void add(const std::string& name, const py::object& obj);
};

// One 3x3 conv's padding rule from "torch", "same" or [top, bottom, left,
// right]; a network's padding from "torch", "same" or a list of such rules
// (the weight file's "padding", docs/format.md). Error kInvalidArgument otherwise.
PadRule pad_rule(const py::handle& obj);
Padding padding_from(const py::handle& obj);

// A numpy array that takes over the tensor's storage: no copy.
py::array_t<float> to_numpy(Tensor&& tensor);
// The same for a float32 or int8 tensor (the reader's arrays).
py::array to_numpy_any(Tensor&& tensor);

}  // namespace mbv2::python
