#include "python/shared.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <utility>

#include "core/status.h"

namespace mbv2::python {
namespace {

// mbv2_engine.errors is imported at the first error, not with the module: the
// package imports _core before it could import errors.
void set_python_error(Status status, const char* message) {
  const py::object errors = py::module_::import("mbv2_engine.errors").attr("STATUS_ERRORS");
  const py::object type = errors[py::str(status_string(status))];
  // Messages can quote bytes from a file (member names), which need not be UTF-8.
  const auto text = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(message, std::strlen(message), "replace"));
  PyErr_SetObject(type.ptr(), text.ptr());
}

}  // namespace

void register_error_translator() {
  py::register_local_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const Error& e) {
      set_python_error(e.status(), e.what());
    } catch (const std::bad_alloc&) {
      set_python_error(Status::kOutOfMemory, "out of memory");
    }
  });
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error(Status::kInvalidArgument, what);
}

FloatArray as_float32(const py::object& obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj)) throw Error(Status::kInvalidArgument, name + " must be a numpy array");
  const auto array = py::reinterpret_borrow<py::array>(obj);
  if (!array.dtype().is(py::dtype::of<float>())) {
    throw Error(Status::kInvalidArgument, name + " must be float32, got " + std::string(py::str(array.dtype())));
  }
  return FloatArray::ensure(array);
}

std::vector<size_t> shape_of(const py::array& array) {
  return std::vector<size_t>(array.shape(), array.shape() + array.ndim());
}

py::list ukernel_dicts(const std::vector<UkernelInfo>& kernels) {
  py::list out;
  for (const UkernelInfo& k : kernels) {
    out.append(py::dict(py::arg("isa") = k.isa, py::arg("op") = k.op, py::arg("name") = k.name, py::arg("nr") = k.nr));
  }
  return out;
}

void BorrowedArrays::add(const std::string& name, const py::object& obj) {
  if (py::isinstance<py::array>(obj) && py::array(obj).dtype().is(py::dtype::of<int8_t>())) {
    keep_int8.push_back(Int8Array::ensure(obj));  // C-contiguous, a copy only if it was not
    map[name] = ArrayView{nullptr, shape_of(keep_int8.back()), keep_int8.back().data()};
    return;
  }
  keep.push_back(as_float32(obj, "array '" + name + "'"));
  map[name] = {keep.back().data(), shape_of(keep.back())};
}

PadRule pad_rule(const py::handle& obj) {
  if (py::isinstance<py::str>(obj)) return parse_padding(obj.cast<std::string>()).front();
  const bool sequence = py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj);
  if (!sequence || py::len(obj) != 4) {
    throw Error(Status::kInvalidArgument, "a padding rule is 'torch', 'same' or [top, bottom, left, right], got " +
                                              std::string(py::repr(obj)));
  }
  std::vector<size_t> sides;
  for (const py::handle& side : obj) {
    require(py::isinstance<py::int_>(side) && !py::isinstance<py::bool_>(side) && side.cast<long long>() >= 0,
            "a fixed padding rule's sides are non-negative integers, got " + std::string(py::repr(obj)));
    sides.push_back(side.cast<size_t>());
  }
  return fixed_pad(sides[0], sides[1], sides[2], sides[3]);
}

Padding padding_from(const py::handle& obj) {
  if (py::isinstance<py::str>(obj)) return parse_padding(obj.cast<std::string>());
  require(py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj),
          "padding is 'torch', 'same' or a list of rules, got " + std::string(py::repr(obj)));
  Padding rules;
  for (const py::handle& rule : obj) rules.push_back(pad_rule(rule));
  require(!rules.empty(), "a padding list needs at least one rule");
  return rules;
}

namespace {

template <class T>
py::array_t<T> owning_array(std::vector<size_t> shape, std::vector<T>&& values) {
  auto storage = std::make_unique<std::vector<T>>(std::move(values));
  const T* data = storage->data();
  const py::capsule owner(storage.get(), [](void* p) { delete static_cast<std::vector<T>*>(p); });
  storage.release();  // the capsule owns it now
  return py::array_t<T>(shape, data, owner);
}

}  // namespace

py::array_t<float> to_numpy(Tensor&& tensor) { return owning_array(tensor.shape, std::move(tensor.data)); }

py::array to_numpy_any(Tensor&& tensor) {
  if (!tensor.int8.empty()) return owning_array(tensor.shape, std::move(tensor.int8));
  return to_numpy(std::move(tensor));
}

}  // namespace mbv2::python
