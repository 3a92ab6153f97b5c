"""The int8 network in plain numpy: the slow, obviously-right oracle for the int8 engine.

It computes exactly what docs/quantization.md says the engine computes on a
quantized weight file (format version 3): uint8 activations with a (scale,
zero point) each, int8 weights with a float32 scale per output channel, int32
accumulators, float32 requantization rounded half to even. Every operation the
engine does in float32 is done here in float32, in the same order; integer
sums are done in int64 and checked to fit int32, so they are exact whatever
the summation order. The float parts (the stem conv, the hidden Dense layers
and the classifier) run through `reference` in float64 and are cast to
float32, as the contract allows.

Activations are NHWC. Nothing here is fused or clever on purpose.
"""
from __future__ import annotations

import numpy as np

from . import reference
from .arch import Arch, build_arch, layer_rules

INT32_MAX = 2 ** 31 - 1
BIAS_LIMIT = 2 ** 30  # |bias_q| the quantizer guarantees, so the accumulator keeps 2^30 of headroom


def tensor_names(arch: Arch) -> list[str]:
    """The quantized activation tensors in network order, as the metadata's "tensors" lists them:
    the stem output; per block its expand output (t > 1 only), its depthwise output and its output
    (projection + residual); the head output (after ReLU6, before the pool)."""
    names = ["stem"]
    for i, spec in enumerate(arch.blocks):
        names += [f"blocks.{i}.expand"] if spec.has_expand else []
        names += [f"blocks.{i}.depthwise", f"blocks.{i}.out"]
    return names + ["head"]


def is_relu6(name: str) -> bool:
    """Whether the tensor follows a ReLU6 (zero point 0, range [0, 6]); block outputs do not."""
    return not name.endswith(".out")


# ---- the pieces of arithmetic, one function each ------------------------------------------------

def relu6_hi(s_out) -> float:
    """Largest code of a ReLU6 output with scale s_out: the code of 6, at most 255 (float64)."""
    return float(min(255.0, np.rint(6.0 / np.float64(s_out))))


def quantize_stem(x: np.ndarray, s0) -> np.ndarray:
    """float32 stem output (after ReLU6) -> uint8 with (s0, 0): rint(clamp(x * inv, 0, hi)),
    inv = float32(1 / s0) and the multiply in float32."""
    inv = np.float32(1.0 / np.float64(s0))
    v = np.asarray(x, np.float32) * inv  # float32 * float32: one float32 rounding
    v = np.minimum(np.maximum(v, np.float32(0.0)), np.float32(relu6_hi(s0)))
    return np.rint(v).astype(np.uint8)


def quantize_bias(b: np.ndarray, s_in, s_w: np.ndarray) -> np.ndarray:
    """bias_q[n] = rint(b[n] / (s_in * s_w[n])) in float64, as int32 (|bias_q| <= 2^30 is the quantizer's promise)."""
    q = np.rint(np.asarray(b, np.float64) / (np.float64(s_in) * np.asarray(s_w, np.float64)))
    assert np.all(np.abs(q) <= BIAS_LIMIT), "bias out of the range the quantizer guarantees"
    return q.astype(np.int32)


def requant_scale(s_in, s_w: np.ndarray, s_out) -> np.ndarray:
    """scale[n] = float32(s_in * s_w[n] / s_out), computed in float64 and rounded once."""
    return (np.float64(s_in) * np.asarray(s_w, np.float64) / np.float64(s_out)).astype(np.float32)


def _as_int32(acc: np.ndarray) -> np.ndarray:
    """An int64 sum as the int32 accumulator it is in the engine; it must fit."""
    assert np.all(np.abs(acc) <= INT32_MAX), "int32 accumulator overflow"
    return acc.astype(np.int32)


def requantize(acc: np.ndarray, scale: np.ndarray, s_out, z_out: int, relu6: bool, residual=None) -> np.ndarray:
    """int32 accumulators (..., C) -> uint8 codes of the output tensor (s_out, z_out).

    v = float32(acc) * scale[n]; with a residual (r uint8, s_r, z_r) then
    v = v + float32(r - z_r) * float32(s_r / s_out), a float32 multiply and a
    float32 add (never fused); clamp to [lo, hi] (ReLU6 outputs: [0, min(255,
    rint(6 / s_out))]; others: [-z_out, 255 - z_out]); round half to even; add z_out.
    """
    v = _as_int32(acc).astype(np.float32) * np.asarray(scale, np.float32)
    if residual is not None:
        r, s_r, z_r = residual
        r_scale = np.float32(np.float64(s_r) / np.float64(s_out))
        term = (r.astype(np.int32) - np.int32(z_r)).astype(np.float32) * r_scale  # float32 multiply
        v = v + term  # then a separate float32 add
    assert v.dtype == np.float32
    if relu6:
        assert z_out == 0, "a ReLU6 output has zero point 0"
        lo, hi = 0.0, relu6_hi(s_out)
    else:
        lo, hi = float(-z_out), float(255 - z_out)
    v = np.minimum(np.maximum(v, np.float32(lo)), np.float32(hi))
    return (np.rint(v).astype(np.int32) + z_out).astype(np.uint8)  # np.rint: half to even


def pointwise_acc(a: np.ndarray, z_in: int, w_q: np.ndarray, bias_q: np.ndarray) -> np.ndarray:
    """1x1 conv accumulators: bias_q[n] + sum_k (a[k] - z_in) * w_q[n, k], exact in int64."""
    x = a.astype(np.int64) - z_in
    return x @ w_q.astype(np.int64).T + bias_q.astype(np.int64)


def depthwise_acc(a: np.ndarray, w_q: np.ndarray, bias_q: np.ndarray, stride: int, rule) -> np.ndarray:
    """Depthwise 3x3 accumulators, exact in int64. The input's zero point is 0 (it follows a ReLU6), so
    the padding is zero bytes; the padding rules are reference.py's, the same code the float oracle uses."""
    xp, ho, wo = reference._pad_for_3x3(a, stride, rule)  # np.pad of uint8 adds zero bytes
    acc = np.zeros((a.shape[0], ho, wo, a.shape[3]), np.int64)
    w = w_q.astype(np.int64)
    for ky, kx, win in reference._taps(xp, ho, wo, stride):
        acc += win.astype(np.int64) * w[:, ky, kx]
    return acc + bias_q.astype(np.int64)


def qconv(kind: str, a: np.ndarray, qin, qout, w_q, s_w, b, stride: int = 1, rule="torch",
          residual=None) -> np.ndarray:
    """One quantized conv: `kind` is "expand", "depthwise", "project" or "head"; qin, qout are the
    input's and output's (scale, zero point); residual is (r uint8, s_r, z_r) or None."""
    (s_in, z_in), (s_out, z_out) = qin, qout
    bias_q = quantize_bias(b, s_in, s_w)
    if kind == "depthwise":
        assert z_in == 0
        acc = depthwise_acc(a, w_q, bias_q, stride, rule)
    else:
        acc = pointwise_acc(a, z_in, w_q, bias_q)
    relu6 = kind != "project"
    return requantize(acc, requant_scale(s_in, s_w, s_out), s_out, z_out, relu6, residual)


def pool(q_head: np.ndarray, s_head) -> np.ndarray:
    """Global average pool of the uint8 head output (N, H, W, L) -> float32 (N, L):
    float32(sum of the P codes) * float32(s_head / P)."""
    n, h, w, _ = q_head.shape
    p = h * w
    total = q_head.astype(np.int64).sum(axis=(1, 2))  # at most 255 * P: exact in float32 below P = 65793
    return total.astype(np.float32) * np.float32(np.float64(s_head) / p)


# ---- the network ---------------------------------------------------------------------------------

def _params(meta: dict) -> list[tuple[float, int]]:
    return [(float(s), int(z)) for s, z in meta["quantization"]["tensors"]]


def forward_int8(arrays: dict, meta: dict, x_nhwc: np.ndarray, trace: bool = False, stem=None):
    """Logits float32 (N, K) of a quantized weight file's arrays and metadata (format version 3) for a
    normalised float32 (N, H, W, 3) batch. With trace=True returns (logits, trace): trace maps each name
    of `tensor_names` to its uint8 (N, H, W, C) codes, in network order, and "pooled" to the float32 pool.
    `stem`, when given, is the float32 stem output (N, Ho, Wo, C0, ReLU6 applied) to quantize instead of
    this function's own: the engine's stem kernel sums in another order, so a value near a rounding
    boundary may round the other way, and a random network amplifies one level into many by block 16;
    with the engine's own stem the rest must agree bit for bit."""
    arch = build_arch(meta["width_mult"], meta["num_classes"])
    params = iter(_params(meta))
    rules = layer_rules(arch, meta["padding"])
    out = {}
    x = np.asarray(x_nhwc, np.float32)
    assert x.ndim == 4 and x.shape[3] == 3, "x is (N, H, W, 3)"

    # Stem: float (float64 here, cast to float32), then quantized with (s0, 0).
    q_stem = next(params)
    if stem is None:
        stem = reference.stem(arrays, x.astype(np.float64), rules[0]).astype(np.float32)
    a = out["stem"] = quantize_stem(stem, q_stem[0])
    qa = q_stem

    for i, spec in enumerate(arch.blocks):
        p = f"blocks.{i}."
        block_in, q_block_in = a, qa
        h, qh = a, qa
        if spec.has_expand:
            q = next(params)
            h = out[p + "expand"] = qconv("expand", h, qh, q, arrays[p + "expand.weight"],
                                          arrays[p + "expand.weight_scale"], arrays[p + "expand.bias"])
            qh = q
        q = next(params)
        h = out[p + "depthwise"] = qconv("depthwise", h, qh, q, arrays[p + "depthwise.weight"],
                                         arrays[p + "depthwise.weight_scale"], arrays[p + "depthwise.bias"],
                                         stride=spec.stride, rule=rules[i + 1])
        qh = q
        q = next(params)
        residual = (block_in, *q_block_in) if spec.residual else None
        a = out[p + "out"] = qconv("project", h, qh, q, arrays[p + "project.weight"],
                                   arrays[p + "project.weight_scale"], arrays[p + "project.bias"],
                                   residual=residual)
        qa = q

    q_head = next(params)
    hq = out["head"] = qconv("head", a, qa, q_head, arrays["head.weight"], arrays["head.weight_scale"],
                             arrays["head.bias"])
    assert next(params, None) is None, "more tensors in the metadata than the network has"
    pooled = out["pooled"] = pool(hq, q_head[0])
    # Hidden Dense layers and the classifier: float, as the float model (float64 here, cast to float32).
    logits = reference.classifier(arrays, pooled.astype(np.float64), meta.get("hidden", ())).astype(np.float32)
    return (logits, out) if trace else logits


def dequantize(q: np.ndarray, scale, zero_point: int) -> np.ndarray:
    """The real values uint8 codes stand for: (q - z) * s, in float64."""
    return (q.astype(np.float64) - zero_point) * np.float64(scale)


def agreement(float_logits: np.ndarray, int8_logits: np.ndarray) -> dict:
    """How closely int8 logits track float logits: top-1 agreement, max and mean |error|, max |logit|."""
    f, q = np.asarray(float_logits, np.float64), np.asarray(int8_logits, np.float64)
    err = np.abs(q - f)
    return {"top1_agreement": float((f.argmax(1) == q.argmax(1)).mean()), "max_abs_error": float(err.max()),
            "mean_abs_error": float(err.mean()), "max_abs_logit": float(np.abs(f).max()), "n": int(f.shape[0])}
