// Conversions between numpy/Python objects and the core's types for
// mbv2_engine._core. The core never sees a Python object; everything the user
// hands in is checked here first.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/model.h"

namespace mbv2::python {

namespace py = pybind11;
using BlockTuple = std::tuple<size_t, size_t, size_t, size_t>;  // (cin, t, cout, stride)
using DenseTuple = std::pair<size_t, std::string>;                 // (units, activation)

std::unique_ptr<Model> make_model(const py::dict& arrays, const std::vector<BlockTuple>& blocks, size_t stem,
                                  size_t last, size_t num_classes, const py::object& padding, const std::string& isa,
                                  size_t threads, const std::vector<DenseTuple>& hidden,
                                  const std::vector<std::pair<float, int32_t>>& quant, const std::string& dtype);
py::array_t<float> run_model(const Model& model, const py::object& x, const std::string& layout);
py::dict plan_dict(const Model& model, size_t height, size_t width);
py::array_t<double> profile_model(const Model& model, const py::object& x, const std::string& layout, size_t repeats);
py::list ukernel_list();

// The weight file (docs/format.md) read by the C++ reader, GIL released: (meta
// dict, arrays), the arrays in member_shapes order and not copied.
py::tuple read_weight_file(const std::string& path);
py::tuple read_weight_file_bytes(const py::bytes& data);

// The network table (core/network.h): mobilenet_v2's channels and blocks,
// every layer's shapes at one input size, the weight file's members, one conv's
// output size and padding.
py::dict network_dict(double width_mult, size_t num_classes);
py::list layer_shape_list(size_t stem, const std::vector<BlockTuple>& blocks, size_t last, size_t num_classes,
                          const py::object& padding, size_t height, size_t width,
                          const std::vector<DenseTuple>& hidden);
py::list member_shape_list(size_t stem, const std::vector<BlockTuple>& blocks, size_t last, size_t num_classes,
                           const std::vector<DenseTuple>& hidden);
// (zero rows before the input, output size) of one axis of a 3x3 conv under a rule.
py::tuple conv_axis_tuple(size_t size, size_t stride, const py::object& rule);

}  // namespace mbv2::python
