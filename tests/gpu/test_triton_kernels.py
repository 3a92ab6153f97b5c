"""Each Triton kernel against the float64 reference, on small awkward shapes.

Runs under TRITON_INTERPRET=1 on the CPU (see conftest.py), on the GPU otherwise.
Shapes cover stride 1 and 2, t = 1, the residual, odd and non-square maps, maps
spanning several tiles and channel counts that are not multiples of any tile.
"""
import sys

import numpy as np
import pytest
import torch

from gpu_helpers import TESTED_DTYPES, block_arrays, network_arrays
from mbv2_engine import reference as ref
from mbv2_engine.arch import BlockSpec, build_arch
from tolerances import assert_close

TOL = {"fp32": "triton_f32", "fp16": "triton_f16"}

# (spec, (H, W), padding): what each case covers
BLOCKS = [
    (BlockSpec(8, 6, 8, 1), (7, 9), "torch"),  # residual, odd non-square map, Cin below the dot minimum
    (BlockSpec(24, 6, 24, 1), (15, 17), "torch"),  # residual over several 8x8 tiles, Cin = 24 pads to 32
    (BlockSpec(24, 6, 40, 2), (9, 10), "same"),  # stride 2, SAME padding, Cout not a power of two
    (BlockSpec(16, 6, 24, 2), (12, 12), "same"),  # stride 2 on an even map: SAME pads 0 before
    (BlockSpec(16, 6, 24, 2), (12, 12), "torch"),
    (BlockSpec(20, 1, 12, 1), (11, 5), "torch"),  # t = 1: no expand, depthwise reads the input
    (BlockSpec(8, 6, 160, 1), (5, 9), "torch"),  # wide projection: the 4x8 tile
]


def _ids(case):
    spec, (h, w), padding = case
    return f"c{spec.cin}t{spec.t}o{spec.cout}s{spec.stride}-{h}x{w}-{padding}"


def _as(x: np.ndarray, dtype: str, device: str) -> torch.Tensor:
    """x rounded to the activation dtype; the reference gets the same rounded values."""
    from mbv2_engine.gpu import load_kernels
    return torch.from_numpy(x).to(device=device, dtype=load_kernels().TORCH_DTYPES[dtype])


def _np(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("dtype", TESTED_DTYPES)
@pytest.mark.parametrize("case", BLOCKS, ids=_ids)
def test_irblock(kernels, device, dtype, case):
    spec, (h, w), padding = case
    rng = np.random.default_rng(hash(_ids(case)) % 2**32)
    arrays = block_arrays(rng, spec)
    x = _as(rng.normal(0, 1, (2, h, w, spec.cin)).astype(np.float32), dtype, device)
    weights = kernels.pack_irblock(arrays, "blocks.0.", spec, x.dtype, device)
    out = kernels.irblock(x, weights, padding)
    assert_close(_np(out), ref.block(arrays, 0, spec, _np(x), padding), TOL[dtype])


def test_irblock_persistent_programs_loop(kernels, device, monkeypatch):
    """Fewer programs than tiles: each program walks several tiles and reuses its scratch slot."""
    spec = BlockSpec(16, 6, 16, 1)
    rng = np.random.default_rng(3)
    arrays = block_arrays(rng, spec)
    monkeypatch.setattr(sys.modules[kernels.irblock_launch.__module__], "max_programs", lambda _: 3)
    x = _as(rng.normal(0, 1, (2, 17, 11, 16)).astype(np.float32), "fp32", device)
    weights = kernels.pack_irblock(arrays, "blocks.0.", spec, x.dtype, device)
    launch = kernels.irblock_launch(x, weights, "torch", torch.empty_like(x),
                                    torch.empty(1 << 16, device=device), None)
    assert launch.grid == (3,) and launch.args["NUM_TILES"] == 12
    assert_close(_np(kernels.irblock(x, weights)), ref.block(arrays, 0, spec, _np(x), "torch"), "triton_f32")


@pytest.mark.parametrize("dtype", TESTED_DTYPES)
@pytest.mark.parametrize("c0", [16, 24])
@pytest.mark.parametrize("hw,padding", [((33, 40), "torch"), ((34, 32), "same")])
def test_stem(kernels, device, dtype, c0, hw, padding):
    rng = np.random.default_rng(c0 + hw[0])
    arrays = {"stem.weight": rng.normal(0, 0.2, (c0, 3, 3, 3)).astype(np.float32),
              "stem.bias": rng.normal(0, 0.5, c0).astype(np.float32)}
    x = _as(rng.normal(0, 1, (2, 3, *hw)).astype(np.float32), dtype, device)
    out = kernels.stem(x, kernels.pack_stem(arrays, x.dtype, device), padding)
    expected = ref.stem(arrays, _np(x).transpose(0, 2, 3, 1), padding)
    assert_close(_np(out), expected, TOL[dtype])


def test_stem_reads_strided_input(kernels, device):
    """A channels_last (N, 3, H, W) view goes in without a copy."""
    rng = np.random.default_rng(5)
    arrays = {"stem.weight": rng.normal(0, 0.2, (16, 3, 3, 3)).astype(np.float32),
              "stem.bias": rng.normal(0, 0.5, 16).astype(np.float32)}
    x = _as(rng.normal(0, 1, (1, 3, 32, 35)).astype(np.float32), "fp32", device)
    out = kernels.stem(x.contiguous(memory_format=torch.channels_last), kernels.pack_stem(arrays, x.dtype, device))
    assert_close(_np(out), ref.stem(arrays, _np(x).transpose(0, 2, 3, 1), "torch"), "triton_f32")


@pytest.mark.parametrize("dtype", TESTED_DTYPES)
@pytest.mark.parametrize("n,hw", [(1, (5, 7)), (3, (2, 2))])
def test_head(kernels, device, dtype, n, hw):
    """1x1 + ReLU6 + pool over more pixels than one step, then the classifier; L and K odd sizes."""
    arch = build_arch(0.35, 10)
    arrays = network_arrays(np.random.default_rng(n), arch)
    cin = arch.blocks[-1].cout
    x = _as(np.random.default_rng(7).normal(0, 1, (n, *hw, cin)).astype(np.float32), dtype, device)
    logits = kernels.head(x, kernels.pack_head(arrays, x.dtype, device))
    expected = ref.classifier(arrays, ref.head(arrays, _np(x)))
    assert_close(_np(logits), expected, TOL[dtype])


def test_launchers_reject_wrong_shapes(kernels, device):
    spec = BlockSpec(8, 6, 8, 1)
    weights = kernels.pack_irblock(block_arrays(np.random.default_rng(0), spec), "blocks.0.", spec,
                                   torch.float32, device)
    x = torch.zeros((1, 8, 8, 8), device=device)
    with pytest.raises(ValueError, match="does not fit"):
        kernels.irblock_launch(x, weights, "torch", torch.zeros((1, 4, 4, 8), device=device),
                               torch.zeros(1 << 16, device=device))
    with pytest.raises(ValueError, match="scratch is too small"):
        kernels.irblock_launch(x, weights, "torch", torch.zeros_like(x), torch.zeros(8, device=device))
