"""Post-training static quantization: a float weight file -> an int8 one (format version 3).

`quantize(src, out, calibration)` runs the float network in float32 numpy on
calibration inputs (image files, preprocessed as the model's metadata says, or
an already normalised float32 batch), records every activation the int8
engine stores as uint8 (`quant_reference.tensor_names`), chooses a (scale,
zero point) for each with the calibration method, quantizes the blocks' and
the head's weights symmetrically per output channel, and writes the file
docs/quantization.md specifies. `quant_reference.forward_int8` computes what
the engine computes on it. No torch here.

The methods: "minmax" (the observed range), "percentile-P" (the P-th
percentile, and for block outputs also the (100 - P)-th, of the observed
values) and "mse" (the clipping range that minimises the squared quantization
error of the observed values). The observations are exact minima and maxima
plus a histogram per tensor whose range doubles as it meets larger values.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import format as wformat
from . import reference
from .arch import MIN_INPUT, Arch, build_arch, layer_rules
from .errors import ImageNotFoundError, InputError, ModelFormatError
from .quant_reference import BIAS_LIMIT, is_relu6, relu6_hi, tensor_names

QUANTIZED_VERSION = 3
WEIGHTS_SCHEME = "int8-symmetric-per-channel"
ACTIVATIONS_SCHEME = "uint8-asymmetric-per-tensor"
LAYERS = {"stem": "float32", "blocks": "int8", "head": "int8", "classifier": "float32"}
MIN_SCALE, MAX_SCALE = 1e-9, 1e9  # every scale in a version-3 file lies within these
DEFAULT_METHOD = "percentile-99.99"  # chosen by measurement: docs/quantization.md
DEFAULT_SAMPLES = 256  # calibration inputs used when `samples` is not given (at most)
DEFAULT_BATCH = 16  # inputs per float32 forward pass during calibration
HIST_BINS = 4096  # histogram bins per side of zero; the range grows by doubling
MSE_GRID = 48  # candidate clipping fractions per end of the range for "mse"
INT8_MAX = 127


# ---- which convs are quantized --------------------------------------------------------------------

def quantized_convs(arch: Arch) -> list[tuple[str, str, str]]:
    """(member prefix, input tensor, output tensor) of every int8 conv, in network order."""
    convs, prev = [], "stem"
    for i, spec in enumerate(arch.blocks):
        p = f"blocks.{i}."
        h = prev
        if spec.has_expand:
            convs.append((p + "expand", h, p + "expand"))
            h = p + "expand"
        convs.append((p + "depthwise", h, p + "depthwise"))
        convs.append((p + "project", p + "depthwise", p + "out"))
        prev = p + "out"
    convs.append(("head", prev, "head"))
    return convs


# ---- the float32 forward pass that calibration observes ------------------------------------------

def _conv3x3_f32(x, weight, bias, stride, rule):
    xp, ho, wo = reference._pad_for_3x3(x, stride, rule)
    out = np.zeros((x.shape[0], ho, wo, weight.shape[0]), np.float32)
    for ky, kx, win in reference._taps(xp, ho, wo, stride):
        out += win @ weight[:, :, ky, kx].T
    return out + bias


def _depthwise3x3_f32(x, weight, bias, stride, rule):
    xp, ho, wo = reference._pad_for_3x3(x, stride, rule)
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]), np.float32)
    for ky, kx, win in reference._taps(xp, ho, wo, stride):
        out += win * weight[:, ky, kx]
    return out + bias


def _pointwise_f32(x, weight, bias):
    n, h, w, c = x.shape
    return (x.reshape(-1, c) @ weight.T + bias).reshape(n, h, w, weight.shape[0])


def _relu6(x):
    return np.minimum(np.maximum(x, np.float32(0)), np.float32(6), out=x)


def float_forward(arrays: dict, arch: Arch, x_nhwc: np.ndarray, padding="torch", hidden=(), observe=None):
    """Float32 logits (N, K) of a float weight file's arrays for a normalised float32 (N, H, W, 3) batch,
    reference.py's network in float32 and batched. `observe(name, tensor)` is called with every tensor
    of `quant_reference.tensor_names`, float32 NHWC, as it is computed."""
    f = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    see = observe or (lambda name, t: None)
    rules = layer_rules(arch, padding)
    x = _relu6(_conv3x3_f32(np.asarray(x_nhwc, np.float32), f["stem.weight"], f["stem.bias"], 2, rules[0]))
    see("stem", x)
    for i, spec in enumerate(arch.blocks):
        p = f"blocks.{i}."
        h = x
        if spec.has_expand:
            h = _relu6(_pointwise_f32(h, f[p + "expand.weight"], f[p + "expand.bias"]))
            see(p + "expand", h)
        h = _relu6(_depthwise3x3_f32(h, f[p + "depthwise.weight"], f[p + "depthwise.bias"], spec.stride,
                                     rules[i + 1]))
        see(p + "depthwise", h)
        h = _pointwise_f32(h, f[p + "project.weight"], f[p + "project.bias"])
        x = h + x if spec.residual else h
        see(p + "out", x)
    h = _relu6(_pointwise_f32(x, f["head.weight"], f["head.bias"]))
    see("head", h)
    y = h.mean(axis=(1, 2), dtype=np.float32)
    for j, layer in enumerate(hidden):
        y = reference.ACTIVATIONS[layer["activation"]](y @ f[f"hidden.{j}.weight"].T + f[f"hidden.{j}.bias"])
    return (y @ f["classifier.weight"].T + f["classifier.bias"]).astype(np.float32)


# ---- observing activations ------------------------------------------------------------------------

class Observer:
    """What calibration saw of one tensor: its exact minimum, maximum and count, and a histogram.

    The histogram has HIST_BINS bins on [0, R] (ReLU6 outputs, never negative) or 2 * HIST_BINS on
    [-R, R], with R a power of two; when a value beyond R arrives, R doubles and neighbouring bins
    merge in pairs, so bin edges stay aligned and no count moves to a wrong bin.
    """

    def __init__(self, signed: bool, bins: int = HIST_BINS):
        self.signed, self.bins = signed, bins
        self.min, self.max, self.count = math.inf, -math.inf, 0
        self.range = None  # R; None until a nonzero value arrives
        self.counts = np.zeros(2 * bins if signed else bins, np.int64)
        self.zeros = 0  # values seen before any nonzero one set R: all exactly 0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).ravel()
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InputError("the float network overflowed (NaN or Inf activations) on the calibration inputs; "
                             "are they normalised as the model's preprocessing says?")
        self.min, self.max, self.count = min(self.min, lo), max(self.max, hi), self.count + x.size
        reach = max(abs(lo), abs(hi))
        if reach == 0.0:
            if self.range is None:
                self.zeros += x.size
            else:
                self.counts[self.bins if self.signed else 0] += x.size
            return
        if self.range is None:
            self.range = 2.0 ** math.ceil(math.log2(reach))
            self.counts[self.bins if self.signed else 0] += self.zeros
        while reach > self.range:
            self._grow()
        inv_width = np.float32(self.bins / self.range)  # a power of two: x * inv_width is exact
        k = np.floor(x * inv_width).astype(np.int64)
        if self.signed:
            k += self.bins
        np.clip(k, 0, self.counts.size - 1, out=k)  # x == R falls in the last bin
        self.counts += np.bincount(k, minlength=self.counts.size)

    def _grow(self) -> None:
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        self.counts = np.zeros_like(self.counts)
        start = self.bins // 2 if self.signed else 0
        self.counts[start:start + merged.size] = merged
        self.range *= 2

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(centre, count) of the nonempty bins, values clipped to the exact observed range."""
        if self.range is None:
            return np.zeros(1), np.array([self.count], np.int64)
        width = self.range / self.bins
        first = -self.range if self.signed else 0.0
        nz = np.flatnonzero(self.counts)
        c = first + (nz + 0.5) * width
        return np.clip(c, self.min, self.max), self.counts[nz]

    def percentile(self, q: float) -> float:
        """The value below which a fraction q of the observations lie (to one bin), within [min, max]."""
        if self.range is None:
            return 0.0
        width = self.range / self.bins
        first = -self.range if self.signed else 0.0
        cdf = np.cumsum(self.counts)
        if q >= 0.5:
            k = int(np.searchsorted(cdf, q * cdf[-1], side="left"))
            value = first + (k + 1) * width  # the upper edge of the bin that crosses q
        else:
            k = int(np.searchsorted(cdf, q * cdf[-1], side="right"))
            value = first + k * width  # the lower edge
        return float(min(max(value, self.min), self.max))


# ---- choosing (scale, zero point) -----------------------------------------------------------------

def parse_method(method: str) -> tuple[str, float | None]:
    """("minmax", None), ("mse", None) or ("percentile", P) for "percentile-P" with 50 < P <= 100."""
    if method in ("minmax", "mse"):
        return method, None
    m = re.fullmatch(r"percentile-(\d+(?:\.\d+)?)", method) if isinstance(method, str) else None
    if m and 50 < float(m.group(1)) <= 100:
        return "percentile", float(m.group(1))
    raise InputError(f"unknown calibration method {method!r}: use 'minmax', 'mse' or 'percentile-P' with "
                     f"50 < P <= 100 (e.g. 'percentile-99.99')")


def uint8_params(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric uint8 (scale, zero point) for the range [min(lo, 0), max(hi, 0)]: s = (hi - lo) / 255
    rounded to float32, z = rint(-lo / s) clipped to [0, 255]. A range of (almost) nothing gets s = 1/255
    (any scale represents a tensor that is always 0; this one keeps the requantization scales O(1))."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 255 * MIN_SCALE:
        lo, hi = 0.0, 1.0
    s = float(np.float32(min((hi - lo) / 255.0, MAX_SCALE)))
    if s < MIN_SCALE:  # float32(1e-9) lies just below 1e-9: the next float32 up is the smallest allowed
        s = float(np.nextafter(np.float32(MIN_SCALE), np.float32(np.inf)))
    z = int(np.clip(np.rint(-lo / s), 0, 255))
    return s, z


def relu6_params(hi: float) -> tuple[float, int]:
    """(scale, 0) of a ReLU6 output clipped at hi (at most 6): s = hi / 255 rounded to float32."""
    return uint8_params(0.0, min(float(hi), 6.0))


def _mse_search(obs: Observer, relu6: bool) -> tuple[float, int]:
    """The (scale, zero point) whose quantization of the histogram's values has the least squared error,
    over clipping ranges [a * min, b * max] for a, b on a grid of MSE_GRID fractions in (0, 1]."""
    c, n = obs.centres()
    n = n.astype(np.float64)
    fractions = np.arange(1, MSE_GRID + 1) / MSE_GRID
    best, best_err = None, math.inf
    lows = [0.0]
    if not relu6 and obs.min < 0:
        lows = [obs.min * a for a in fractions]
    for lo in lows:
        cands = [relu6_params(obs.max * b) if relu6 else uint8_params(lo, obs.max * b) for b in fractions]
        s = np.array([p[0] for p in cands])[:, None]
        z = np.array([p[1] for p in cands], np.float64)[:, None]
        top = np.array([relu6_hi(p[0]) if relu6 else 255.0 for p in cands])[:, None]
        q = np.clip(np.rint(c / s) + z, 0, top)
        err = (((q - z) * s - c) ** 2 * n).sum(axis=1)
        k = int(np.argmin(err))
        if err[k] < best_err:
            best, best_err = cands[k], float(err[k])
    return best


def activation_params(obs: Observer, method: str, relu6: bool) -> tuple[float, int]:
    """(scale, zero point) of one tensor from what calibration observed of it."""
    kind, p = parse_method(method)
    if kind == "mse":
        return _mse_search(obs, relu6)
    if kind == "percentile":
        hi = obs.percentile(p / 100)
        lo = 0.0 if relu6 else obs.percentile(1 - p / 100)
    else:
        lo, hi = obs.min, obs.max
    return relu6_params(hi) if relu6 else uint8_params(lo, hi)


# ---- weights --------------------------------------------------------------------------------------

def weight_scales(w: np.ndarray, b: np.ndarray, s_in: float) -> np.ndarray:
    """float32 per-output-channel scales s_w[n] = max|w[n]| / 127, raised where needed:

    - to MIN_SCALE for a channel whose weights are (almost) all zero (its codes are 0 whatever s_w);
    - just enough that the int32 bias rint(b[n] / (s_in * s_w[n])) stays within 2^30 in magnitude
      (a large bias on a channel of tiny weights; the engine adds up to ~2^27 of products to it, and
      2^30 keeps the int32 accumulator clear of overflow). The bias then costs at most half a step of
      s_in * s_w[n], still far below the output's own step.
    """
    rows = np.abs(w.reshape(w.shape[0], -1).astype(np.float64)).max(axis=1)
    s = np.maximum(rows / INT8_MAX, MIN_SCALE)
    s = np.maximum(s, np.abs(b.astype(np.float64)) / (np.float64(s_in) * BIAS_LIMIT))
    s32 = s.astype(np.float32)
    # float32(1e-9) lies just below 1e-9: a channel at the floor takes the next float32 up.
    s32 = np.where(s32.astype(np.float64) < MIN_SCALE, np.nextafter(np.float32(MIN_SCALE), np.float32(np.inf)), s32)
    for _ in range(8):  # float32 rounding of s_in * s_w can still put the bias a code over: step up
        over = np.abs(np.rint(b.astype(np.float64) / (np.float64(s_in) * s32.astype(np.float64)))) > BIAS_LIMIT
        if not over.any():
            break
        s32 = np.where(over, np.nextafter(s32, np.float32(np.inf)), s32)
    if not (s32.astype(np.float64) <= MAX_SCALE).all():
        n = int(np.argmax(s32.astype(np.float64) > MAX_SCALE))
        raise ModelFormatError(f"channel {n} needs a weight scale of {float(s32[n]):.3g}, above the format's "
                               f"limit of {MAX_SCALE:g}: its weights or bias are too large to quantize")
    return s32


def quantize_weight(w: np.ndarray, s_w: np.ndarray) -> np.ndarray:
    """int8 codes clip(rint(w / s_w[n]), -127, 127) per output channel n (the first axis)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.rint(w.astype(np.float64) / s_w.astype(np.float64).reshape(shape))
    return np.clip(q, -INT8_MAX, INT8_MAX).astype(np.int8)


# ---- the quantized file ---------------------------------------------------------------------------

def quantize_arrays(arrays: dict, meta: dict, arch: Arch, tensors: Sequence, calibration: dict):
    """(arrays, meta) of the quantized file: int8 weights and their scales for the blocks and the head,
    everything else as in the float file; `tensors` the (scale, zero point) of each of
    `quant_reference.tensor_names`, `calibration` the informative {"method", "samples"}."""
    names = tensor_names(arch)
    if len(tensors) != len(names):
        raise InputError(f"{len(tensors)} (scale, zero point) pairs for the {len(names)} tensors of this network")
    params = dict(zip(names, [(float(np.float32(s)), int(z)) for s, z in tensors]))
    out = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    for prefix, src, _ in quantized_convs(arch):
        w, b = out[prefix + ".weight"], out[prefix + ".bias"]
        s_w = weight_scales(w, b, params[src][0])
        out[prefix + ".weight"] = quantize_weight(w, s_w)
        out[prefix + ".weight_scale"] = s_w
    qmeta = {k: v for k, v in meta.items() if k not in ("format", "version", "quantization")}
    qmeta = {"format": wformat.FORMAT_NAME, "version": QUANTIZED_VERSION, **qmeta, "quantization": {
        "weights": WEIGHTS_SCHEME, "activations": ACTIVATIONS_SCHEME, "layers": dict(LAYERS),
        "calibration": {"method": str(calibration["method"]), "samples": int(calibration["samples"])},
        "tensors": [[params[n][0], params[n][1]] for n in names]}}
    return _ordered(out, arch, meta.get("hidden", ())), qmeta


def _ordered(arrays: dict, arch: Arch, hidden) -> dict:
    """Members in the network's order (format.expected_shapes), each weight_scale right after its weight."""
    order = []
    for name in wformat.expected_shapes(arch, hidden):
        order.append(name)
        scale = name[:-len("weight")] + "weight_scale"
        if name.endswith(".weight") and scale in arrays:
            order.append(scale)
    return {k: arrays[k] for k in order}


def check_quantized(arrays: dict, meta: dict) -> None:
    """ModelFormatError unless (arrays, meta) is a version-3 quantized file as docs/quantization.md says."""
    def fail(msg):
        raise ModelFormatError(f"not a valid quantized weight file: {msg}")

    if meta.get("format") != wformat.FORMAT_NAME or meta.get("version") != QUANTIZED_VERSION:
        fail(f"format {meta.get('format')!r}, version {meta.get('version')!r}; expected version 3")
    q = meta.get("quantization")
    if not isinstance(q, dict) or set(q) != {"weights", "activations", "layers", "calibration", "tensors"}:
        fail(f"'quantization' must be an object with keys weights, activations, layers, calibration, tensors; "
             f"got {q!r:.200}")
    if q["weights"] != WEIGHTS_SCHEME or q["activations"] != ACTIVATIONS_SCHEME or q["layers"] != LAYERS:
        fail(f"weights {q['weights']!r}, activations {q['activations']!r}, layers {q['layers']!r}")
    cal = q["calibration"]
    if (not isinstance(cal, dict) or set(cal) != {"method", "samples"} or not isinstance(cal["method"], str)
            or type(cal["samples"]) is not int or cal["samples"] < 1):
        fail(f"'calibration' must be {{'method': string, 'samples': int >= 1}}, got {cal!r}")
    arch = build_arch(meta["width_mult"], meta["num_classes"])
    names = tensor_names(arch)
    tensors = q["tensors"]
    if not isinstance(tensors, list) or len(tensors) != len(names):
        fail(f"'tensors' must list {len(names)} [scale, zero_point] pairs, got "
             f"{len(tensors) if isinstance(tensors, list) else type(tensors).__name__}")
    params = {}
    for name, pair in zip(names, tensors):
        ok = (isinstance(pair, list) and len(pair) == 2 and type(pair[1]) is int
              and isinstance(pair[0], (int, float)) and not isinstance(pair[0], bool))
        if not ok or not MIN_SCALE <= pair[0] <= MAX_SCALE or float(np.float32(pair[0])) != pair[0]:
            fail(f"tensor {name}: [scale, zero_point] must be a float32 scale in [1e-9, 1e9] and an int, got {pair!r}")
        if not (pair[1] == 0 if is_relu6(name) else 0 <= pair[1] <= 255):
            fail(f"tensor {name}: zero point {pair[1]} (ReLU6 outputs have 0, block outputs 0..255)")
        params[name] = pair
    expected = wformat.expected_shapes(arch, meta.get("hidden", ()))
    convs = {prefix: src for prefix, src, _ in quantized_convs(arch)}
    wanted = set(expected) | {p + ".weight_scale" for p in convs}
    if set(arrays) != wanted:
        fail(f"members missing {sorted(wanted - set(arrays))[:5]}, unexpected {sorted(set(arrays) - wanted)[:5]}")
    for name, shape in expected.items():
        a = arrays[name]
        prefix = name.rsplit(".", 1)[0]
        int8 = name.endswith(".weight") and prefix in convs
        if a.dtype != (np.int8 if int8 else np.float32) or a.shape != shape:
            fail(f"{name}: {a.dtype} {a.shape}, expected {'int8' if int8 else 'float32'} {shape}")
        if int8 and a.size and int(a.min()) < -INT8_MAX:
            fail(f"{name}: holds -128 (int8 weights lie in [-127, 127])")
        if not int8 and not np.isfinite(a).all():
            fail(f"{name}: holds NaN or Inf")
    for prefix, src in convs.items():
        s_w = arrays[prefix + ".weight_scale"]
        if s_w.dtype != np.float32 or s_w.shape != (expected[prefix + ".weight"][0],):
            fail(f"{prefix}.weight_scale: {s_w.dtype} {s_w.shape}, expected float32 ({expected[prefix + '.weight'][0]},)")
        s64 = s_w.astype(np.float64)  # compared in float64: float32(1e-9) is below 1e-9
        if not (np.isfinite(s64).all() and (s64 >= MIN_SCALE).all() and (s64 <= MAX_SCALE).all()):
            fail(f"{prefix}.weight_scale: every scale must lie in [1e-9, 1e9]")
        bias_q = np.rint(arrays[prefix + ".bias"].astype(np.float64)
                         / (np.float64(params[src][0]) * s_w.astype(np.float64)))
        if np.abs(bias_q).max() > BIAS_LIMIT:
            fail(f"{prefix}.bias: its int32 form exceeds 2^30 in magnitude")


def save_quantized(path, arrays: dict, meta: dict) -> str:
    """Write a quantized weight file (format version 3), checked against the contract first; the
    package's writer keeps the int8 weights int8 and reads its bytes back through the C++ reader."""
    check_quantized(arrays, meta)
    return wformat.save(path, arrays, meta)


def load_quantized(path) -> wformat.WeightFile:
    """Read a quantized weight file through the package's reader and check it against the contract."""
    wf = wformat.load(path)
    check_quantized(wf.arrays, wf.meta)
    return wf


def load_float(src) -> wformat.WeightFile:
    """A float weight file to quantize: a path (read by the package's reader) or a WeightFile / (arrays,
    meta, arch) triple. An already quantized file is refused with an InputError."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        wf = wformat.load(path)
    else:
        wf = wformat.WeightFile(*src)
        path = "the model"
    if wf.meta.get("quantization") or any(a.dtype != np.float32 for a in wf.arrays.values()):
        raise InputError(f"{path} is already quantized; quantize the float model it came from")
    return wf


# ---- calibration inputs ---------------------------------------------------------------------------

def _check_samples(samples) -> int:
    if samples is None:
        return DEFAULT_SAMPLES
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise InputError(f"samples must be an int >= 1 (calibration needs at least one input), got {samples!r}")
    return samples


def as_nhwc(x: np.ndarray) -> np.ndarray:
    """A normalised float32 batch (N, 3, H, W) or (N, H, W, 3) as NHWC; both sides are at least 32, so a
    3 in place of the channels tells the layout apart."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"calibration data must be image paths or a float32 array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise InputError(f"calibration arrays must be float32 (already normalised), got dtype {x.dtype}")
    if x.ndim != 4 or 3 not in (x.shape[1], x.shape[3]):
        raise InputError(f"calibration arrays must have shape (N, 3, H, W) or (N, H, W, 3), got {x.shape}")
    x = x.transpose(0, 2, 3, 1) if x.shape[1] == 3 else x
    if x.shape[0] == 0:
        raise InputError("the calibration array holds no samples (N = 0)")
    if min(x.shape[1:3]) < MIN_INPUT:
        raise InputError(f"calibration inputs are {x.shape[1]}x{x.shape[2]}, smaller than {MIN_INPUT}x{MIN_INPUT}")
    return x


def _check_finite(x: np.ndarray, what: str) -> None:
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise InputError(f"{what} holds {bad} NaN or Inf values; calibration needs finite inputs")


def _image_paths(calibration) -> list[str]:
    from .collection import discover

    items = [calibration] if isinstance(calibration, (str, os.PathLike)) else list(calibration)
    if not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise InputError("calibration data must be image paths (files or folders) or a float32 array")
    paths = discover([os.fspath(p) for p in items])
    if not paths:
        raise InputError(f"no calibration images found in {', '.join(map(os.fspath, items)) or 'an empty list'}")
    return paths


def _load_images(paths: list[str], meta: dict) -> np.ndarray:
    """Decode and preprocess as `classify` does (preprocess.load_image with the model's metadata): NHWC."""
    from .preprocess import _decoded, load_image

    pp = meta["preprocess"]
    size = tuple(int(v) for v in meta["input_size"])
    out = np.empty((len(paths), size[0], size[1], 3), np.float32)
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            raise ImageNotFoundError(f"calibration image not found: {path}")
        if not os.path.isfile(path):
            raise InputError(f"cannot read calibration image {path}: it is not a regular file")
        out[i] = _decoded(lambda: load_image(path, size, pp["crop_fraction"], pp["mean"], pp["std"]),
                          f"calibration image {path}").transpose(1, 2, 0)
    return out


def calibration_source(calibration, meta: dict, samples: int):
    """(count, batches(batch) -> iterator of float32 NHWC batches) for image paths or a float32 array."""
    if isinstance(calibration, np.ndarray):
        x = as_nhwc(calibration)[:samples]
        _check_finite(x, "the calibration array")
        return x.shape[0], lambda batch: (x[i:i + batch] for i in range(0, x.shape[0], batch))
    paths = _image_paths(calibration)[:samples]

    def batches(batch):
        for i in range(0, len(paths), batch):
            yield _load_images(paths[i:i + batch], meta)

    return len(paths), batches


# ---- the whole thing ------------------------------------------------------------------------------

def observe(wf: wformat.WeightFile, calibration, samples: int | None = None, batch: int = DEFAULT_BATCH,
            progress: bool = False) -> tuple[dict[str, Observer], int]:
    """Run the float network on the calibration inputs; ({tensor name: Observer}, samples used)."""
    from tqdm import tqdm

    arrays, meta, arch = wf
    count, batches = calibration_source(calibration, meta, _check_samples(samples))
    observers = {name: Observer(signed=not is_relu6(name)) for name in tensor_names(arch)}
    with tqdm(total=count, unit="img", desc="calibrating", disable=not progress, dynamic_ncols=True) as bar:
        for x in batches(batch):
            float_forward(arrays, arch, x, meta["padding"], meta["hidden"],
                          observe=lambda name, t: observers[name].add(t))
            bar.update(x.shape[0])
    return observers, count


def quantize_model(src, calibration, samples: int | None = None, method: str = DEFAULT_METHOD,
                   batch: int = DEFAULT_BATCH, progress: bool = False) -> wformat.WeightFile:
    """The quantized model in memory: WeightFile(arrays, meta, arch) of format version 3.

    `src`: a float weight file's path, or a WeightFile (arrays, meta, arch). `calibration`: image paths
    (files or folders; decoded and preprocessed as the metadata says) or a normalised float32 array
    (N, 3, H, W) or (N, H, W, 3). At most `samples` inputs are used (default DEFAULT_SAMPLES), in order.
    """
    parse_method(method)
    wf = load_float(src)
    observers, count = observe(wf, calibration, samples, batch, progress)
    return from_observers(wf, observers, count, method)


def from_observers(wf: wformat.WeightFile, observers: dict, count: int, method: str) -> wformat.WeightFile:
    """The quantized model from what `observe` saw (one calibration run serves every method)."""
    tensors = [activation_params(observers[n], method, is_relu6(n)) for n in tensor_names(wf.arch)]
    arrays, meta = quantize_arrays(wf.arrays, wf.meta, wf.arch, tensors, {"method": method, "samples": count})
    check_quantized(arrays, meta)
    return wformat.WeightFile(arrays, meta, wf.arch)


def quantize(src, out, calibration, samples: int | None = None, method: str = DEFAULT_METHOD,
             batch: int = DEFAULT_BATCH, progress: bool = False) -> str:
    """Quantize a float weight file (see `quantize_model`) and write it to `out` (format version 3);
    returns the path written."""
    wformat.check_destination(out)
    arrays, meta, _ = quantize_model(src, calibration, samples, method, batch, progress)
    return save_quantized(out, arrays, meta)


def load_calibration_npy(path) -> np.ndarray:
    """A .npy of normalised inputs (what `--calibration-npy` reads), without pickles."""
    path = Path(path)
    if not path.is_file():
        raise ImageNotFoundError(f"calibration array {str(path)!r} does not exist") if not path.exists() else \
            InputError(f"calibration array {str(path)!r} is not a regular file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError, OSError, EOFError, ...
        raise InputError(f"cannot read {str(path)!r} as a .npy array: {e}") from None
    if not isinstance(x, np.ndarray):
        raise InputError(f"{str(path)!r} is an .npz archive; give one .npy array (N, 3, H, W) or (N, H, W, 3)")
    return x
