// The Python module mbv2_engine._test_hooks: single layers and single
// registered microkernels on numpy arrays, for the tests and the per-layer
// benchmarks. Built beside _core (CMake option MBV2_BUILD_TEST_HOOKS) and never
// linked into mbv2_core, libmbv2 or _core, which ship without these entry points.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/kernel_set.h"
#include "core/packing.h"
#include "ukernels/bf16-common.h"
#include "core/status.h"
#include "python/shared.h"
#include "testing/layer_hooks.h"
#if defined(__x86_64__) || defined(_M_X64)
#include "testing/amx_emulated.h"
#endif

namespace py = pybind11;
using namespace mbv2;
using namespace mbv2::python;

namespace {

// The kernel set of the ISA whose registry line names `name`, and that line's op.
std::pair<KernelSet, std::string> find_ukernel(const std::string& name) {
  for (const UkernelInfo& k : list_ukernels()) {
    if (name != k.name) continue;
    const std::string op = k.op;
    if (op.rfind("bf16", 0) == 0) return {select_bf16_kernels(k.isa), op.substr(4)};
    return {select_kernels(k.isa), op};
  }
#if defined(__x86_64__) || defined(_M_X64)
  if (auto emulated = testing::amx_emulated_bf16(name)) return *emulated;
#endif
  throw Error(Status::kInvalidArgument, "no registered microkernel is named '" + name + "'");
}

// A writable float32 copy of `obj` with exactly `dims` dimensions.
py::array_t<float> copy_of(const py::object& obj, const std::string& name, size_t dims) {
  const FloatArray array = as_float32(obj, name);
  require(size_t(array.ndim()) == dims, name + " must have " + std::to_string(dims) + " dimensions");
  py::array_t<float> out(shape_of(array));
  std::copy_n(array.data(), array.size(), out.mutable_data());
  return out;
}

PackedConv pack_for_hook(const py::object& w, const py::object& b, size_t nr, bool bias_in_panels, bool bf16 = false) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  return pack_conv(arrays.map, "", arrays.map["weight"].shape, nr, bias_in_panels, bf16);
}

py::array_t<float> irblock(const py::object& x, const std::optional<py::object>& expand_w,
                           const std::optional<py::object>& expand_b, const py::object& dw_w, const py::object& dw_b,
                           const py::object& proj_w, const py::object& proj_b, size_t stride,
                           const py::object& padding, const std::string& isa) {
  require(expand_w.has_value() == expand_b.has_value(), "expand_w and expand_b must be given together or both be None");
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
  return to_numpy(run_irblock_layer(isa, arrays.map, input.data(), shape_of(input), stride, pad_rule(padding)));
}

py::array_t<float> stem(const py::object& x, const py::object& w, const py::object& b, const py::object& padding,
                        const std::string& isa) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  const FloatArray input = as_float32(x, "x");
  return to_numpy(run_stem_layer(isa, arrays.map, input.data(), shape_of(input), pad_rule(padding)));
}

py::array_t<float> head(const py::object& x, const py::object& w, const py::object& b, const std::string& isa) {
  BorrowedArrays arrays;
  arrays.add("weight", w);
  arrays.add("bias", b);
  const FloatArray input = as_float32(x, "x");
  return to_numpy(run_head_layer(isa, arrays.map, input.data(), shape_of(input)));
}

py::array_t<uint16_t> bf16_round(const py::object& x) {
  const FloatArray in = as_float32(x, "x");
  py::array_t<uint16_t> out(shape_of(in));
  for (py::ssize_t i = 0; i < in.size(); i++) out.mutable_data()[i] = bf16::round(in.data()[i]);
  return out;
}

// The ukernel_* hooks call one registered microkernel by name, its weights
// packed by the engine's own packing for the kernel's nr. Each returns a copy
// of `c` / `out` after the call (so initial values show what was kept).
//
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
    const PackedConv conv = pack_for_hook(w, b, ks.project.nr, false, ks.bf16);
    require(k0 + kc <= conv.k && size_t(acc.shape(0)) == m && c_stride >= conv.n, "project: bad k0/kc or c shape");
    require(start == "c" || start == "bias+src" || start == "bias" || start == "zero",
            "project: start must be 'c', 'bias+src', 'bias' or 'zero'");
    const bool with_src = start == "bias+src";
    const py::array_t<float> src_copy = with_src ? copy_of(src, "src", 2) : py::array_t<float>();
    require(!with_src || (src_copy.shape(0) == acc.shape(0) && src_copy.shape(1) == acc.shape(1)),
            "project: src must be shaped like c");
    const float* bias = start == "bias+src" || start == "bias" ? conv.bias.data() : nullptr;
    const float* from = start == "c" ? cp : with_src ? src_copy.data() : nullptr;
    require(!ks.bf16 || k0 % 2 == 0, "project: a bf16 kernel's k0 must be even (its weights come in pairs of k)");
    ks.project.fn(m, conv.n, kc, in.data(), a_stride, conv.row(k0), conv.panel_stride, bias,
                  from, cp, c_stride);
    return acc;
  }
  require(op == "expand" || op == "head", "'" + name + "' is a " + op + " kernel, not a GEMM");
  const PackedConv conv = pack_for_hook(w, b, op == "expand" ? ks.expand.nr : ks.head.nr, true, ks.bf16);
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

// rows ((out rows - 1) * stride + 3, input pixels, pixel stride); w (channels, 3, 3);
// out (out rows, wo, >= channels).
py::array_t<float> ukernel_dwconv(const std::string& name, const py::object& rows, const py::object& w,
                                  const py::object& b, const py::object& out, size_t channels) {
  const auto [ks, op] = find_ukernel(name);
  require(op == "dwconv3x3s1" || op == "dwconv3x3s2", "'" + name + "' is a " + op + " kernel, not a depthwise one");
  const auto& dw = ks.dwconv(op == "dwconv3x3s1" ? 1 : 2);
  const size_t stride = op == "dwconv3x3s1" ? 1 : 2;
  const FloatArray in = as_float32(rows, "rows");
  py::array_t<float> result = copy_of(out, "out", 3);
  const PackedConv conv = pack_for_hook(w, b, dw.nr, true);
  const size_t out_rows = result.shape(0), wo = result.shape(1), in_stride = in.ndim() == 3 ? in.shape(2) : 0;
  require(in.ndim() == 3 && out_rows >= 1 && size_t(in.shape(0)) == (out_rows - 1) * stride + 3 &&
              size_t(in.shape(1)) >= (wo - 1) * stride + 3 && channels <= in_stride && channels <= conv.n &&
              size_t(result.shape(2)) >= channels,
          "dwconv: rows must be ((out rows - 1) * stride + 3, >= (wo - 1) * stride + 3, >= channels), "
          "out (out rows, wo, >= channels)");
  std::vector<const float*> row_ptrs(in.shape(0));
  for (size_t i = 0; i < row_ptrs.size(); i++) row_ptrs[i] = in.data() + i * in.shape(1) * in_stride;
  dw.fn(wo, channels, row_ptrs.data(), in_stride, conv.panels.data(), result.mutable_data(), result.shape(2),
        out_rows, wo * result.shape(2));
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

// planes (3, >= w) float32, read w values of each (plane stride: the row's
// length); out ((w + 2) * 3,) float32, a copy returned with the kernel's flag.
std::pair<py::array_t<float>, int> ukernel_load(const std::string& name, const py::object& planes, size_t w,
                                                const py::object& out) {
  const auto [ks, op] = find_ukernel(name);
  require(op == "load", "'" + name + "' is a " + op + " kernel, not the image row load");
  const FloatArray in = as_float32(planes, "planes");
  py::array_t<float> result = copy_of(out, "out", 1);
  require(in.ndim() == 2 && in.shape(0) == 3 && size_t(in.shape(1)) >= w && size_t(result.shape(0)) == (w + 2) * 3,
          "load: planes must be (3, >= w), out ((w + 2) * 3,)");
  const int bad = ks.load.fn(w, in.data(), in.shape(1), result.mutable_data());
  return {result, bad};
}

// ---- int8 ----

using U8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using I8Array = py::array_t<int8_t, py::array::c_style | py::array::forcecast>;

// The int8 kernel set whose registry line names `name`, and that line's op.
std::pair<QKernelSet, std::string> find_qukernel(const std::string& name) {
  for (const UkernelInfo& k : list_ukernels()) {
    if (name == k.name && k.op[0] == 'q') return {select_qkernels(k.isa), std::string(k.op).substr(1)};
  }
#if defined(__x86_64__) || defined(_M_X64)
  if (auto emulated = testing::amx_emulated_int8(name)) return {*emulated, "gemm"};
#endif
  throw Error(Status::kInvalidArgument, "no registered int8 microkernel is named '" + name + "'");
}

// A conv packed by the engine's packer from int8 weights w, float scales and bias.
PackedQConv pack_q_for_hook(const I8Array& w, const py::object& scale, const py::object& bias, QuantParams in,
                            QuantParams out, bool relu6, size_t nr, size_t kr) {
  BorrowedArrays arrays;
  arrays.add("weight_scale", scale);
  arrays.add("bias", bias);
  arrays.map["weight"] = ArrayView{nullptr, shape_of(w), w.data()};
  return pack_qconv(arrays.map, "", arrays.map["weight"].shape, in, out, relu6, nr, kr);
}

U8Array copy_u8(const U8Array& c) {
  U8Array out(std::vector<py::ssize_t>(c.shape(), c.shape() + c.ndim()));
  std::copy_n(c.data(), c.size(), out.mutable_data());
  return out;
}

// One registered int8 GEMM: a (m, >= kc rounded up to 4) uint8, w (nc, kc)
// int8, scale and bias (nc,) float32, c (m, >= nc) uint8 (a copy is returned).
// residual: None or (m, >= nc) uint8 with its (scale, zero point).
U8Array qukernel_gemm(const std::string& name, const U8Array& a, const I8Array& w, const py::object& scale,
                      const py::object& bias, float in_scale, int in_zero, float out_scale, int out_zero, bool relu6,
                      const U8Array& c, const std::optional<U8Array>& residual, float residual_scale,
                      int residual_zero) {
  const auto [ks, op] = find_qukernel(name);
  require(op == "gemm", "'" + name + "' is a q" + op + " kernel, not a GEMM");
  require(a.ndim() == 2 && w.ndim() == 2 && c.ndim() == 2, "a, w and c must be 2-D");
  const size_t m = a.shape(0), kc = w.shape(1), nc = w.shape(0);
  require(size_t(a.shape(1)) >= (kc + 3) / 4 * 4, "a must be (m, >= kc rounded up to 4)");
  require(size_t(c.shape(0)) == m && size_t(c.shape(1)) >= nc, "c must be (m, >= nc)");
  const PackedQConv conv = pack_q_for_hook(w, scale, bias, {in_scale, in_zero}, {out_scale, out_zero}, relu6,
                                           ks.gemm.nr, ks.gemm.kr);
  mbv2_qu8_requant rq = conv.requant;
  if (residual) {
    require(residual->ndim() == 2 && size_t(residual->shape(0)) == m && size_t(residual->shape(1)) >= nc,
            "residual must be (m, >= nc)");
    rq.residual = residual->data();
    rq.residual_stride = residual->shape(1);
    rq.residual_zero_point = residual_zero;
    rq.residual_scale = static_cast<float>(static_cast<double>(residual_scale) / out_scale);
  }
  U8Array result = copy_u8(c);
  ks.gemm.fn(m, nc, kc, a.data(), a.shape(1), conv.panels.data(), conv.panel_stride, &rq, result.mutable_data(),
             result.shape(1));
  return result;
}

// One registered int8 depthwise kernel: rows (3, input pixels, pixel stride)
// uint8 (zero point 0), w (channels, 3, 3) int8, out (wo, >= channels) uint8.
U8Array qukernel_dwconv(const std::string& name, const U8Array& rows, const I8Array& w, const py::object& scale,
                        const py::object& bias, float in_scale, float out_scale, const U8Array& out,
                        size_t channels) {
  const auto [ks, op] = find_qukernel(name);
  require(op == "dwconv3x3s1" || op == "dwconv3x3s2", "'" + name + "' is a q" + op + " kernel, not a depthwise one");
  const size_t stride = op == "dwconv3x3s1" ? 1 : 2;
  const auto& dw = ks.dwconv(stride);
  require(rows.ndim() == 3 && rows.shape(0) == 3 && out.ndim() == 2 && w.ndim() == 3, "rows (3, px, stride), out 2-D");
  const size_t wo = out.shape(0), in_stride = rows.shape(2);
  require(size_t(rows.shape(1)) >= (wo - 1) * stride + 3 && channels <= in_stride && channels <= size_t(w.shape(0)) &&
              size_t(out.shape(1)) >= channels,
          "dwconv: rows must be (3, >= (wo - 1) * stride + 3, >= channels), out (wo, >= channels)");
  const PackedQConv conv = pack_q_for_hook(w, scale, bias, {in_scale, 0}, {out_scale, 0}, true, dw.nr, 1);
  const uint8_t* p = rows.data();
  const uint8_t* row_ptrs[3] = {p, p + rows.shape(1) * in_stride, p + 2 * rows.shape(1) * in_stride};
  U8Array result = copy_u8(out);
  dw.fn(wo, channels, row_ptrs, in_stride, conv.panels.data(), conv.panel_stride, &conv.requant,
        result.mutable_data(), result.shape(1));
  return result;
}

// One registered quantize kernel on x (n,) float32 into a copy of out (>= n,)
// uint8, with the stem output scale's inverse and top (ukernels.h).
U8Array qukernel_quantize(const std::string& name, const FloatArray& x, float inv_scale, float hi,
                          const U8Array& out) {
  const auto [ks, op] = find_qukernel(name);
  require(op == "quantize", "'" + name + "' is a q" + op + " kernel, not a quantize one");
  require(x.ndim() == 1 && out.ndim() == 1 && out.shape(0) >= x.shape(0), "x (n,), out (>= n,)");
  U8Array result = copy_u8(out);
  ks.quantize.fn(x.shape(0), x.data(), inv_scale, hi, result.mutable_data());
  return result;
}

}  // namespace

PYBIND11_MODULE(_test_hooks, m) {
  m.doc() = "mbv2-engine test hooks: single layers and microkernels of the C++ core";
  register_error_translator();

  m.def("irblock", &irblock, py::arg("x"), py::arg("expand_w"), py::arg("expand_b"), py::arg("dw_w"), py::arg("dw_b"),
        py::arg("proj_w"), py::arg("proj_b"), py::arg("stride"), py::arg("padding"), py::arg("isa") = "ref",
        "One fused inverted-residual block on an NHWC batch.");
  m.def("stem", &stem, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("padding"), py::arg("isa") = "ref",
        "The stem conv on an NHWC batch.");
  m.def("head", &head, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("isa") = "ref",
        "Head conv + ReLU6 + average pool, (N, H, W, C) -> (N, L).");
  m.def("ukernel_gemm", &ukernel_gemm, py::arg("name"), py::arg("a"), py::arg("w"), py::arg("b"), py::arg("c"),
        py::arg("k0"), py::arg("kc"), py::arg("start") = "c", py::arg("src") = py::none(),
        "One registered expand, project or head microkernel.");
  m.def("ukernel_dwconv", &ukernel_dwconv, py::arg("name"), py::arg("rows"), py::arg("w"), py::arg("b"),
        py::arg("out"), py::arg("channels"), "One registered depthwise microkernel.");
  m.def("ukernel_stem", &ukernel_stem, py::arg("name"), py::arg("rows"), py::arg("w"), py::arg("b"), py::arg("out"),
        "One registered stem microkernel.");
  m.def("ukernel_load", &ukernel_load, py::arg("name"), py::arg("planes"), py::arg("w"), py::arg("out"),
        "One registered image row load microkernel: (the padded NHWC row, its non-finite flag).");
  m.def("qukernel_gemm", &qukernel_gemm, py::arg("name"), py::arg("a"), py::arg("w"), py::arg("scale"),
        py::arg("bias"), py::arg("in_scale"), py::arg("in_zero"), py::arg("out_scale"), py::arg("out_zero"),
        py::arg("relu6"), py::arg("c"), py::arg("residual") = py::none(), py::arg("residual_scale") = 1.0f,
        py::arg("residual_zero") = 0, "One registered int8 GEMM microkernel.");
  m.def("qukernel_dwconv", &qukernel_dwconv, py::arg("name"), py::arg("rows"), py::arg("w"), py::arg("scale"),
        py::arg("bias"), py::arg("in_scale"), py::arg("out_scale"), py::arg("out"), py::arg("channels"),
        "One registered int8 depthwise microkernel.");
  m.def("qukernel_quantize", &qukernel_quantize, py::arg("name"), py::arg("x"), py::arg("inv_scale"), py::arg("hi"),
        py::arg("out"), "One registered int8 quantize microkernel (the stem's output to uint8).");
  m.def("amx_emulated_ukernels", [] {
#if defined(__x86_64__) || defined(_M_X64)
    return ukernel_dicts(testing::amx_emulated_ukernels());
#else
    return py::list();
#endif
  }, "The AMX kernels on emulated tiles (csrc/testing/amx_emulated.h), as ukernels() lists them; "
     "ukernel_gemm and qukernel_gemm call them by name. Empty off x86-64.");
  m.def("int8_isas", &available_int8_isas, "ISAs this CPU runs int8 kernels on.");
  m.def("bf16_isas", &available_bf16_isas, "ISAs this CPU runs bf16 kernels on.");
  m.def("bf16_round", &bf16_round, py::arg("x"),
        "x (float32) rounded to bf16 as the packing and the scalar twins do (ukernels/bf16-common.h): uint16 bits.");
}
