"""Head: last 1x1 conv + ReLU6 + global average pool, then the fully connected classifier."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._common import DOT_MIN, DOT_PRECISION, Launch, k_tile, padded_tensor, round_up

BLOCK_P = 32  # pixels per step of the pooling loop
BLOCK_L = 64  # head channels per program
BLOCK_N = 64  # classes per classifier program
BLOCK_K = 32  # classifier reduction chunk; divides L_P


@triton.jit
def _head_kernel(x_ptr, w_ptr, b_ptr, pooled_ptr, HW, CIN, L_P,
                 BLOCK_P: tl.constexpr, CIN_P: tl.constexpr, BLOCK_K: tl.constexpr,
                 BLOCK_L: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """pooled[n, l] = mean_p relu6(sum_c x[n, p, c] * w[c, l] + b[l]), as `reference.head`.

    One program: one image, BLOCK_L head channels, looping over its HW pixels, so the
    (HW, L) activation never exists. pooled is fp32 (N, L_P); padded channels pool to 0.
    """
    n = tl.program_id(0)
    lc = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    kc = tl.arange(0, BLOCK_K)
    bias = tl.load(b_ptr + lc)
    x_img = x_ptr + n.to(tl.int64) * (HW * CIN)
    pooled = tl.zeros((BLOCK_L,), dtype=tl.float32)
    for p0 in range(0, HW, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        acc = tl.zeros((BLOCK_P, BLOCK_L), dtype=tl.float32)
        for k0 in range(0, CIN_P, BLOCK_K):
            xt = tl.load(x_img + p[:, None] * CIN + (k0 + kc)[None, :],
                         mask=(p < HW)[:, None] & ((k0 + kc) < CIN)[None, :], other=0.0)
            acc = tl.dot(xt, tl.load(w_ptr + (k0 + kc)[:, None] * L_P + lc[None, :]), acc,
                         input_precision=DOT_PRECISION)
        y = tl.clamp(acc + bias[None, :], 0.0, 6.0)
        pooled += tl.sum(tl.where((p < HW)[:, None], y, 0.0), axis=0)
    tl.store(pooled_ptr + n * L_P + lc, pooled / HW)


@triton.jit
def _classifier_kernel(a_ptr, w_ptr, b_ptr, out_ptr, N, K, K_P, L_P,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                       DOT_PRECISION: tl.constexpr):
    """out[i, j] = sum_l a[i, l] * w[l, j] + b[j], as `reference.classifier`; fp32 logits.

    a is the fp32 pooled (N, L_P), rounded to the weights' dtype for the dot; w is (L_P, K_P).
    """
    i = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    j = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    kc = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, L_P, BLOCK_K):
        a = tl.load(a_ptr + i[:, None] * L_P + (k0 + kc)[None, :], mask=(i < N)[:, None], other=0.0)
        w = tl.load(w_ptr + (k0 + kc)[:, None] * K_P + j[None, :])
        acc = tl.dot(a.to(w_ptr.dtype.element_ty), w, acc, input_precision=DOT_PRECISION)
    acc += tl.load(b_ptr + j)[None, :]
    tl.store(out_ptr + i[:, None] * K + j[None, :], acc, mask=(i < N)[:, None] & (j < K)[None, :])


@dataclass(frozen=True)
class HeadWeights:
    head_w: torch.Tensor  # (CIN_P, L_P)
    head_b: torch.Tensor  # (L_P,) fp32
    fc_w: torch.Tensor  # (L_P, K_P)
    fc_b: torch.Tensor  # (K_P,) fp32
    cin: int
    classes: int

    @property
    def l_p(self) -> int:
        return self.head_b.shape[0]


def pack_head(arrays: dict, dtype: torch.dtype, device) -> HeadWeights:
    last, cin = arrays["head.weight"].shape
    classes = arrays["classifier.weight"].shape[0]
    cin_p, l_p, k_p = round_up(cin, DOT_MIN), round_up(last, BLOCK_L), round_up(classes, BLOCK_N)
    f32 = torch.float32
    return HeadWeights(padded_tensor(arrays["head.weight"].T, (cin_p, l_p), dtype, device),
                       padded_tensor(arrays["head.bias"], (l_p,), f32, device),
                       padded_tensor(arrays["classifier.weight"].T, (l_p, k_p), dtype, device),
                       padded_tensor(arrays["classifier.bias"], (k_p,), f32, device), cin, classes)


def head_launches(x: torch.Tensor, weights: HeadWeights, pooled: torch.Tensor,
                  logits: torch.Tensor) -> list[Launch]:
    """Check shapes and fix both launches: x (N, H, W, Cin) -> pooled (N, L_P) -> logits (N, K)."""
    n, h, w, cin = x.shape
    if cin != weights.cin or tuple(pooled.shape) != (n, weights.l_p) or \
            tuple(logits.shape) != (n, weights.classes):
        raise ValueError(f"head: x {tuple(x.shape)}, pooled {tuple(pooled.shape)}, logits "
                         f"{tuple(logits.shape)}; expected Cin {weights.cin}, "
                         f"pooled {(n, weights.l_p)}, logits {(n, weights.classes)}")
    if not x.is_contiguous() or pooled.dtype != torch.float32 or logits.dtype != torch.float32:
        raise ValueError("head: x must be contiguous; pooled and logits fp32")
    cin_p = weights.head_w.shape[0]
    pool = Launch(_head_kernel, (n, weights.l_p // BLOCK_L),
                  dict(x_ptr=x, w_ptr=weights.head_w, b_ptr=weights.head_b, pooled_ptr=pooled,
                       HW=h * w, CIN=cin, L_P=weights.l_p),
                  dict(BLOCK_P=BLOCK_P, CIN_P=cin_p, BLOCK_K=k_tile(cin_p), BLOCK_L=BLOCK_L,
                       DOT_PRECISION=DOT_PRECISION), 4)
    block_m = 16 if n <= 16 else 64
    fc = Launch(_classifier_kernel, (triton.cdiv(n, block_m), triton.cdiv(weights.classes, BLOCK_N)),
                dict(a_ptr=pooled, w_ptr=weights.fc_w, b_ptr=weights.fc_b, out_ptr=logits, N=n,
                     K=weights.classes, K_P=weights.fc_b.shape[0], L_P=weights.l_p),
                dict(BLOCK_M=block_m, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, DOT_PRECISION=DOT_PRECISION), 4)
    return [pool, fc]


def head(x: torch.Tensor, weights: HeadWeights) -> torch.Tensor:
    """Run head and classifier on x (N, H, W, Cin); return fp32 logits (N, K)."""
    n = x.shape[0]
    pooled = torch.empty((n, weights.l_p), dtype=torch.float32, device=x.device)
    logits = torch.empty((n, weights.classes), dtype=torch.float32, device=x.device)
    for launch in head_launches(x, weights, pooled, logits):
        launch()
    return logits
