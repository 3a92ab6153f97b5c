"""The single-thread FMA peak of each x86 ISA, measured: what the kernels' GFLOP/s are shares of.

For an int8 network the reference is the int8 multiply-add instruction's peak
instead (vpdpbusd: `peak_gflops(isa, "int8")`), in GOP/s; for bf16 the bf16
pair dot product's (vdpbf16ps: `peak_gflops("avx512", "bf16")`), in GFLOP/s.
On ISA "amx" both are the tile instructions' (TDPBUSD, TDPBF16PS) on the
four 16 x 16 sum tiles the AMX kernels use.

The kernel is in the core (csrc/core/fma_peak.cc): 12 independent FMA chains on
one thread, for ymm (AVX2+FMA) and zmm (AVX-512F). Each ISA's figure, the best
of 20 runs of 6M FMAs (about 25 ms in all), is measured once per process and
cached. `bench/fma_peak.py` prints them; `mbv2-engine bench` prints each
result's share.
"""
from __future__ import annotations

from . import _core

_cache: dict[tuple[str, str], float | None] = {}


def peak_gflops(isa: str, precision: str = "float32") -> float | None:
    """One thread's peak for `isa` in GFLOP/s: the FMA peak ("avx2" or "avx512") for float32, the
    int8 peak in GOP/s (vpdpbusd for "avx512" or "avxvnni", TDPBUSD for "amx"), the bf16 one
    (vdpbf16ps for "avx512", TDPBF16PS for "amx"); None for any other ISA (the scalar reference, NEON, AVX2 without VNNI) or a CPU without it."""
    key = (isa, precision)
    if key not in _cache:
        measure = {"int8": _core.int8_peak_gops, "bf16": _core.bf16_peak_gflops}.get(precision,
                                                                                    _core.fma_peak_gflops)
        value = measure(isa)
        _cache[key] = value if value > 0 else None
    return _cache[key]


def instruction(isa: str, precision: str = "float32") -> str:
    """The instruction whose peak `peak_gflops(isa, precision)` measures."""
    if precision == "float32":
        return "FMA"
    return {"int8": "tdpbusd", "bf16": "tdpbf16ps"}[precision] if isa == "amx" else \
        {"int8": "vpdpbusd", "bf16": "vdpbf16ps"}[precision]


def share(gflops: float, isa: str, precision: str = "float32") -> str:
    """`gflops` as a percentage of the ISA's peak, or '-' when there is none."""
    peak = peak_gflops(isa, precision)
    return f"{100 * gflops / peak:.0f}%" if peak else "-"
