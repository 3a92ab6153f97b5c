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
    for precision, isas in (("float32", ("avx2", "avx512")), ("int8", ("avxvnni", "avx512", "amx")),
                            ("bf16", ("avx512", "amx"))):
        unit = "GOP/s" if precision == "int8" else "GFLOP/s"
        for isa in isas:
            peak, what = fma_peak.peak_gflops(isa, precision), fma_peak.instruction(isa, precision)
            print(f"  {isa:<8}{f'{peak:.1f} {unit} {precision} ({what})' if peak else f'{precision}: n/a ({what})'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
