"""The single-thread FMA peak of each x86 ISA, measured: what the kernels' GFLOP/s are shares of.

The kernel is in the core (csrc/core/fma_peak.cc): 12 independent FMA chains on
one thread, for ymm (AVX2+FMA) and zmm (AVX-512F). Each ISA's figure, the best
of 20 runs of 6M FMAs (about 25 ms in all), is measured once per process and
cached. `bench/fma_peak.py` prints them; `mbv2-engine bench` prints each
result's share.
"""
from __future__ import annotations

from . import _core

_cache: dict[str, float | None] = {}


def peak_gflops(isa: str) -> float | None:
    """One thread's FMA peak for `isa` ("avx2" or "avx512") in GFLOP/s; None for any other ISA
    (the scalar reference, NEON) or a CPU without it."""
    if isa not in _cache:
        value = _core.fma_peak_gflops(isa)
        _cache[isa] = value if value > 0 else None
    return _cache[isa]


def share(gflops: float, isa: str) -> str:
    """`gflops` as a percentage of the ISA's peak, or '-' when there is none."""
    peak = peak_gflops(isa)
    return f"{100 * gflops / peak:.0f}%" if peak else "-"
