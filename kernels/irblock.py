"""Fused inverted-residual block: expand 1x1 + ReLU6, depthwise 3x3 + ReLU6, project 1x1, residual.

NHWC activations in fp16, bf16 or fp32; fp32 accumulation everywhere. The
expanded tensor never reaches DRAM: each program expands one hidden-channel chunk
of its input halo into a per-program scratch slot (a few KB, stays in L1/L2),
reads the 9 depthwise taps back from it and multiplies the result straight into
the projection accumulator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from mbv2_engine.arch import BlockSpec, conv_out, pad_before

from ._common import (DOT_MIN, DOT_PRECISION, Launch, k_tile, max_programs, padded_tensor,
                      pow2_at_least_dot, round_up, warps_for)

BLOCK_H = 32  # hidden channels per chunk: K of the projection dot, N of the expand dot
EXP_M = 64  # halo pixels per expand dot


@triton.jit
def _irblock_kernel(x_ptr, we_ptr, be_ptr, wd_ptr, bd_ptr, wp_ptr, bp_ptr, out_ptr, scratch_ptr,
                    H, W, HO, WO, PAD_T, PAD_L, CIN, COUT, TILES_X, TILES_PER_IMAGE, NUM_TILES,
                    STRIDE: tl.constexpr, HAS_EXPAND: tl.constexpr, RESIDUAL: tl.constexpr,
                    TILE_H: tl.constexpr, TILE_W: tl.constexpr, CIN_P: tl.constexpr,
                    BLOCK_K: tl.constexpr, HID_P: tl.constexpr, BLOCK_H: tl.constexpr,
                    COUT_P: tl.constexpr, EXP_M: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """out = project(relu6(dw3x3_s(relu6(expand(x))))) (+ x), as `mbv2_engine.reference.block`.

    expand: e[p, h] = relu6(sum_c x[p, c] * we[c, h] + be[h]), zero outside the image
    (the depthwise conv's padding); skipped (e = x) when HAS_EXPAND is false (t = 1).
    depthwise: d[o, h] = relu6(sum_k e[o * s + tap_k, h] * wd[k, h] + bd[h]).
    project: out[o, j] = sum_h d[o, h] * wp[h, j] + bp[j], plus x[o, j] when RESIDUAL.
    A persistent program walks output tiles of TILE_H x TILE_W pixels of one image with
    all output channels. Packed weights are zero-padded to CIN_P, HID_P and COUT_P.
    """
    HALO_W: tl.constexpr = (TILE_W - 1) * STRIDE + 3
    HALO_PIX: tl.constexpr = ((TILE_H - 1) * STRIDE + 3) * HALO_W
    dt = out_ptr.dtype.element_ty
    p = tl.arange(0, TILE_H * TILE_W)
    ty = p // TILE_W
    tx = p % TILE_W
    co = tl.arange(0, COUT_P)
    hc = tl.arange(0, BLOCK_H)
    kc = tl.arange(0, BLOCK_K)
    m = tl.arange(0, EXP_M)
    SLOT: tl.constexpr = (HALO_PIX + EXP_M - 1) // EXP_M * EXP_M * BLOCK_H
    scratch = scratch_ptr + tl.program_id(0) * SLOT
    for tile in range(tl.program_id(0), NUM_TILES, tl.num_programs(0)):
        n = tile // TILES_PER_IMAGE
        oy0 = (tile % TILES_PER_IMAGE) // TILES_X * TILE_H
        ox0 = (tile % TILES_PER_IMAGE) % TILES_X * TILE_W
        iy0 = oy0 * STRIDE - PAD_T
        ix0 = ox0 * STRIDE - PAD_L
        x_img = x_ptr + n.to(tl.int64) * (H * W * CIN)
        acc = tl.zeros((TILE_H * TILE_W, COUT_P), dtype=tl.float32)
        for h0 in range(0, HID_P, BLOCK_H):
            if HAS_EXPAND:
                for m0 in range(0, HALO_PIX, EXP_M):
                    q = m0 + m
                    hy = iy0 + q // HALO_W
                    hx = ix0 + q % HALO_W
                    inside = (q < HALO_PIX) & (hy >= 0) & (hy < H) & (hx >= 0) & (hx < W)
                    e = tl.zeros((EXP_M, BLOCK_H), dtype=tl.float32)
                    for k0 in range(0, CIN_P, BLOCK_K):
                        xt = tl.load(x_img + (hy * W + hx)[:, None] * CIN + (k0 + kc)[None, :],
                                     mask=inside[:, None] & ((k0 + kc) < CIN)[None, :], other=0.0)
                        we = tl.load(we_ptr + (k0 + kc)[:, None] * HID_P + (h0 + hc)[None, :])
                        e = tl.dot(xt, we, e, input_precision=DOT_PRECISION)
                    e = tl.clamp(e + tl.load(be_ptr + h0 + hc)[None, :], 0.0, 6.0)
                    e = tl.where(inside[:, None], e, 0.0)
                    tl.store(scratch + q[:, None] * BLOCK_H + hc[None, :], e.to(dt))
                tl.debug_barrier()
            d = tl.zeros((TILE_H * TILE_W, BLOCK_H), dtype=tl.float32)
            for k in tl.static_range(9):
                hy = ty * STRIDE + k // 3
                hx = tx * STRIDE + k % 3
                if HAS_EXPAND:
                    v = tl.load(scratch + (hy * HALO_W + hx)[:, None] * BLOCK_H + hc[None, :])
                else:
                    iy = iy0 + hy
                    ix = ix0 + hx
                    ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
                    v = tl.load(x_img + (iy * W + ix)[:, None] * CIN + (h0 + hc)[None, :],
                                mask=ok[:, None] & ((h0 + hc) < CIN)[None, :], other=0.0)
                d += v.to(tl.float32) * tl.load(wd_ptr + k * HID_P + h0 + hc)[None, :]
            d = tl.clamp(d + tl.load(bd_ptr + h0 + hc)[None, :], 0.0, 6.0)
            wp = tl.load(wp_ptr + (h0 + hc)[:, None] * COUT_P + co[None, :])
            acc = tl.dot(d.to(dt), wp, acc, input_precision=DOT_PRECISION)
            if HAS_EXPAND:
                tl.debug_barrier()  # the next chunk overwrites the scratch slot
        oy = oy0 + ty
        ox = ox0 + tx
        omask = ((oy < HO) & (ox < WO))[:, None] & (co < COUT)[None, :]
        acc += tl.load(bp_ptr + co)[None, :]
        if RESIDUAL:
            res = tl.load(x_img + (oy * W + ox)[:, None] * CIN + co[None, :], mask=omask, other=0.0)
            acc += res.to(tl.float32)
        out = out_ptr + n.to(tl.int64) * (HO * WO * COUT)
        tl.store(out + (oy * WO + ox)[:, None] * COUT + co[None, :], acc.to(dt), mask=omask)


@dataclass(frozen=True)
class IrblockWeights:
    """One block's weights in the kernel's layout: K-major, zero-padded, dots in the activation dtype."""

    spec: BlockSpec
    expand_w: torch.Tensor  # (CIN_P, HID_P); an unused placeholder when t = 1
    expand_b: torch.Tensor  # (HID_P,) fp32
    dw_w: torch.Tensor  # (9, HID_P) fp32
    dw_b: torch.Tensor  # (HID_P,) fp32
    proj_w: torch.Tensor  # (HID_P, COUT_P)
    proj_b: torch.Tensor  # (COUT_P,) fp32

    @property
    def cin_p(self) -> int:
        return round_up(self.spec.cin, DOT_MIN)

    @property
    def hid_p(self) -> int:
        return self.dw_b.shape[0]

    @property
    def cout_p(self) -> int:
        return self.proj_b.shape[0]


def pack_irblock(arrays: dict, prefix: str, spec: BlockSpec, dtype: torch.dtype,
                 device) -> IrblockWeights:
    """Repack `blocks.i.*` arrays (docs/format.md) once, at load."""
    cin_p, hid_p = round_up(spec.cin, DOT_MIN), round_up(spec.hidden, BLOCK_H)
    cout_p = pow2_at_least_dot(spec.cout)
    f32 = torch.float32
    if spec.has_expand:
        expand_w = padded_tensor(arrays[prefix + "expand.weight"].T, (cin_p, hid_p), dtype, device)
        expand_b = padded_tensor(arrays[prefix + "expand.bias"], (hid_p,), f32, device)
    else:
        expand_w = expand_b = torch.zeros(1, dtype=dtype, device=device)
    dw = arrays[prefix + "depthwise.weight"].reshape(spec.hidden, 9).T
    return IrblockWeights(
        spec, expand_w, expand_b,
        padded_tensor(dw, (9, hid_p), f32, device),
        padded_tensor(arrays[prefix + "depthwise.bias"], (hid_p,), f32, device),
        padded_tensor(arrays[prefix + "project.weight"].T, (hid_p, cout_p), dtype, device),
        padded_tensor(arrays[prefix + "project.bias"], (cout_p,), f32, device))


@dataclass(frozen=True)
class IrblockTile:
    tile_h: int
    tile_w: int
    num_warps: int


def irblock_tile(weights: IrblockWeights, wo: int) -> IrblockTile:
    """Tile per block from a table (autotuning needs a GPU; docs/gpu.md gives the reasons).

    8x8 output pixels by default: a 56-wide map splits evenly and the stride-1 halo
    (10x10) costs 1.56x the expand work of the tile. Wide maps take 8x16 (less halo), except
    t = 1, which has no expand to save and whose 9 tap loads spill at 8x16.
    Wide projections (COUT_P >= 256) take 4x8, and warps grow with the fp32 accumulator,
    so that it stays in registers (ptxas spills otherwise, see tests/gpu/compile_plan.py).
    """
    if weights.cout_p >= 256:
        tile_h, tile_w = 4, 8
    elif wo >= 112 and weights.spec.has_expand:
        tile_h, tile_w = 8, 16
    else:
        tile_h, tile_w = 8, 8
    return IrblockTile(tile_h, tile_w, warps_for(tile_h * tile_w * weights.cout_p))


def _grid(n: int, ho: int, wo: int, tile: IrblockTile, device) -> tuple[int, int, int]:
    """(tiles across, tiles per image, programs) of the persistent launch."""
    tiles_x = triton.cdiv(wo, tile.tile_w)
    per_image = triton.cdiv(ho, tile.tile_h) * tiles_x
    return tiles_x, per_image, min(n * per_image, max_programs(device))


def irblock_scratch_numel(weights: IrblockWeights, n: int, ho: int, wo: int, tile: IrblockTile,
                          device) -> int:
    """Elements of scratch the launch needs: one slot of halo pixels x BLOCK_H per program."""
    if not weights.spec.has_expand:
        return 1
    halo = ((tile.tile_h - 1) * weights.spec.stride + 3) * ((tile.tile_w - 1) * weights.spec.stride + 3)
    return _grid(n, ho, wo, tile, device)[2] * round_up(halo, EXP_M) * BLOCK_H


def irblock_launch(x: torch.Tensor, weights: IrblockWeights, padding: str, out: torch.Tensor,
                   scratch: torch.Tensor, tile: IrblockTile | None = None) -> Launch:
    """Check shapes and fix the launch of one block: x (N, H, W, Cin) -> out (N, Ho, Wo, Cout)."""
    spec = weights.spec
    n, h, w, cin = x.shape
    ho, wo = conv_out(h, spec.stride), conv_out(w, spec.stride)
    if cin != spec.cin or tuple(out.shape) != (n, ho, wo, spec.cout):
        raise ValueError(f"irblock: x {tuple(x.shape)} -> out {tuple(out.shape)} does not fit "
                         f"{spec} (expected out {(n, ho, wo, spec.cout)})")
    if not (x.is_contiguous() and out.is_contiguous() and x.dtype == out.dtype == weights.proj_w.dtype):
        raise ValueError("irblock: x and out must be contiguous and share the weights' dtype")
    tile = tile or irblock_tile(weights, wo)
    if scratch.numel() < irblock_scratch_numel(weights, n, ho, wo, tile, x.device):
        raise ValueError("irblock: scratch is too small for this launch")
    tiles_x, per_image, programs = _grid(n, ho, wo, tile, x.device)
    args = dict(x_ptr=x, we_ptr=weights.expand_w, be_ptr=weights.expand_b, wd_ptr=weights.dw_w,
                bd_ptr=weights.dw_b, wp_ptr=weights.proj_w, bp_ptr=weights.proj_b, out_ptr=out,
                scratch_ptr=scratch, H=h, W=w, HO=ho, WO=wo, PAD_T=pad_before(h, spec.stride, padding),
                PAD_L=pad_before(w, spec.stride, padding), CIN=cin, COUT=spec.cout, TILES_X=tiles_x,
                TILES_PER_IMAGE=per_image, NUM_TILES=n * per_image)
    consts = dict(STRIDE=spec.stride, HAS_EXPAND=spec.has_expand, RESIDUAL=spec.residual,
                  TILE_H=tile.tile_h, TILE_W=tile.tile_w, CIN_P=weights.cin_p,
                  BLOCK_K=k_tile(weights.cin_p), HID_P=weights.hid_p, BLOCK_H=BLOCK_H,
                  COUT_P=weights.cout_p, EXP_M=EXP_M, DOT_PRECISION=DOT_PRECISION)
    return Launch(_irblock_kernel, (programs,), args, consts, tile.num_warps)


def irblock(x: torch.Tensor, weights: IrblockWeights, padding: str = "torch",
            tile: IrblockTile | None = None) -> torch.Tensor:
    """Run one block on x (N, H, W, Cin) and return a new (N, Ho, Wo, Cout) tensor."""
    n, h, w, _ = x.shape
    spec = weights.spec
    ho, wo = conv_out(h, spec.stride), conv_out(w, spec.stride)
    tile = tile or irblock_tile(weights, wo)
    out = torch.empty((n, ho, wo, spec.cout), dtype=x.dtype, device=x.device)
    scratch = torch.empty(irblock_scratch_numel(weights, n, ho, wo, tile, x.device),
                          dtype=x.dtype, device=x.device)
    irblock_launch(x, weights, padding, out, scratch, tile)()
    return out
