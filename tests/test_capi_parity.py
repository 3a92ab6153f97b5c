"""The installed libmbv2 (C API, through ctypes) and the Python engine read the
same .npz with two readers but share one core: their logits must be identical."""
import ctypes

import numpy as np
import pytest

from mbv2_engine import Engine
from mbv2_engine.cli import cmake_dir

LIBRARY = cmake_dir().parents[1] / "libmbv2.so.0"

pytestmark = pytest.mark.skipif(not LIBRARY.is_file(), reason="needs the installed wheel's libmbv2 (pip install .)")


class Options(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_size_t), ("isa", ctypes.c_char_p), ("dtype", ctypes.c_char_p)]


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(LIBRARY))
    lib.mbv2_last_error_message.restype = ctypes.c_char_p
    lib.mbv2_version.restype = ctypes.c_char_p
    return lib


def test_version_is_the_packages(lib):
    import mbv2_engine

    assert lib.mbv2_version().decode() == mbv2_engine.__version__


@pytest.mark.parametrize("model, dtype", [("small_model_path", "fp32"), ("head_model_path", "fp32"),
                                          ("int8_model_path", "fp32"), ("small_model_path", "bf16")])
def test_logits_equal_the_python_engines(lib, model, dtype, request):
    """Version 1, version 2 with hidden layers and fixed pads, version 3's int8 network, and bf16."""
    path = request.getfixturevalue(model)
    python = Engine.load(path, threads=1, isa="ref", dtype=dtype)
    engine = ctypes.c_void_p()
    status = lib.mbv2_engine_create_from_file(str(path).encode(), ctypes.byref(Options(1, b"ref", dtype.encode())),
                                              ctypes.byref(engine))
    assert status == 0, lib.mbv2_last_error_message()
    try:
        x = np.random.default_rng(5).standard_normal((2, 3, *python.input_size), dtype=np.float32)
        out = np.empty((2, python.num_classes), np.float32)
        status = lib.mbv2_engine_run(engine, x.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(2),
                                     ctypes.c_size_t(x.shape[2]), ctypes.c_size_t(x.shape[3]), 0,
                                     out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(out.size))
        assert status == 0, lib.mbv2_last_error_message()
        np.testing.assert_array_equal(out, python.run(x))
        precision = ctypes.c_char_p()
        assert lib.mbv2_engine_get_precision(engine, ctypes.byref(precision)) == 0
        assert precision.value.decode() == python.precision
    finally:
        lib.mbv2_engine_destroy(engine)


@pytest.mark.parametrize("model, dtype, status", [("small_model_path", "fp16", 1), ("int8_model_path", "bf16", 1),
                                                  ("small_model_path", "bf16-ish", 1)])
def test_dtypes_it_cannot_run_are_refused(lib, model, dtype, status, request):
    """1 is MBV2_STATUS_INVALID_ARGUMENT: a dtype the CPU engine does not have, or bf16 for an int8 file."""
    engine = ctypes.c_void_p()
    got = lib.mbv2_engine_create_from_file(str(request.getfixturevalue(model)).encode(),
                                           ctypes.byref(Options(1, b"ref", dtype.encode())), ctypes.byref(engine))
    assert got == status and not engine.value
    assert dtype in lib.mbv2_last_error_message().decode()
