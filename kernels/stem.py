"""Stem: 3x3 stride-2 conv (3 -> C0) + ReLU6, reading the NCHW input, writing NHWC."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from mbv2_engine.arch import conv_out, pad_before

from ._common import DOT_PRECISION, Launch, padded_tensor, pow2_at_least_dot

TAPS_P = 32  # 27 = 3x3 taps x 3 colours, padded to a dot-friendly K
BLOCK_P = 64  # output pixels per program


@triton.jit
def _stem_kernel(x_ptr, w_ptr, b_ptr, out_ptr, H, W, HO, WO, PAD_T, PAD_L, C0,
                 SXN, SXC, SXH, SXW, BLOCK_P: tl.constexpr, TAPS_P: tl.constexpr,
                 C0_P: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """out[n, oy, ox, j] = relu6(sum_{ky,kx,c} x[n, c, 2oy+ky-PAD_T, 2ox+kx-PAD_L] * w[(ky,kx,c), j] + b[j]).

    As `mbv2_engine.reference.stem`: an im2col tile (BLOCK_P pixels x 27 taps, zero
    outside the image) times the packed weight (TAPS_P, C0_P). x may have any strides.
    """
    n = tl.program_id(0)
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    oy = p // WO
    ox = p % WO
    k = tl.arange(0, TAPS_P)
    iy = (oy * 2 - PAD_T)[:, None] + (k // 9)[None, :]
    ix = (ox * 2 - PAD_L)[:, None] + (k // 3 % 3)[None, :]
    ok = (p < HO * WO)[:, None] & (k < 27)[None, :] & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    x_img = x_ptr + n.to(tl.int64) * SXN
    patch = tl.load(x_img + (k % 3)[None, :] * SXC + iy * SXH + ix * SXW, mask=ok, other=0.0)
    j = tl.arange(0, C0_P)
    acc = tl.dot(patch.to(out_ptr.dtype.element_ty), tl.load(w_ptr + k[:, None] * C0_P + j[None, :]),
                 input_precision=DOT_PRECISION)
    acc = tl.clamp(acc + tl.load(b_ptr + j)[None, :], 0.0, 6.0)
    out = out_ptr + n.to(tl.int64) * (HO * WO * C0)
    tl.store(out + p[:, None] * C0 + j[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=(p < HO * WO)[:, None] & (j < C0)[None, :])


@dataclass(frozen=True)
class StemWeights:
    w: torch.Tensor  # (TAPS_P, C0_P), rows in (ky, kx, colour) order
    b: torch.Tensor  # (C0_P,) fp32
    c0: int


def pack_stem(arrays: dict, dtype: torch.dtype, device) -> StemWeights:
    weight = arrays["stem.weight"]  # (C0, 3, 3, 3) = (out, colour, ky, kx)
    c0 = weight.shape[0]
    c0_p = pow2_at_least_dot(c0)
    taps = weight.transpose(2, 3, 1, 0).reshape(27, c0)
    return StemWeights(padded_tensor(taps, (TAPS_P, c0_p), dtype, device),
                       padded_tensor(arrays["stem.bias"], (c0_p,), torch.float32, device), c0)


def stem_launch(x: torch.Tensor, weights: StemWeights, padding: str, out: torch.Tensor) -> Launch:
    """Check shapes and fix the launch: x (N, 3, H, W) any strides -> out (N, Ho, Wo, C0)."""
    n, colours, h, w = x.shape
    ho, wo = conv_out(h, 2), conv_out(w, 2)
    if colours != 3 or tuple(out.shape) != (n, ho, wo, weights.c0):
        raise ValueError(f"stem: x {tuple(x.shape)} -> out {tuple(out.shape)}, expected "
                         f"(N, 3, H, W) -> {(n, ho, wo, weights.c0)}")
    if not out.is_contiguous() or x.dtype != out.dtype:
        raise ValueError("stem: out must be contiguous and x must share its dtype")
    sxn, sxc, sxh, sxw = x.stride()
    args = dict(x_ptr=x, w_ptr=weights.w, b_ptr=weights.b, out_ptr=out, H=h, W=w, HO=ho, WO=wo,
                PAD_T=pad_before(h, 2, padding), PAD_L=pad_before(w, 2, padding), C0=weights.c0,
                SXN=sxn, SXC=sxc, SXH=sxh, SXW=sxw)
    consts = dict(BLOCK_P=BLOCK_P, TAPS_P=TAPS_P, C0_P=weights.b.shape[0], DOT_PRECISION=DOT_PRECISION)
    return Launch(_stem_kernel, (n, triton.cdiv(ho * wo, BLOCK_P)), args, consts, 4)


def stem(x: torch.Tensor, weights: StemWeights, padding: str = "torch") -> torch.Tensor:
    """Run the stem on x (N, 3, H, W) and return a new (N, Ho, Wo, C0) tensor."""
    n, _, h, w = x.shape
    out = torch.empty((n, conv_out(h, 2), conv_out(w, 2), weights.c0), dtype=x.dtype, device=x.device)
    stem_launch(x, weights, padding, out)()
    return out
