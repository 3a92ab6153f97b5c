"""Float64 numpy forward pass: the slow, obviously-right oracle for every kernel.

Activations are NHWC float64. Arrays are the weight file's members (BN folded,
layouts in docs/format.md). Nothing here is fused or clever on purpose.
"""
from __future__ import annotations

import numpy as np

from .arch import Arch, BlockSpec, conv_out, pad_before


def relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 6.0)


def _pad_for_3x3(x: np.ndarray, stride: int, padding: str) -> tuple[np.ndarray, int, int]:
    """Zero-pad an NHWC tensor for a 3x3 conv; returns it with the output height and width."""
    _, h, w, _ = x.shape
    ho, wo = conv_out(h, stride), conv_out(w, stride)
    top, left = pad_before(h, stride, padding), pad_before(w, stride, padding)
    bottom = max((ho - 1) * stride + 3 - h - top, 0)
    right = max((wo - 1) * stride + 3 - w - left, 0)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), ho, wo


def _taps(xp: np.ndarray, ho: int, wo: int, stride: int):
    """Yield (ky, kx, window) where window[n, y, x] = padded input under tap (ky, kx)."""
    for ky in range(3):
        for kx in range(3):
            yield ky, kx, xp[:, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]


def conv3x3(x, weight, bias, stride, padding):
    """Full 3x3 conv; weight (Cout, Cin, 3, 3)."""
    xp, ho, wo = _pad_for_3x3(x, stride, padding)
    out = np.zeros((x.shape[0], ho, wo, weight.shape[0]))
    w = weight.astype(np.float64)
    for ky, kx, win in _taps(xp, ho, wo, stride):
        out += win @ w[:, :, ky, kx].T
    return out + bias


def depthwise3x3(x, weight, bias, stride, padding):
    """Depthwise 3x3 conv; weight (C, 3, 3)."""
    xp, ho, wo = _pad_for_3x3(x, stride, padding)
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    w = weight.astype(np.float64)
    for ky, kx, win in _taps(xp, ho, wo, stride):
        out += win * w[:, ky, kx]
    return out + bias


def pointwise(x, weight, bias):
    """1x1 conv; weight (Cout, Cin)."""
    return x @ weight.astype(np.float64).T + bias


def stem(arrays, x, padding):
    return relu6(conv3x3(x, arrays["stem.weight"], arrays["stem.bias"], 2, padding))


def block(arrays, i: int, spec: BlockSpec, x, padding):
    p = f"blocks.{i}."
    h = x
    if spec.has_expand:
        h = relu6(pointwise(h, arrays[p + "expand.weight"], arrays[p + "expand.bias"]))
    h = relu6(depthwise3x3(h, arrays[p + "depthwise.weight"], arrays[p + "depthwise.bias"], spec.stride, padding))
    h = pointwise(h, arrays[p + "project.weight"], arrays[p + "project.bias"])
    return h + x if spec.residual else h


def head(arrays, x):
    """Last 1x1 conv + ReLU6 + global average pool: (N, H, W, C) -> (N, L)."""
    return relu6(pointwise(x, arrays["head.weight"], arrays["head.bias"])).mean(axis=(1, 2))


def classifier(arrays, pooled):
    return pointwise(pooled, arrays["classifier.weight"], arrays["classifier.bias"])


def forward(arrays, arch: Arch, x_nchw: np.ndarray, padding: str = "torch") -> np.ndarray:
    """Logits (N, K) in float64 for a normalised (N, 3, H, W) batch."""
    x = np.asarray(x_nchw, dtype=np.float64).transpose(0, 2, 3, 1)
    x = stem(arrays, x, padding)
    for i, spec in enumerate(arch.blocks):
        x = block(arrays, i, spec, x, padding)
    return classifier(arrays, head(arrays, x))
