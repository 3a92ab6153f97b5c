// Conversions between numpy/Python objects and the core's types. The core never
// sees a Python object; everything the user hands in is checked here first.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/model.h"

namespace mbv2::python {

namespace py = pybind11;
using BlockTuple = std::tuple<size_t, size_t, size_t, size_t>;  // (cin, t, cout, stride)

std::unique_ptr<Model> make_model(const py::dict& arrays, const std::vector<BlockTuple>& blocks, size_t stem,
                                  size_t last, size_t num_classes, const std::string& padding, const std::string& isa,
                                  size_t threads);
py::array_t<float> run_model(const Model& model, const py::object& x, const std::string& layout);
py::dict plan_dict(const Model& model, size_t height, size_t width);
py::array_t<double> profile_model(const Model& model, const py::object& x, const std::string& layout, size_t repeats);
py::list ukernel_list();

py::array_t<float> irblock(const py::object& x, const std::optional<py::object>& expand_w,
                           const std::optional<py::object>& expand_b, const py::object& dw_w, const py::object& dw_b,
                           const py::object& proj_w, const py::object& proj_b, size_t stride,
                           const std::string& padding, const std::string& isa);
py::array_t<float> stem(const py::object& x, const py::object& w, const py::object& b, const std::string& padding,
                        const std::string& isa);
py::array_t<float> head(const py::object& x, const py::object& w, const py::object& b, const std::string& isa);

// Test hooks: one registered microkernel, called by name on numpy arrays, its
// weights packed by the engine's own packing for the kernel's nr. Each returns
// a copy of `c` / `out` after the call (so initial values show what was kept).
py::array_t<float> ukernel_gemm(const std::string& name, const py::object& a, const py::object& w,
                                const py::object& b, const py::object& c, size_t k0, size_t kc,
                                const std::string& start, const py::object& src);
py::array_t<float> ukernel_dwconv(const std::string& name, const py::object& rows, const py::object& w,
                                  const py::object& b, const py::object& out, size_t channels);
py::array_t<float> ukernel_stem(const std::string& name, const py::object& rows, const py::object& w,
                                const py::object& b, const py::object& out);

}  // namespace mbv2::python
