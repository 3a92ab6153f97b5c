// The Python module mbv2_engine._core: a list of def() lines; the conversions
// live in glue.cc. C++ std::invalid_argument surfaces as ValueError, other
// exceptions as RuntimeError (pybind11's standard translation).
#include <pybind11/stl.h>

#include "core/kernel_set.h"
#include "python/glue.h"

namespace py = pybind11;
using namespace mbv2;
using namespace mbv2::python;

PYBIND11_MODULE(_core, m) {
  m.doc() = "mbv2-engine C++ core: fused MobileNetV2 inference on the CPU";

  py::class_<Model>(m, "Model")
      .def(py::init(&make_model), py::arg("arrays"), py::arg("blocks"), py::arg("stem"), py::arg("last"),
           py::arg("num_classes"), py::arg("padding"), py::arg("isa") = "auto", py::arg("threads") = 1)
      .def("run", &run_model, py::arg("x"), py::arg("layout") = "nchw",
           "Logits (N, K) float32 for a float32 batch (N, 3, H, W), or (N, H, W, 3) with layout='nhwc'.")
      .def("profile", &profile_model, py::arg("x"), py::arg("layout") = "nchw", py::arg("repeats") = 10,
           "Seconds per block for one image on one thread (stem in block 0, head and classifier in the last), "
           "best of `repeats`.")
      .def("plan", &plan_dict, py::arg("height"), py::arg("width"),
           "Shapes, work, kernels and memory of the schedule for one input size.")
      .def_property_readonly("isa", &Model::isa)
      .def_property_readonly("threads", &Model::threads)
      .def_property_readonly("num_classes", [](const Model& model) { return model.spec().num_classes; });

  m.def("available_isas", &available_isas, "ISAs this CPU runs, reference first.");
  m.def("ukernels", &ukernel_list, "Every registered microkernel: isa, op, name, nr.");
  m.def("irblock", &irblock, py::arg("x"), py::arg("expand_w"), py::arg("expand_b"), py::arg("dw_w"), py::arg("dw_b"),
        py::arg("proj_w"), py::arg("proj_b"), py::arg("stride"), py::arg("padding"), py::arg("isa") = "ref",
        "Test hook: one fused inverted-residual block on an NHWC batch.");
  m.def("stem", &stem, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("padding"), py::arg("isa") = "ref",
        "Test hook: the stem conv on an NHWC batch.");
  m.def("head", &head, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("isa") = "ref",
        "Test hook: head conv + ReLU6 + average pool, (N, H, W, C) -> (N, L).");
  m.def("ukernel_gemm", &ukernel_gemm, py::arg("name"), py::arg("a"), py::arg("w"), py::arg("b"), py::arg("c"),
        py::arg("k0"), py::arg("kc"), py::arg("start") = "c", py::arg("src") = py::none(),
        "Test hook: one registered expand, project or head microkernel.");
  m.def("ukernel_dwconv", &ukernel_dwconv, py::arg("name"), py::arg("rows"), py::arg("w"), py::arg("b"),
        py::arg("out"), py::arg("channels"), "Test hook: one registered depthwise microkernel.");
  m.def("ukernel_stem", &ukernel_stem, py::arg("name"), py::arg("rows"), py::arg("w"), py::arg("b"), py::arg("out"),
        "Test hook: one registered stem microkernel.");
}
