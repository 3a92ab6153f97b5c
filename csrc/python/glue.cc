#include "python/glue.h"

#include <pybind11/stl.h>

#include <string_view>
#include <utility>

#include "core/status.h"
#include "io/weight_file.h"
#include "python/shared.h"

namespace mbv2::python {
namespace {

NetworkSpec network_spec(size_t stem, const std::vector<BlockTuple>& blocks, size_t last, size_t num_classes,
                         const py::object& padding, const std::vector<DenseTuple>& hidden) {
  NetworkSpec spec;
  spec.stem = stem;
  spec.last = last;
  spec.num_classes = num_classes;
  for (const auto& [cin, t, cout, stride] : blocks) spec.blocks.push_back({cin, t, cout, stride});
  for (const auto& [units, activation] : hidden) {
    require(units >= 1, "a hidden layer needs at least one unit");
    spec.hidden.push_back({units, parse_activation(activation)});
  }
  apply_padding(spec, padding_from(padding));
  return spec;
}

// The (n, h, w) of a float32 batch in `layout`, or Error kInvalidArgument.
std::tuple<size_t, size_t, size_t> batch_dims(const FloatArray& batch, Layout layout) {
  const auto shape = shape_of(batch);
  const size_t channel_axis = layout == Layout::NCHW ? 1 : 3;
  if (shape.size() != 4 || shape[channel_axis] != 3) {
    throw Error(Status::kInvalidArgument, "x has shape " + shape_str(shape) + ", expected " +
                                              (layout == Layout::NCHW ? "(N, 3, H, W)" : "(N, H, W, 3)"));
  }
  const size_t n = shape[0], h = shape[layout == Layout::NCHW ? 2 : 1], w = shape[layout == Layout::NCHW ? 3 : 2];
  check_input_size(n, h, w);
  return {n, h, w};
}

// What `engine.plan` and `arch.layer_shapes` report of a layer.
py::dict layer_dict(const LayerShape& l) {
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
  d["params"] = l.params;
  return d;
}

// The reader's result as (meta, arrays): the metadata through Python's json,
// each array owning its tensor's storage.
py::tuple weight_file_tuple(io::WeightFile&& file) {
  py::dict arrays;
  for (const auto& member : member_shapes(file.network)) {
    const auto it = file.arrays.find(member.first);
    if (it == file.arrays.end()) throw Error(Status::kInternal, "the reader returned no array '" + member.first + "'");
    arrays[py::str(member.first)] = to_numpy_any(std::move(it->second));
  }
  const py::object meta = py::module_::import("json").attr("loads")(file.meta.json);
  return py::make_tuple(meta, arrays);
}

template <class Load>
io::WeightFile load_without_gil(Load load) {
  py::gil_scoped_release release;
  return load();
}

}  // namespace

std::unique_ptr<Model> make_model(const py::dict& arrays, const std::vector<BlockTuple>& blocks, size_t stem,
                                  size_t last, size_t num_classes, const py::object& padding, const std::string& isa,
                                  size_t threads, const std::vector<DenseTuple>& hidden,
                                  const std::vector<std::pair<float, int32_t>>& quant, const std::string& dtype) {
  BorrowedArrays borrowed;
  for (const auto& [name, array] : arrays) {
    borrowed.add(py::cast<std::string>(name), py::reinterpret_borrow<py::object>(array));
  }
  NetworkSpec spec = network_spec(stem, blocks, last, num_classes, padding, hidden);
  for (const auto& [scale, zero_point] : quant) {
    require(scale > 0 && zero_point >= 0 && zero_point <= 255, "a quantized tensor needs scale > 0 and a zero point in [0, 255]");
    spec.quant.push_back({scale, zero_point});
  }
  return std::make_unique<Model>(borrowed.map, std::move(spec), isa, threads, dtype);
}

py::array_t<float> run_model(const Model& model, const py::object& x, const std::string& layout_name) {
  const Layout layout = parse_layout(layout_name);
  const FloatArray batch = as_float32(x, "x");
  const auto [n, h, w] = batch_dims(batch, layout);
  py::array_t<float> out({n, model.spec().num_classes});
  float* logits = out.mutable_data();
  {
    py::gil_scoped_release release;
    model.run(batch.data(), n, h, w, layout, logits);
  }
  return out;
}

py::array_t<double> profile_model(const Model& model, const py::object& x, const std::string& layout_name,
                                  size_t repeats) {
  const Layout layout = parse_layout(layout_name);
  const FloatArray batch = as_float32(x, "x");
  const auto [n, h, w] = batch_dims(batch, layout);
  require(n == 1, "profile takes one image (N = 1), got N = " + std::to_string(n));
  std::vector<double> seconds;
  {
    py::gil_scoped_release release;
    seconds = model.profile(batch.data(), h, w, layout, repeats);
  }
  py::array_t<double> out(seconds.size());
  std::copy(seconds.begin(), seconds.end(), out.mutable_data());
  return out;
}

py::dict plan_dict(const Model& model, size_t height, size_t width) {
  const auto plan = model.plan(height, width);
  py::list layers;
  for (const LayerPlan& l : plan->layers) {
    py::dict d = layer_dict(l);
    d["chunk"] = l.chunk;
    d["kernels"] = l.kernels;
    layers.append(d);
  }
  py::dict out;
  out["isa"] = model.isa();
  out["precision"] = model.precision();
  out["threads"] = model.threads();
  out["arena_bytes"] = plan->arena_bytes;
  out["ring_bytes"] = plan->ring_bytes;
  out["largest_expanded_bytes"] = plan->largest_expanded_bytes;
  out["unfused_live_bytes"] = plan->unfused_live_bytes;
  out["layers"] = layers;
  return out;
}

py::list ukernel_list() { return ukernel_dicts(list_ukernels()); }

py::tuple read_weight_file(const std::string& path) {
  return weight_file_tuple(load_without_gil([&] { return io::load_weight_file(path); }));
}

// The bytes object stays referenced by the caller, and is immutable, while the GIL is released.
py::tuple read_weight_file_bytes(const py::bytes& data) {
  const std::string_view bytes = data;
  return weight_file_tuple(
      load_without_gil([&] { return io::load_weight_file_from_memory(bytes.data(), bytes.size()); }));
}

py::dict network_dict(double width_mult, size_t num_classes) {
  // The table's rounding casts channel counts to integers: keep them in range (NaN fails too).
  if (!(width_mult > 0 && width_mult <= io::kMaxWidthMult)) {
    const auto repr = [](double v) { return std::string(py::repr(py::float_(v))); };
    throw Error(Status::kInvalidArgument,
                "width_mult must be in (0, " + repr(io::kMaxWidthMult) + "], got " + repr(width_mult));
  }
  const NetworkSpec spec = mobilenet_v2(width_mult, num_classes);
  py::list blocks;
  for (const BlockSpec& b : spec.blocks) blocks.append(py::make_tuple(b.cin, b.t, b.cout, b.stride));
  return py::dict(py::arg("stem") = spec.stem, py::arg("last") = spec.last, py::arg("blocks") = blocks);
}

py::list layer_shape_list(size_t stem, const std::vector<BlockTuple>& blocks, size_t last, size_t num_classes,
                          const py::object& padding, size_t height, size_t width,
                          const std::vector<DenseTuple>& hidden) {
  for (const auto& block : blocks) require(std::get<3>(block) >= 1, "every block's stride must be >= 1");
  py::list out;
  const NetworkSpec spec = network_spec(stem, blocks, last, num_classes, padding, hidden);
  for (const LayerShape& l : layer_shapes(spec, height, width)) out.append(layer_dict(l));
  return out;
}

py::list member_shape_list(size_t stem, const std::vector<BlockTuple>& blocks, size_t last, size_t num_classes,
                           const std::vector<DenseTuple>& hidden) {
  py::list out;
  const NetworkSpec spec = network_spec(stem, blocks, last, num_classes, py::str("torch"), hidden);
  for (const auto& [name, shape] : member_shapes(spec)) {
    out.append(py::make_tuple(name, py::tuple(py::cast(shape))));
  }
  return out;
}

py::tuple conv_axis_tuple(size_t size, size_t stride, const py::object& rule) {
  require(stride == 1 || stride == 2, "stride must be 1 or 2");
  const ConvAxis axis = conv_rows(size, stride, pad_rule(rule));
  return py::make_tuple(axis.pad_before, axis.out);
}

}  // namespace mbv2::python
