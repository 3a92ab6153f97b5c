"""Each layer alone (stem, the 17 blocks, head) at 224x224, width 1.0, batch 1, one thread.

The engine runs through its per-layer test hooks in `mbv2_engine._test_hooks`
(`stem`, `irblock`, `head`, NHWC, one thread); PyTorch eager runs the same
module of the project's torch model. Each layer gets the input it sees inside
the network, so activations have realistic ranges. GFLOP/s are against the
MACs of `arch.layer_shapes` (docs/design.md). The hooks take unpacked
weights, so the engine's times include repacking them: an upper bound on the
fused kernels' time inside `Engine.run`.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mbv2_engine import format as wformat
from mbv2_engine.arch import layer_shapes
from providers import Case, Runner, Unavailable, checked, torch_runner

CASE = Case()
PROVIDERS = ("mbv2-engine", "mbv2-engine-ref", "torch-eager")
ENGINE_ISAS = {"mbv2-engine": "auto", "mbv2-engine-ref": "ref"}
LAYERS = ("stem", *(f"block{i}" for i in range(17)), "head")


def _torch_layers(model) -> dict:
    """Layer name -> torch callable; the head's hook pools, so its torch twin does too."""
    f = model.features
    blocks = {f"block{i}": f[i + 1] for i in range(len(f) - 2)}
    return {"stem": f[0], **blocks, "head": lambda t: f[-1](t).mean(dim=(2, 3))}


def _hook_args(hooks, name: str, arrays: dict, arch) -> tuple:
    """The engine hook and its weight arguments for one layer, from the weight file's arrays."""
    if name in ("stem", "head"):
        extra = ("torch",) if name == "stem" else ()
        return getattr(hooks, name), (arrays[f"{name}.weight"], arrays[f"{name}.bias"], *extra)
    i = int(name[len("block"):])
    p = f"blocks.{i}."
    weights = [arrays.get(p + "expand.weight"), arrays.get(p + "expand.bias")]  # None for t = 1 blocks
    weights += [arrays[p + k] for k in ("depthwise.weight", "depthwise.bias", "project.weight", "project.bias")]
    return hooks.irblock, (*weights, arch.blocks[i].stride, "torch")


@pytest.fixture(scope="module")
def layers(workload):
    """Per layer: its torch callable, the NCHW input it gets in the network, its output and its MACs."""
    w = workload(CASE)
    torch.set_num_threads(CASE.threads)
    macs = {s.name: s.macs for s in layer_shapes(w.arch, CASE.size, CASE.size)}
    out, x = {}, torch.from_numpy(w.x)
    with torch.inference_mode():
        for name, fn in _torch_layers(w.torch_model()).items():
            y = fn(x)
            out[name] = SimpleNamespace(fn=fn, x=x, y=y.numpy(), macs=macs[name])
            x = y
    return SimpleNamespace(w=w, arrays=wformat.load(w.npz).arrays, by_name=out)


def _engine_runner(name: str, isa: str, layers) -> tuple[Runner, np.ndarray]:
    try:
        from mbv2_engine import _core, _test_hooks
    except ImportError as e:
        raise Unavailable(f"mbv2_engine._core or _test_hooks is not built: {e}") from None
    hook, args = _hook_args(_test_hooks, name, layers.arrays, layers.w.arch)
    L = layers.by_name[name]
    x = np.ascontiguousarray(L.x.numpy().transpose(0, 2, 3, 1))
    # Hooks speak NHWC: compare with torch's output in that layout (the head's is (N, L) already).
    expected = L.y if L.y.ndim == 2 else np.ascontiguousarray(L.y.transpose(0, 2, 3, 1))
    available = _core.available_isas()  # best last: what "auto" takes
    if isa != "auto" and isa not in available:
        raise Unavailable(f"this CPU runs {available}, not {isa!r}")
    return Runner(lambda: hook(x, *args, isa=isa), available[-1] if isa == "auto" else isa), expected


def _torch_block_runner(name: str, layers) -> tuple[Runner, np.ndarray]:
    L = layers.by_name[name]
    return torch_runner(L.fn, L.x), L.y


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("layer", LAYERS)
def test_block(layer, provider, layers, time_checked):
    try:
        runner, expected = (_engine_runner(layer, ENGINE_ISAS[provider], layers) if provider in ENGINE_ISAS
                            else _torch_block_runner(layer, layers))
    except Unavailable as e:
        pytest.skip(f"{provider}: {e}")
    runner = checked(f"{provider} {layer}", runner, expected, top1=False)
    time_checked(runner, group=f"{layer} ({CASE.name})", provider=provider, macs=layers.by_name[layer].macs,
                 threads=CASE.threads, batch=CASE.batch, size=CASE.size, width=CASE.width)
