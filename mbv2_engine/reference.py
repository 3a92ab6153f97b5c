"""Float64 numpy forward pass: the slow, obviously-right oracle for every kernel.

Activations are NHWC float64. Arrays are the weight file's members (BN folded,
layouts in docs/format.md). Nothing here is fused or clever on purpose.
"""
from __future__ import annotations

import numpy as np

from .arch import Arch, BlockSpec, conv_out, layer_rules, pad_before


def relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 6.0)


ACTIVATIONS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0.0), "relu6": relu6}


def _columns(rule):
    """A rule as the column axis reads it: [left, right] in the place of [top, bottom]."""
    return rule if isinstance(rule, str) else [rule[2], rule[3], rule[2], rule[3]]


def _pad_for_3x3(x: np.ndarray, stride: int, rule) -> tuple[np.ndarray, int, int]:
    """Zero-pad an NHWC tensor for a 3x3 conv under a padding rule; returns it with the output height and width."""
    _, h, w, _ = x.shape
    ho, wo = conv_out(h, stride, rule), conv_out(w, stride, _columns(rule))
    top, left = pad_before(h, stride, rule), pad_before(w, stride, _columns(rule))
    bottom = max((ho - 1) * stride + 3 - h - top, 0)  # rows no window reaches are not padded
    right = max((wo - 1) * stride + 3 - w - left, 0)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), ho, wo


def _taps(xp: np.ndarray, ho: int, wo: int, stride: int):
    """Yield (ky, kx, window) where window[n, y, x] = padded input under tap (ky, kx)."""
    for ky in range(3):
        for kx in range(3):
            yield ky, kx, xp[:, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]


def conv3x3(x, weight, bias, stride, rule):
    """Full 3x3 conv; weight (Cout, Cin, 3, 3)."""
    xp, ho, wo = _pad_for_3x3(x, stride, rule)
    out = np.zeros((x.shape[0], ho, wo, weight.shape[0]))
    w = weight.astype(np.float64)
    for ky, kx, win in _taps(xp, ho, wo, stride):
        out += win @ w[:, :, ky, kx].T
    return out + bias


def depthwise3x3(x, weight, bias, stride, rule):
    """Depthwise 3x3 conv; weight (C, 3, 3)."""
    xp, ho, wo = _pad_for_3x3(x, stride, rule)
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    w = weight.astype(np.float64)
    for ky, kx, win in _taps(xp, ho, wo, stride):
        out += win * w[:, ky, kx]
    return out + bias


def pointwise(x, weight, bias):
    """1x1 conv; weight (Cout, Cin)."""
    return x @ weight.astype(np.float64).T + bias


def stem(arrays, x, rule):
    return relu6(conv3x3(x, arrays["stem.weight"], arrays["stem.bias"], 2, rule))


def block(arrays, i: int, spec: BlockSpec, x, rule):
    p = f"blocks.{i}."
    h = x
    if spec.has_expand:
        h = relu6(pointwise(h, arrays[p + "expand.weight"], arrays[p + "expand.bias"]))
    h = relu6(depthwise3x3(h, arrays[p + "depthwise.weight"], arrays[p + "depthwise.bias"], spec.stride, rule))
    h = pointwise(h, arrays[p + "project.weight"], arrays[p + "project.bias"])
    return h + x if spec.residual else h


def head(arrays, x):
    """Last 1x1 conv + ReLU6 + global average pool: (N, H, W, C) -> (N, L)."""
    return relu6(pointwise(x, arrays["head.weight"], arrays["head.bias"])).mean(axis=(1, 2))


def classifier(arrays, pooled, hidden=()):
    """The hidden Dense layers (metadata "hidden"), then the classifier: logits before any output activation."""
    x = pooled
    for j, layer in enumerate(hidden):
        x = ACTIVATIONS[layer["activation"]](pointwise(x, arrays[f"hidden.{j}.weight"], arrays[f"hidden.{j}.bias"]))
    return pointwise(x, arrays["classifier.weight"], arrays["classifier.bias"])


def forward(arrays, arch: Arch, x_nchw: np.ndarray, padding="torch", hidden=()) -> np.ndarray:
    """Logits (N, K) in float64 for a normalised (N, 3, H, W) batch; padding and hidden as the metadata says."""
    x = np.asarray(x_nchw, dtype=np.float64).transpose(0, 2, 3, 1)
    rules = layer_rules(arch, padding)
    x = stem(arrays, x, rules[0])
    for i, spec in enumerate(arch.blocks):
        x = block(arrays, i, spec, x, rules[i + 1])
    return classifier(arrays, head(arrays, x), hidden)
