#include "python/glue.h"

#include <pybind11/stl.h>

#include <stdexcept>

#include "core/layer_hooks.h"

namespace mbv2::python {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A float32 numpy array, made C-contiguous (a copy only if it was not). Other
// dtypes are refused rather than converted: a float64 batch is usually a bug.
FloatArray as_float32(const py::object& obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj)) throw std::invalid_argument(name + " must be a numpy array");
  const auto array = py::reinterpret_borrow<py::array>(obj);
  if (!array.dtype().is(py::dtype::of<float>())) {
    throw std::invalid_argument(name + " must be float32, got " + std::string(py::str(array.dtype())));
  }
  return FloatArray::ensure(array);
}

std::vector<size_t> shape_of(const py::array& array) {
  return std::vector<size_t>(array.shape(), array.shape() + array.ndim());
}

// Array views borrow numpy memory: `keep` holds the (possibly copied) arrays alive.
struct BorrowedArrays {
  ArrayMap map;
  std::vector<FloatArray> keep;

  void add(const std::string& name, const py::object& obj) {
    keep.push_back(as_float32(obj, "array '" + name + "'"));
    map[name] = {keep.back().data(), shape_of(keep.back())};
  }
};

py::array_t<float> to_numpy(Tensor&& t) {
  py::array_t<float> out(t.shape);
  std::copy(t.data.begin(), t.data.end(), out.mutable_data());
  return out;
}

}  // namespace

std::unique_ptr<Model> make_model(const py::dict& arrays, const std::vector<BlockTuple>& blocks, size_t stem,
                                  size_t last, size_t num_classes, const std::string& padding, const std::string& isa,
                                  size_t threads) {
  BorrowedArrays borrowed;
  for (const auto& [name, array] : arrays) {
    borrowed.add(py::cast<std::string>(name), py::reinterpret_borrow<py::object>(array));
  }
  NetworkSpec spec;
  spec.stem = stem;
  spec.last = last;
  spec.num_classes = num_classes;
  spec.padding = parse_padding(padding);
  for (const auto& [cin, t, cout, stride] : blocks) spec.blocks.push_back({cin, t, cout, stride});
  return std::make_unique<Model>(borrowed.map, std::move(spec), isa, threads);
}

py::array_t<float> run_model(const Model& model, const py::object& x, const std::string& layout_name) {
  const Layout layout = parse_layout(layout_name);
  const FloatArray batch = as_float32(x, "x");
  const auto shape = shape_of(batch);
  const size_t channel_axis = layout == Layout::NCHW ? 1 : 3;
  if (shape.size() != 4 || shape[channel_axis] != 3) {
    throw std::invalid_argument("x has shape " + shape_str(shape) + ", expected " +
                                (layout == Layout::NCHW ? "(N, 3, H, W)" : "(N, H, W, 3)"));
  }
  const size_t n = shape[0], h = shape[layout == Layout::NCHW ? 2 : 1], w = shape[layout == Layout::NCHW ? 3 : 2];
  check_input_size(n, h, w);
  py::array_t<float> out({n, model.spec().num_classes});
  float* logits = out.mutable_data();
  {
    py::gil_scoped_release release;
    model.run(batch.data(), n, h, w, layout, logits);
  }
  return out;
}

py::dict plan_dict(const Model& model, size_t height, size_t width) {
  const auto plan = model.plan(height, width);
  py::list layers;
  for (const LayerPlan& l : plan->layers) {
    py::dict d;
    d["name"] = l.name;
    d["in_hw"] = py::make_tuple(l.in_h, l.in_w);
    d["out_hw"] = py::make_tuple(l.out_h, l.out_w);
    d["cin"] = l.cin;
    d["hidden"] = l.hidden;
    d["cout"] = l.cout;
    d["stride"] = l.stride;
    d["residual"] = l.residual;
    d["pad"] = py::make_tuple(l.pad_top, l.pad_left);
    d["macs"] = l.macs;
    d["chunk"] = l.chunk;
    d["kernels"] = l.kernels;
    layers.append(d);
  }
  py::dict out;
  out["isa"] = model.isa();
  out["threads"] = model.threads();
  out["arena_bytes"] = plan->arena_bytes;
  out["ring_bytes"] = plan->ring_bytes;
  out["largest_expanded_bytes"] = plan->largest_expanded_bytes;
  out["unfused_live_bytes"] = plan->unfused_live_bytes;
  out["layers"] = layers;
  return out;
}

py::list ukernel_list() {
  py::list out;
  for (const UkernelInfo& k : list_ukernels()) {
    out.append(py::dict(py::arg("isa") = k.isa, py::arg("op") = k.op, py::arg("name") = k.name, py::arg("nr") = k.nr));
  }
  return out;
}

py::array_t<float> irblock(const py::object& x, const std::optional<py::object>& expand_w,
                           const std::optional<py::object>& expand_b, const py::object& dw_w, const py::object& dw_b,
                           const py::object& proj_w, const py::object& proj_b, size_t stride,
                           const std::string& padding, const std::string& isa) {
  if (expand_w.has_value() != expand_b.has_value()) {
    throw std::invalid_argument("expand_w and expand_b must be given together or both be None");
  }
  BorrowedArrays arrays;
  if (expand_w) {
    arrays.add("expand.weight", *expand_w);
    arrays.add("expand.bias", *expand_b);
  }
  arrays.add("depthwise.weight", dw_w);
  arrays.add("depthwise.bias", dw_b);
  arrays.add("project.weight", proj_w);
  arrays.add("project.bias", proj_b);
  const FloatArray input = as_float32(x, "x");
  return to_numpy(run_irblock_layer(isa, arrays.map, input.data(), shape_of(input), stride, parse_padding(padding)));
}

py::array_t<float> stem(const py::object& x, const py::object& w, const py::object& b, const std::string& padding,
                        const std::string& isa) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  const FloatArray input = as_float32(x, "x");
  return to_numpy(run_stem_layer(isa, arrays.map, input.data(), shape_of(input), parse_padding(padding)));
}

py::array_t<float> head(const py::object& x, const py::object& w, const py::object& b, const std::string& isa) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  const FloatArray input = as_float32(x, "x");
  return to_numpy(run_head_layer(isa, arrays.map, input.data(), shape_of(input)));
}

}  // namespace mbv2::python
