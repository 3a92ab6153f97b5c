"""The whole network on the Triton kernels against the float64 reference and the PyTorch model."""
import numpy as np
import pytest
import torch

from gpu_helpers import TESTED_DTYPES, network_arrays
from mbv2_engine import reference as ref
from mbv2_engine.arch import build_arch
from mbv2_engine.gpu import GpuRunner
from tolerances import assert_close

ARCH = build_arch(0.35, 10)


@pytest.fixture(scope="module")
def arrays():
    return network_arrays(np.random.default_rng(11), ARCH)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(12).normal(0, 1, (2, 3, 40, 40)).astype(np.float32)


@pytest.mark.parametrize("dtype", TESTED_DTYPES)
def test_network_matches_reference(arrays, batch, device, dtype):
    runner = GpuRunner(arrays, ARCH, "torch", dtype, device=device)
    logits = runner.run(batch)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10) and logits.dtype == torch.float32
    expected = ref.forward(arrays, ARCH, batch, "torch")
    assert_close(logits.cpu().numpy(), expected, f"triton_net_{dtype.replace('fp', 'f')}")
    assert (logits.cpu().numpy().argmax(1) == expected.argmax(1)).all()


def test_network_same_padding_odd_size_and_replay(arrays, device):
    """SAME padding on a non-square odd input; the second run replays the cached plan."""
    x = np.random.default_rng(13).normal(0, 1, (1, 3, 33, 45)).astype(np.float32)
    runner = GpuRunner(arrays, ARCH, "same", "fp32", device=device)
    first = runner.run(torch.from_numpy(x).to(device), as_numpy=True)
    assert_close(first, ref.forward(arrays, ARCH, x, "same"), "triton_net_f32")
    assert len(runner._plans) == 1
    np.testing.assert_array_equal(runner.run(x, as_numpy=True), first)
    assert len(runner._plans) == 1


def test_network_matches_torch_model(device):
    """The same weights through mbv2_engine.torch_model (PyTorch, fp32): same logits, same top-1."""
    export = pytest.importorskip("mbv2_engine.export")
    model = export.random_model(3, 0.35, 10, size=(40, 40), progress=False)
    arrays = export.to_arrays(model)
    x = np.random.default_rng(14).normal(0, 1, (2, 3, 40, 40)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    logits = GpuRunner(arrays, ARCH, "torch", "fp32", device=device).run(x, as_numpy=True)
    assert_close(logits, expected, "export_f32")
    assert (logits.argmax(1) == expected.argmax(1)).all()


def test_plan_report(arrays, device):
    report = GpuRunner(arrays, ARCH, "torch", "fp16", device=device).plan(40, 40)
    assert len(report["layers"]) == 1 + len(ARCH.blocks) + 2  # stem, blocks, head, classifier
    assert report["layers"][1]["kernels"] == ("_irblock_kernel",)
    assert 0 < report["ring_bytes"] < report["arena_bytes"]
    assert report["largest_expanded_bytes"] > 0 and report["isa"].startswith("triton-fp16")
