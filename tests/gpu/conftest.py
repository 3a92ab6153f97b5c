"""Triton tests run on the CPU through the interpreter unless a real GPU is present.

TRITON_INTERPRET must be set before any @triton.jit decorator runs, so it is set
here, at import time, before anything imports the kernels.
"""
import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # today's default, without its warning

pytest.importorskip("triton", reason="the GPU path's tests need triton")
torch = pytest.importorskip("torch")

from mbv2_engine.gpu import load_kernels  # noqa: E402

INTERPRETED = os.environ["TRITON_INTERPRET"] == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real CUDA GPU")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kernels():
    return load_kernels()


@pytest.fixture(scope="session")
def device():
    return "cpu" if INTERPRETED else "cuda"
