// The Python module mbv2_engine._core: a list of def() lines; the conversions
// live in glue.cc. Every mbv2::Error raises the mbv2_engine.errors class of its
// status (python/shared.h). The test hooks are in another module, test_hooks.cc.
#include <pybind11/stl.h>

#include "core/fma_peak.h"
#include "core/kernel_set.h"
#include "io/weight_file.h"
#include "python/glue.h"
#include "python/shared.h"

namespace py = pybind11;
using namespace mbv2;
using namespace mbv2::python;

PYBIND11_MODULE(_core, m) {
  m.doc() = "mbv2-engine C++ core: fused MobileNetV2 inference on the CPU";
  register_error_translator();

  py::class_<Model>(m, "Model")
      .def(py::init(&make_model), py::arg("arrays"), py::arg("blocks"), py::arg("stem"), py::arg("last"),
           py::arg("num_classes"), py::arg("padding"), py::arg("isa") = "auto", py::arg("threads") = 1,
           py::arg("hidden") = std::vector<DenseTuple>{},
           py::arg("quant") = std::vector<std::pair<float, int32_t>>{}, py::arg("dtype") = "float32",
           "padding: 'torch', 'same' or one rule per stride-2 conv; hidden: (units, activation) per hidden layer; "
           "quant: an int8 network's (scale, zero point) per activation tensor (docs/format.md, version 3); "
           "dtype: 'float32' or 'bf16' (a float32 network's 1x1 convs in bf16).")
      .def("run", &run_model, py::arg("x"), py::arg("layout") = "nchw",
           "Logits (N, K) float32 for a float32 batch (N, 3, H, W), or (N, H, W, 3) with layout='nhwc'.")
      .def("profile", &profile_model, py::arg("x"), py::arg("layout") = "nchw", py::arg("repeats") = 10,
           "Seconds per block for one image on one thread (stem in block 0, head and classifier in the last), "
           "best of `repeats`.")
      .def("plan", &plan_dict, py::arg("height"), py::arg("width"),
           "Shapes, work, kernels and memory of the schedule for one input size.")
      .def_property_readonly("isa", &Model::isa)
      .def_property_readonly("precision", &Model::precision)
      .def_property_readonly("threads", &Model::threads)
      .def_property_readonly("num_classes", [](const Model& model) { return model.spec().num_classes; });

  m.def("available_isas", &available_isas, "ISAs this CPU runs, reference first.");
  m.def("int8_peak_gops", &int8_peak_gops, py::arg("isa"), py::arg("iters") = 500000, py::arg("trials") = 20,
        py::call_guard<py::gil_scoped_release>(),
        "One thread's int8 peak in GOP/s: vpdpbusd for 'avx512' or 'avxvnni', TDPBUSD for 'amx'; -1 for another ISA "
        "or a CPU without it.");
  m.def("available_int8_isas", &available_int8_isas, "ISAs this CPU runs int8 networks on, reference first.");
  m.def("bf16_peak_gflops", &bf16_peak_gflops, py::arg("isa"), py::arg("iters") = 500000, py::arg("trials") = 20,
        py::call_guard<py::gil_scoped_release>(),
        "One thread's bf16 peak in GFLOP/s: vdpbf16ps for 'avx512', TDPBF16PS for 'amx'; -1 for another ISA or a "
        "CPU without it.");
  m.def("available_bf16_isas", &available_bf16_isas, "ISAs this CPU runs bf16 on, reference first.");
  m.def("float_isa_for", &float_isa_for, py::arg("isa"),
        "The float32 ISA whose kernels an int8 or bf16 network on `isa` uses for its float32 layers.");
  m.def("fma_peak_gflops", &fma_peak_gflops, py::arg("isa"), py::arg("iters") = 500000, py::arg("trials") = 20,
        py::call_guard<py::gil_scoped_release>(),
        "One thread's FMA peak in GFLOP/s for 'avx2' or 'avx512' (best of `trials` runs of 12 x `iters` FMAs); "
        "-1 for another ISA or a CPU without it.");
  m.def("ukernels", &ukernel_list, "Every registered microkernel: isa, op, name, nr.");

  m.def("read_weight_file", &read_weight_file, py::arg("path"),
        "Read and validate a weight file: (meta, arrays), the arrays float32 and not copied.");
  m.def("read_weight_file_bytes", &read_weight_file_bytes, py::arg("data"),
        "read_weight_file for a weight file held in memory.");
  m.attr("FORMAT_NAME") = io::kFormatName;
  m.attr("FORMAT_VERSION") = io::kFormatVersion;
  m.attr("MAX_WIDTH_MULT") = io::kMaxWidthMult;
  m.attr("MIN_CLASSES") = io::kMinClasses;
  m.attr("MAX_CLASSES") = io::kMaxClasses;
  m.attr("MIN_INPUT") = io::kMinInput;
  m.attr("MAX_THREADS") = kMaxThreads;
  m.attr("MAX_INPUT") = io::kMaxInput;
  m.def("check_input_size", &check_input_size, py::arg("n"), py::arg("height"), py::arg("width"),
        "InputError unless a batch of n images of height x width is one run() takes (sides 32..8192, at most "
        "2^32 floats): Python checks it before copying a caller's array, which may be a view far larger than "
        "its memory.");

  m.def("network", &network_dict, py::arg("width_mult"), py::arg("num_classes"),
        "MobileNetV2 at a width multiplier: stem, last and blocks as (cin, t, cout, stride).");
  m.def("layer_shapes", &layer_shape_list, py::arg("stem"), py::arg("blocks"), py::arg("last"),
        py::arg("num_classes"), py::arg("padding"), py::arg("height"), py::arg("width"),
        py::arg("hidden") = std::vector<DenseTuple>{}, "Every layer's shapes, pads, multiply-adds and parameters at one input size.");
  m.def("member_shapes", &member_shape_list, py::arg("stem"), py::arg("blocks"), py::arg("last"),
        py::arg("num_classes"), py::arg("hidden") = std::vector<DenseTuple>{},
        "The weight file's array members as (name, shape), in network order.");
  m.def("conv_axis", &conv_axis_tuple, py::arg("size"), py::arg("stride"), py::arg("rule"),
        "(zero rows before the input, output size) of one axis of a 3x3 conv; rule 'torch', 'same' or "
        "[top, bottom, left, right] (rows: top and bottom).");
}
