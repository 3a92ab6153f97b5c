"""`Engine`: load a weight file, run images or batches, get logits or labels.

One image's path: `run` -> `_as_batch` (decode, resize, normalise) ->
`_core.Model.run` (C++: stem and block 0 fused, 16 more fused blocks, head and
classifier) -> logits.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _core
from . import format as wformat
from .arch import MIN_INPUT, Arch, hidden_tuples, quant_tuples
from .errors import DeviceError, InputError, ModelFormatError
from .preprocess import preprocess, to_rgb_array

DEVICES = ("cpu", "cuda")
DTYPES = ("fp32", "fp16", "bf16")
CPU_DTYPES = ("fp32", "bf16")  # bf16: the 1x1 convs and the classifier on AVX512-BF16 (docs/design.md)
CORE_DTYPES = {"fp32": "float32", "bf16": "bf16"}  # the C++ core's names


class Prediction(NamedTuple):
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Plan:
    """What the engine will do for one input shape: layers, kernels and memory."""

    input_hw: tuple[int, int]
    isa: str
    threads: int
    precision: str  # "float32", "bf16" (dtype="bf16"), or "int8" for a quantized file (docs/quantization.md)
    arena_bytes: int  # activations and scratch, the ring buffers not counted
    ring_bytes: int  # one ring buffer per thread
    largest_expanded_bytes: int
    unfused_live_bytes: int
    layers: tuple[dict, ...]

    @property
    def macs(self) -> int:
        return sum(layer["macs"] for layer in self.layers)

    def __str__(self) -> str:
        rows = [f"{'layer':<11}{'in':>13}{'out':>13}{'cin':>6}{'hidden':>7}{'cout':>6}{'s':>3}"
                f"{'res':>5}{'MMACs':>9}{'params':>9}  kernels"]
        for L in self.layers:
            hw_in, hw_out = "x".join(map(str, L["in_hw"])), "x".join(map(str, L["out_hw"]))
            rows.append(f"{L['name']:<11}{hw_in:>13}{hw_out:>13}{L['cin']:>6}{L['hidden'] or '':>7}"
                        f"{L['cout']:>6}{L['stride']:>3}{'yes' if L['residual'] else '':>5}"
                        f"{L['macs'] / 1e6:>9.2f}{L['params']:>9}  {', '.join(L.get('kernels', ()))}")
        params = sum(L["params"] for L in self.layers)
        rows.append(f"total: {self.macs / 1e6:.2f} M multiply-adds, {params / 1e6:.3f} M parameters "
                    f"(BN folded), {self.precision} on ISA {self.isa}, {self.threads} thread(s)")
        rows.append(f"arena: {self.arena_bytes:,} bytes plus {self.ring_bytes:,} of ring buffers; an unfused "
                    f"engine keeps about {self.unfused_live_bytes:,} live, the largest expanded tensor "
                    f"alone is {self.largest_expanded_bytes:,}")
        return "\n".join(rows)


def default_threads() -> int:
    """Physical cores among the CPUs this process may use: SMT siblings share one core's FMA units."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            cores.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text())
        except OSError:
            cores.add(cpu)  # no topology exposed: count logical CPUs
    return max(1, len(cores))


class Engine:
    """A loaded MobileNetV2, ready to run. Build one with `Engine.load(path)`."""

    def __init__(self, meta: dict, arch: Arch, backend, device: str):
        self.meta, self.arch, self.device = meta, arch, device
        self._backend = backend

    @classmethod
    def load(cls, path, device: str = "cpu", threads: int | None = None, dtype: str = "fp32",
             isa: str = "auto") -> "Engine":
        """Read a weight file (docs/format.md) and repack it for the chosen device's kernels."""
        if device not in DEVICES:
            raise DeviceError(f"device must be one of {DEVICES}, got {device!r}")
        if dtype not in DTYPES:
            raise DeviceError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                    or not 1 <= threads <= _core.MAX_THREADS):
            raise InputError(f"threads must be None or an int from 1 to {_core.MAX_THREADS}, got {_short(threads)}")
        if not isinstance(isa, str):
            raise InputError(f"isa must be a string such as 'auto', 'ref' or 'avx2', got {_short(isa)}")
        if device == "cpu" and dtype not in CPU_DTYPES:
            raise DeviceError(f"the CPU engine runs {' and '.join(CPU_DTYPES)}, got dtype={dtype!r}")
        arrays, meta, arch = wformat.load(path)
        if device == "cpu" and meta["quantization"] and dtype != "fp32":
            raise InputError(f"{os.fspath(path)} is an int8 model and runs in int8, not {dtype}: "
                             "load the float model it was quantized from for another dtype")
        if device == "cuda" and meta["quantization"]:
            raise DeviceError(f"{os.fspath(path)} is an int8 model; the GPU path runs float models only: "
                              "use the CPU, or the float model it was quantized from")
        if device == "cuda":
            from .gpu import GpuRunner
            if meta["hidden"] or not isinstance(meta["padding"], str):
                raise DeviceError(f"{os.fspath(path)}: the GPU path runs MobileNetV2 with 'torch' or 'same' "
                                  f"padding and no hidden Dense layers; this model has padding "
                                  f"{meta['padding']!r} and {len(meta['hidden'])} hidden layers: use the CPU")
            backend = GpuRunner(arrays, arch, meta["padding"], dtype=dtype)
        else:
            stem, blocks, last, num_classes = arch.core_spec()
            try:
                backend = _core.Model(arrays, blocks, stem, last, num_classes, meta["padding"], isa,
                                      threads or default_threads(), hidden_tuples(meta["hidden"]),
                                      quant_tuples(meta["quantization"]), CORE_DTYPES[dtype])
            except ModelFormatError as e:  # a valid file, but a network the fused core cannot run
                raise ModelFormatError(f"{os.fspath(path)}: the engine cannot run this network: {e}") from None
        return cls(meta, arch, backend, device)

    @property
    def precision(self) -> str:
        """What the blocks compute in: "int8" for a quantized file, else "float32" or "bf16" (the CPU's
        dtype="bf16"), or the GPU's dtype."""
        if self.device == "cpu":
            return self._backend.precision
        return getattr(self._backend, "dtype", "float32")

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = self.meta["input_size"]
        return int(h), int(w)

    @property
    def labels(self) -> list[str] | None:
        return self.meta.get("labels")

    @property
    def plan(self) -> Plan:
        """The plan for the default input size; `plan_for(h, w)` for any other."""
        return self.plan_for(*self.input_size)

    def plan_for(self, height: int, width: int) -> Plan:
        if min(height, width) < MIN_INPUT:
            raise InputError(f"input {height}x{width} is smaller than {MIN_INPUT}x{MIN_INPUT}")
        core = self._backend.plan(height, width)  # its layers: shapes (the network table), kernels, chunks
        layers = core["layers"]
        return Plan((height, width), core["isa"], core.get("threads", 1), core.get("precision", self.precision),
                    core["arena_bytes"], core["ring_bytes"],
                    core["largest_expanded_bytes"], core["unfused_live_bytes"], tuple(layers))

    def profile(self, height: int | None = None, width: int | None = None, repeats: int = 20) -> list[dict]:
        """Per-block time of one random image on one thread: name, ms, MACs, GFLOP/s.

        The stem runs fused into block 0 and the head and classifier into block
        16, so their work and time count there.
        """
        if self.device != "cpu":
            raise DeviceError("per-block profiling exists for the CPU engine only")
        h, w = (height, width) if height else self.input_size
        layers = self.plan_for(h, w).layers  # checks the size too
        x = np.random.default_rng(0).standard_normal((1, 3, h, w), dtype=np.float32)
        seconds = self._backend.profile(x, repeats=repeats)
        blocks = len(self.arch.blocks)
        macs = [L["macs"] for L in layers[1:blocks + 1]]
        macs[0] += layers[0]["macs"]
        macs[-1] += sum(L["macs"] for L in layers[blocks + 1:])  # head, hidden layers, classifier
        names = [L["name"] for L in layers[1:blocks + 1]]
        names[0], names[-1] = f"stem+{names[0]}", f"{names[-1]}+head+classifier"
        return [{"name": n, "ms": t * 1e3, "macs": m, "gflops": 2 * m / t / 1e9}
                for n, t, m in zip(names, seconds, macs)]

    def run(self, x, as_numpy: bool = False):
        """Logits: (K,) for one image (path, PIL image, uint8 HxWx3), (N, K) for a float batch.

        Logits are the classifier's outputs, before the activation the source
        model applied after it (`activation`: softmax or sigmoid), which
        `classify` applies. The CPU engine returns numpy; the GPU engine a
        torch tensor on the device, or numpy with `as_numpy=True`.
        """
        batch, single = self._as_batch(x)
        logits = self._backend.run(batch)  # the CPU engine raises InputError for NaN and infinities
        if as_numpy and not isinstance(logits, np.ndarray):
            logits = logits.cpu().numpy()
        return logits[0] if single else logits

    @property
    def activation(self) -> str:
        """What the source model applied after the classifier: "none", "softmax" or "sigmoid"."""
        return self.meta["activation"]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The model's probabilities from its logits (..., K), in float64: a sigmoid per class for a
        model that ends in one, else the softmax (what Keras's `predict` returns for a softmax model)."""
        logits = np.asarray(logits, np.float64)
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-logits))
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return p / p.sum(axis=-1, keepdims=True)

    def classify(self, x, top_k: int = 5):
        """Top-k predictions: a list of `Prediction` for an image, a list of lists for a batch."""
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive int, got {top_k!r}")
        logits = self.run(x, as_numpy=True)
        single = logits.ndim == 1
        probs = self.probabilities(np.atleast_2d(logits))
        preds = [self._top_k(row, min(top_k, self.num_classes)) for row in probs]
        return preds[0] if single else preds

    def _top_k(self, p: np.ndarray, k: int) -> list[Prediction]:
        order = np.argsort(-p, kind="stable")[:k]
        names = self.labels
        return [Prediction(int(i), names[i] if names else f"class {i}", float(p[i])) for i in order]

    def preprocess(self, image) -> np.ndarray:
        """An image (path, PIL image, uint8 HxWx3) as the (1, 3, H, W) batch the model takes."""
        pp = self.meta["preprocess"]
        return preprocess(to_rgb_array(image), self.input_size, pp["crop_fraction"], pp["mean"], pp["std"])

    def _as_batch(self, x) -> tuple[object, bool]:
        """(batch, is_single_image): decode and normalise an image, or check a float batch."""
        if self.device == "cuda" and _is_torch(x):
            return x, False  # stays on the device; GpuRunner checks it
        if _is_torch(x):
            x = _torch_to_numpy(x)
        if isinstance(x, np.ndarray) and x.dtype != np.uint8:
            # The CPU engine tests for NaN and infinities while it copies the input in.
            return _check_batch(x, check_finite=self.device != "cpu"), False
        return self.preprocess(x), True


def _short(value) -> str:
    """repr, cut short: a caller's huge argument must not become a huge message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _torch_to_numpy(x) -> np.ndarray:
    """A dense float32 tensor with data, as numpy; any other tensor is an InputError, not torch's own error."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise InputError(f"expected a torch.Tensor, numpy array or image, got {type(x).__name__}")
    if x.layout != torch.strided or x.is_meta or x.dtype != torch.float32:
        raise InputError(f"a torch batch must be a dense float32 tensor with data (N, 3, H, W), got dtype "
                         f"{x.dtype}, layout {x.layout}, device {x.device}")
    return x.detach().cpu().numpy()


def _check_batch(x: np.ndarray, check_finite: bool) -> np.ndarray:
    if x.dtype != np.float32:
        raise InputError(f"a batch must be float32 (N, 3, H, W), got dtype {x.dtype}; "
                         f"an image must be uint8 HxWx3")
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"a batch must have shape (N, 3, H, W), got {x.shape}")
    n, _, h, w = x.shape
    if n == 0:
        raise InputError("the batch is empty (N = 0)")
    if min(h, w) < MIN_INPUT:
        raise InputError(f"input {h}x{w} is smaller than {MIN_INPUT}x{MIN_INPUT}")
    _core.check_input_size(n, h, w)  # before any copy: a broadcast view can be far larger than its memory
    if check_finite and not np.isfinite(x).all():
        raise InputError(f"the batch holds {int(np.size(x) - np.isfinite(x).sum())} NaN or Inf values")
    return np.ascontiguousarray(x)
