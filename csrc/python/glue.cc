#include "python/glue.h"

#include <pybind11/stl.h>

#include <stdexcept>

#include "core/layer_hooks.h"
#include "core/packing.h"

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

// The kernel set of the ISA whose registry line names `name`, and that line's op.
std::pair<KernelSet, std::string> find_ukernel(const std::string& name) {
  for (const UkernelInfo& k : list_ukernels()) {
    if (name == k.name) return {select_kernels(k.isa), k.op};
  }
  throw std::invalid_argument("no registered microkernel is named '" + name + "'");
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

// A writable float32 copy of `obj` with exactly `dims` dimensions.
py::array_t<float> copy_of(const py::object& obj, const std::string& name, size_t dims) {
  const FloatArray array = as_float32(obj, name);
  require(size_t(array.ndim()) == dims, name + " must have " + std::to_string(dims) + " dimensions");
  py::array_t<float> out(shape_of(array));
  std::copy_n(array.data(), array.size(), out.mutable_data());
  return out;
}

PackedConv pack_for_hook(const py::object& w, const py::object& b, size_t nr, bool bias_in_panels) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  return pack_conv(arrays.map, "", arrays.map["weight"].shape, nr, bias_in_panels);
}

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

namespace {

// The (n, h, w) of a float32 batch in `layout`, or std::invalid_argument.
std::tuple<size_t, size_t, size_t> batch_dims(const FloatArray& batch, Layout layout) {
  const auto shape = shape_of(batch);
  const size_t channel_axis = layout == Layout::NCHW ? 1 : 3;
  if (shape.size() != 4 || shape[channel_axis] != 3) {
    throw std::invalid_argument("x has shape " + shape_str(shape) + ", expected " +
                                (layout == Layout::NCHW ? "(N, 3, H, W)" : "(N, H, W, 3)"));
  }
  const size_t n = shape[0], h = shape[layout == Layout::NCHW ? 2 : 1], w = shape[layout == Layout::NCHW ? 3 : 2];
  check_input_size(n, h, w);
  return {n, h, w};
}

}  // namespace

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
  if (n != 1) throw std::invalid_argument("profile takes one image (N = 1), got N = " + std::to_string(n));
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

// a (m, >= kc) rows of A; w (nc, K), b (nc,); c (m, >= nc), or (1, nc) for the
// head's sums. Project multiplies columns k0 .. k0 + kc of w (a depthwise chunk)
// onto `start`: "c" (c itself, accumulating), "bias+src" (b + src, src shaped
// like c), "bias" or "zero".
py::array_t<float> ukernel_gemm(const std::string& name, const py::object& a, const py::object& w,
                                const py::object& b, const py::object& c, size_t k0, size_t kc,
                                const std::string& start, const py::object& src) {
  const auto [ks, op] = find_ukernel(name);
  const FloatArray in = as_float32(a, "a");
  py::array_t<float> acc = copy_of(c, "c", 2);
  require(in.ndim() == 2 && size_t(in.shape(1)) >= kc, "a must be (m, >= kc)");
  const size_t m = in.shape(0), a_stride = in.shape(1), c_stride = acc.shape(1);
  float* cp = acc.mutable_data();
  if (op == "project") {
    const PackedConv conv = pack_for_hook(w, b, ks.project.nr, false);
    require(k0 + kc <= conv.k && size_t(acc.shape(0)) == m && c_stride >= conv.n, "project: bad k0/kc or c shape");
    require(start == "c" || start == "bias+src" || start == "bias" || start == "zero",
            "project: start must be 'c', 'bias+src', 'bias' or 'zero'");
    const bool with_src = start == "bias+src";
    const py::array_t<float> src_copy = with_src ? copy_of(src, "src", 2) : py::array_t<float>();
    require(!with_src || (src_copy.shape(0) == acc.shape(0) && src_copy.shape(1) == acc.shape(1)),
            "project: src must be shaped like c");
    const float* bias = start == "bias+src" || start == "bias" ? conv.bias.data() : nullptr;
    const float* from = start == "c" ? cp : with_src ? src_copy.data() : nullptr;
    ks.project.fn(m, conv.n, kc, in.data(), a_stride, conv.panels.data() + k0 * conv.nr, conv.panel_stride, bias,
                  from, cp, c_stride);
    return acc;
  }
  require(op == "expand" || op == "head", "'" + name + "' is a " + op + " kernel, not a GEMM");
  const PackedConv conv = pack_for_hook(w, b, op == "expand" ? ks.expand.nr : ks.head.nr, true);
  require(k0 == 0 && kc == conv.k, op + ": kc must be w.shape[1] and k0 0");
  if (op == "head") {
    require(acc.shape(0) == 1 && size_t(acc.shape(1)) == conv.n, "head: c must be (1, nc)");
    ks.head.fn(m, conv.n, kc, in.data(), a_stride, conv.panels.data(), cp);
  } else {
    require(size_t(acc.shape(0)) == m && c_stride >= conv.n, "expand: c must be (m, >= nc)");
    ks.expand.fn(m, conv.n, kc, in.data(), a_stride, conv.panels.data(), cp, c_stride);
  }
  return acc;
}

// rows (3, input pixels, pixel stride); w (channels, 3, 3); out (wo, >= channels).
py::array_t<float> ukernel_dwconv(const std::string& name, const py::object& rows, const py::object& w,
                                  const py::object& b, const py::object& out, size_t channels) {
  const auto [ks, op] = find_ukernel(name);
  require(op == "dwconv3x3s1" || op == "dwconv3x3s2", "'" + name + "' is a " + op + " kernel, not a depthwise one");
  const auto& dw = ks.dwconv(op == "dwconv3x3s1" ? 1 : 2);
  const size_t stride = op == "dwconv3x3s1" ? 1 : 2;
  const FloatArray in = as_float32(rows, "rows");
  py::array_t<float> result = copy_of(out, "out", 2);
  const PackedConv conv = pack_for_hook(w, b, dw.nr, true);
  const size_t wo = result.shape(0), in_stride = in.ndim() == 3 ? in.shape(2) : 0;
  require(in.ndim() == 3 && in.shape(0) == 3 && size_t(in.shape(1)) >= (wo - 1) * stride + 3 &&
              channels <= in_stride && channels <= conv.n && size_t(result.shape(1)) >= channels,
          "dwconv: rows must be (3, >= (wo - 1) * stride + 3, >= channels), out (wo, >= channels)");
  const float* row_ptrs[3] = {in.data(), in.data() + in.shape(1) * in_stride, in.data() + 2 * in.shape(1) * in_stride};
  dw.fn(wo, channels, row_ptrs, in_stride, conv.panels.data(), result.mutable_data(), result.shape(1));
  return result;
}

// rows (3, input pixels * 3); w (nc, 3, 3, 3); out (wo, >= nc).
py::array_t<float> ukernel_stem(const std::string& name, const py::object& rows, const py::object& w,
                                const py::object& b, const py::object& out) {
  const auto [ks, op] = find_ukernel(name);
  require(op == "stem", "'" + name + "' is a " + op + " kernel, not the stem");
  const FloatArray in = as_float32(rows, "rows");
  py::array_t<float> result = copy_of(out, "out", 2);
  const PackedConv conv = pack_for_hook(w, b, ks.stem.nr, true);
  const size_t wo = result.shape(0);
  require(in.ndim() == 2 && in.shape(0) == 3 && size_t(in.shape(1)) >= (2 * wo + 1) * 3 &&
              size_t(result.shape(1)) >= conv.n,
          "stem: rows must be (3, >= (2 wo + 1) * 3), out (wo, >= nc)");
  const float* row_ptrs[3] = {in.data(), in.data() + in.shape(1), in.data() + 2 * in.shape(1)};
  ks.stem.fn(wo, conv.n, row_ptrs, conv.panels.data(), result.mutable_data(), result.shape(1));
  return result;
}

}  // namespace mbv2::python
