"""Clear errors: no CUDA, a dtype the path lacks, wrong batches."""
import numpy as np
import pytest
import torch

from gpu_helpers import network_arrays
from mbv2_engine.arch import build_arch
from mbv2_engine.errors import DeviceError, InputError
from mbv2_engine.gpu import GpuRunner

ARCH = build_arch(0.35, 10)


@pytest.fixture(scope="module")
def runner(device):
    return GpuRunner(network_arrays(np.random.default_rng(0), ARCH), ARCH, "torch", "fp32", device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_no_cuda_is_a_device_error():
    with pytest.raises(DeviceError, match="needs a CUDA GPU"):
        GpuRunner(network_arrays(np.random.default_rng(0), ARCH), ARCH, "torch", "fp16", device="cuda")


def test_cpu_without_interpreter_is_a_device_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(DeviceError, match="TRITON_INTERPRET"):
        GpuRunner({}, ARCH, "torch", "fp16", device="cpu")


@pytest.mark.parametrize("dtype,device", [("int8", "cpu"), ("fp32", "tpu")])
def test_unsupported_dtype_or_device(dtype, device):
    with pytest.raises(DeviceError, match=repr(dtype) if dtype == "int8" else repr(device)):
        GpuRunner({}, ARCH, "torch", dtype, device=device)


@pytest.mark.parametrize("x,match", [
    (np.zeros((3, 40, 40), np.float32), r"\(N, 3, H, W\)"),
    (np.zeros((1, 4, 40, 40), np.float32), r"\(N, 3, H, W\)"),
    (np.zeros((1, 3, 16, 40), np.float32), "H, W >= 32"),
    (np.zeros((0, 3, 40, 40), np.float32), "N >= 1"),
    (np.zeros((1, 3, 40, 40), np.uint8), "floating point"),
    (torch.zeros((1, 3, 40, 40), dtype=torch.int32), "floating point"),
    ([[0.0]], "torch tensor or numpy array"),
])
def test_bad_batches_are_input_errors(runner, x, match):
    with pytest.raises(InputError, match=match):
        runner.run(x)


@pytest.mark.gpu
def test_small_batches_replay_a_cuda_graph():
    runner = GpuRunner(network_arrays(np.random.default_rng(0), ARCH), ARCH, "torch", "fp16")
    x = torch.randn(2, 3, 64, 64, device="cuda")
    first = runner.run(x)
    assert runner.plan_for(2, 64, 64).graph is not None
    torch.testing.assert_close(runner.run(x), first)
    assert runner.plan_for(16, 64, 64).graph is None
