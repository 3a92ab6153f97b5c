"""GPU runtime: the Triton kernels of `kernels/` scheduled as one launch plan per input shape.

`GpuRunner` repacks the weights once, builds a `GpuPlan` per (batch, height, width)
with every buffer preallocated, and replays it; batches of at most
`CUDA_GRAPH_MAX_BATCH` replay a captured CUDA graph, so launch overhead does not
dominate. `device="cpu"` runs the same plan under the Triton interpreter
(TRITON_INTERPRET=1), for tests on machines without a GPU; `device="meta"` builds
plans without data, which the compile-only test compiles for GPU targets.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

import numpy as np

from .arch import MIN_INPUT, Arch, conv_out, layer_shapes
from .errors import DeviceError, InputError

CUDA_GRAPH_MAX_BATCH = 8
DTYPES = ("fp16", "bf16", "fp32")


def load_kernels():
    """The kernels package: `mbv2_engine.kernels` in a wheel, top-level `kernels` in a source tree."""
    try:
        import triton  # noqa: F401
    except ImportError as e:
        raise DeviceError("the GPU path needs triton (pip install triton)") from e
    try:
        return importlib.import_module("mbv2_engine.kernels")
    except ModuleNotFoundError:
        return importlib.import_module("kernels")


def _check_device(device: str):
    import torch
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device='cuda' needs a CUDA GPU, but torch {torch.__version__} sees none "
                              "(CPU-only build or no visible device); use device='cpu'")
    elif device == "cpu":
        if os.environ.get("TRITON_INTERPRET") != "1":
            raise DeviceError("the Triton kernels run on the CPU only under the interpreter, for tests: "
                              "set TRITON_INTERPRET=1 before triton is imported")
    elif device != "meta":
        raise DeviceError(f"GpuRunner device must be 'cuda', 'cpu' (interpreter) or 'meta' (plans "
                          f"without data, for compile-only checks), got {device!r}")
    return torch.device(device)


@dataclass
class GpuPlan:
    """Everything one (batch, height, width) needs: buffers, launches, and maybe a CUDA graph."""

    input: object  # (N, 3, H, W) staging buffer in the activation dtype
    logits: object  # (N, K) fp32
    launches: list
    layers: list  # per layer of `arch.layer_shapes`: kernels and launch shapes
    arena_bytes: int
    scratch_bytes: int
    graph: object = None

    def replay(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            return
        for launch in self.launches:
            launch()


class GpuRunner:
    """MobileNetV2 on the Triton kernels: `GpuRunner(arrays, arch, padding, dtype, device).run(x)`."""

    def __init__(self, arrays: dict, arch: Arch, padding: str, dtype: str = "fp16", device: str = "cuda"):
        if dtype not in DTYPES:
            raise DeviceError(f"GPU dtype must be one of {DTYPES}, got {dtype!r}")
        self.device = _check_device(device)
        self.k = load_kernels()
        self.arch, self.padding, self.dtype = arch, padding, dtype
        self.torch_dtype = self.k.TORCH_DTYPES[dtype]
        self.stem_w = self.k.pack_stem(arrays, self.torch_dtype, self.device)
        self.block_w = [self.k.pack_irblock(arrays, f"blocks.{i}.", spec, self.torch_dtype, self.device)
                        for i, spec in enumerate(arch.blocks)]
        self.head_w = self.k.pack_head(arrays, self.torch_dtype, self.device)
        self._plans: dict[tuple[int, int, int], GpuPlan] = {}

    def run(self, x, as_numpy: bool = False):
        """Logits (N, K) fp32 for a normalised (N, 3, H, W) batch (torch tensor or numpy array).

        Returns a torch tensor on the runner's device (a fresh copy), or numpy when asked.
        """
        x = self._as_tensor(x)
        plan = self.plan_for(x.shape[0], x.shape[2], x.shape[3])
        plan.input.copy_(x)
        plan.replay()
        logits = plan.logits.clone()
        return logits.cpu().numpy() if as_numpy else logits

    def plan(self, height: int, width: int, batch: int = 1) -> dict:
        """The engine's plan report (see `Engine.plan_for`) for one input shape."""
        p = self.plan_for(batch, height, width)
        shapes = layer_shapes(self.arch, height, width, self.padding)
        item = self.torch_dtype.itemsize
        expanded = [s.in_hw[0] * s.in_hw[1] * s.hidden * item * batch for s in shapes]
        unfused = [(s.in_hw[0] * s.in_hw[1] * (s.cin + s.hidden) + s.out_hw[0] * s.out_hw[1] * s.hidden)
                   * item * batch for s in shapes]
        return {"isa": f"triton-{self.dtype}-{self.device.type}", "arena_bytes": p.arena_bytes,
                "ring_bytes": p.scratch_bytes, "largest_expanded_bytes": max(expanded),
                "unfused_live_bytes": max(unfused),
                "layers": [{**shape.__dict__, **launch} for shape, launch in zip(shapes, p.layers)]}

    def plan_for(self, n: int, h: int, w: int) -> GpuPlan:
        key = (n, h, w)
        if key not in self._plans:
            self._plans[key] = self._build(n, h, w)
        return self._plans[key]

    def _as_tensor(self, x):
        import torch
        if isinstance(x, np.ndarray):
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"a batch must be floating point (normalised), got numpy {x.dtype}")
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        elif not isinstance(x, torch.Tensor):
            raise InputError(f"a batch must be a torch tensor or numpy array, got {type(x).__name__}")
        elif not x.is_floating_point():
            raise InputError(f"a batch must be floating point (normalised), got torch {x.dtype}")
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2:]) < MIN_INPUT or x.shape[0] < 1:
            raise InputError(f"a batch must be (N, 3, H, W) with N >= 1 and H, W >= {MIN_INPUT}, "
                             f"got {tuple(x.shape)}")
        return x

    def _build(self, n: int, h: int, w: int) -> GpuPlan:
        import torch
        k, dev, dt = self.k, self.device, self.torch_dtype
        sizes = [(n, conv_out(h, 2), conv_out(w, 2), self.arch.stem)]
        tiles = []
        for weights in self.block_w:
            _, bh, bw, _ = sizes[-1]
            s = weights.spec.stride
            sizes.append((n, conv_out(bh, s), conv_out(bw, s), weights.spec.cout))
            tiles.append(k.irblock_tile(weights, sizes[-1][2]))
        scratch_numel = max(k.irblock_scratch_numel(wt, *sizes[i + 1][:3], tile, dev)
                            for i, (wt, tile) in enumerate(zip(self.block_w, tiles)))
        act = max(int(np.prod(s)) for s in sizes)
        ping, pong = (torch.empty(act, dtype=dt, device=dev) for _ in range(2))
        scratch = torch.empty(scratch_numel, dtype=dt, device=dev)
        staged = torch.empty((n, 3, h, w), dtype=dt, device=dev)
        pooled = torch.empty((n, self.head_w.l_p), dtype=torch.float32, device=dev)
        logits = torch.empty((n, self.arch.num_classes), dtype=torch.float32, device=dev)
        views = [(ping if i % 2 == 0 else pong)[:int(np.prod(s))].view(s) for i, s in enumerate(sizes)]
        launches = [k.stem_launch(staged, self.stem_w, self.padding, views[0])]
        for i, (weights, tile) in enumerate(zip(self.block_w, tiles)):
            launches.append(k.irblock_launch(views[i], weights, self.padding, views[i + 1], scratch, tile))
        launches += k.head_launches(views[-1], self.head_w, pooled, logits)
        buffers = (ping, pong, scratch, staged, pooled, logits)
        plan = GpuPlan(staged, logits, launches, [_describe(launch) for launch in launches],
                       sum(b.numel() * b.element_size() for b in buffers),
                       scratch.numel() * scratch.element_size())
        if dev.type == "cuda" and n <= CUDA_GRAPH_MAX_BATCH:
            plan.graph = _capture(launches)
        return plan


def _describe(launch) -> dict:
    tile = {key: launch.consts[key] for key in ("TILE_H", "TILE_W", "BLOCK_P", "BLOCK_L", "BLOCK_M")
            if key in launch.consts}
    return {"kernels": (launch.kernel.__name__,), "grid": launch.grid, "num_warps": launch.num_warps,
            "tile": tile}


def _capture(launches):
    """Compile and warm every launch on a side stream, then capture them in one CUDA graph."""
    import torch
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for launch in launches:
            launch()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for launch in launches:
            launch()
    return graph
