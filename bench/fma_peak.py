"""Prints the single-thread FMA peak of each x86 ISA (AVX2 ymm, AVX-512 zmm) in GFLOP/s, and the int8 one.

    python bench/fma_peak.py

The kernel (csrc/core/fma_peak.cc, through mbv2_engine.fma_peak) runs 12
independent FMA chains on one thread; `mbv2-engine bench` prints each result's
share of the same figure. For int8 networks the same chains of vpdpbusd (AVX-512
VNNI on zmm, AVX-VNNI on ymm) give the int8 peak in GOP/s, for bf16 vdpbf16ps
the bf16 one; on a CPU with AMX, TDPBUSD and TDPBF16PS on four sum tiles (the
AMX kernels' shape) give the tiles' peaks.
"""
import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mbv2_engine import fma_peak  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(f"{cpu_name()}, one thread:")
    for isa in ("avx2", "avx512"):
        peak = fma_peak.peak_gflops(isa)
        print(f"  {isa:<8}{f'{peak:.1f} GFLOP/s' if peak else 'n/a (this CPU lacks it)'}")
    for isa in ("avxvnni", "avx512"):
        peak = fma_peak.peak_gflops(isa, "int8")
        print(f"  {isa:<8}{f'{peak:.1f} GOP/s int8 (vpdpbusd)' if peak else 'int8: n/a (this CPU lacks VNNI)'}")
    peak = fma_peak.peak_gflops("avx512", "bf16")
    print(f"  {'avx512':<8}{f'{peak:.1f} GFLOP/s bf16 (vdpbf16ps)' if peak else 'bf16: n/a (this CPU lacks AVX512_BF16)'}")
    for precision, unit, instruction in (("int8", "GOP/s", "tdpbusd"), ("bf16", "GFLOP/s", "tdpbf16ps")):
        peak = fma_peak.peak_gflops("amx", precision)
        print(f"  {'amx':<8}{f'{peak:.1f} {unit} {precision} ({instruction})' if peak else f'{precision}: n/a (no AMX here)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
