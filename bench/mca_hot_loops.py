"""llvm-mca on the hot loops of the x86 GEMM and depthwise kernels: cycles per iteration vs the FMA bound.

    python bench/mca_hot_loops.py [--mcpu znver4,znver5] [--isa avx2,avx512] [--all] [--show LOOP]

Each kernel file (csrc/ukernels/*-{avx2,avx512}.cc, the GEMMs and the depthwise
convs) is compiled to assembly with the flags CMake gives it (-O3 plus the
ISA's -m flags). Every loop whose body holds FMAs (a label and a backward jump
to it, with no other label between that is itself a loop head) is a hot-loop
candidate (single-block loops only: the kernels' k loops and pixel steps are
straight-line code); by default the one with the most FMAs per kernel is shown (the full
register tile's k loop, or the depthwise kernel's pixel group: 8 pixels, 16 for AVX-512
at stride 1), --all shows every one. For each it prints the FMAs, loads, broadcasts and stack accesses
(spills) per iteration, the FMA bound (FMAs / 2: two FMA pipes on Zen 3-5) and
llvm-mca's cycles per iteration for each -mcpu, and the FMA share that gives.
Needs g++ and llvm-mca (a newer one, llvm-mca-19 for znver5, is preferred:
`apt-get install llvm-19` on Debian 12). LLVM 14's znver3 model issues one ymm
FMA per cycle where Zen 3 issues two (eight independent FMA chains: 8.05 cycles
per 8 FMAs in LLVM 14, 4.06 in LLVM 19), so with it every znver3 share reads half.
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = {"avx2": ["-mavx2", "-mfma"], "avx512": ["-mavx512f", "-mfma"]}
OPS = ("expand", "project", "head", "stem", "dwconv3x3s1", "dwconv3x3s2")
FMA_PIPES = 2
# No AVX-512 in these models (llvm-mca would skip the zmm instructions). Note that
# znver4 (and LLVM 19's znver5, which reuses it) runs a zmm FMA over both
# 256-bit halves, so its AVX-512 rows read against the FMA bound x 2; Zen 5's
# EPYC parts have full-width zmm FMAs, for which the bound is as printed.
NO_AVX512 = ("znver1", "znver2", "znver3")


def find_mca():
    for name in ("llvm-mca-19", "/usr/lib/llvm-19/bin/llvm-mca", "llvm-mca-18", "llvm-mca-17", "llvm-mca-16",
                 "llvm-mca"):
        path = shutil.which(name) or (name if Path(name).is_file() else None)
        if path:
            return path
    sys.exit("no llvm-mca found (apt-get install llvm)")


def loops(asm: str):
    """(label, body lines) of each loop: a label and a later jump back to it."""
    lines = asm.splitlines()
    heads = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(\.L\w+):", line)
        if m:
            heads[m.group(1)] = i
    for i, line in enumerate(lines):
        m = re.match(r"\s+j\w+\s+(\.L\w+)\s*$", line)
        if m and heads.get(m.group(1), i) < i:
            span = lines[heads[m.group(1)] + 1:i + 1]
            if any(re.match(r"^\.L\w+:", b) for b in span):
                continue  # not a single-block (innermost, straight-line) loop
            yield m.group(1), [b for b in span if b.startswith("\t") and not b.startswith("\t.")]


def stats(body):
    fma = sum(bool(re.match(r"\s+vfn?madd", b)) for b in body)
    bcast = sum("vbroadcastss" in b and "(" in b for b in body)
    mem = [b for b in body if "(" in b and not b.split()[0].startswith(("lea", "prefetch", "nop"))]
    spills = sum("(%rsp)" in b or "(%rbp)" in b for b in body)
    loads = sum(1 for b in mem if not re.search(r",\s*-?\w*\(", b.split("#")[0]))
    return fma, loads, bcast, spills


def mca(mca_path, body, mcpu):
    src = "\n".join(body) + "\n"
    out = subprocess.run([mca_path, f"-mcpu={mcpu}", "-iterations=200", "-skip-unsupported-instructions=lack-sched"]
                         if "19" in mca_path else [mca_path, f"-mcpu={mcpu}", "-iterations=200"],
                         input=src, capture_output=True, text=True)
    m = re.search(r"Total Cycles:\s+(\d+)", out.stdout)
    return int(m.group(1)) / 200 if m else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mcpu", default="znver3,znver4,znver5")
    parser.add_argument("--isa", default="avx2,avx512")
    parser.add_argument("--all", action="store_true", help="every FMA loop, not just the biggest per kernel")
    parser.add_argument("--show", metavar="FILE:LOOP", help="print the loop's assembly, e.g. "
                        "f32-expand-relu6-6x16-avx2.cc:.L114")
    parser.add_argument("--cxx", default=shutil.which("g++") or "c++")
    args = parser.parse_args()
    mca_path = find_mca()
    cpus = args.mcpu.split(",")
    supported = subprocess.run([mca_path, "-mcpu=help"], capture_output=True, text=True)
    cpus = [c for c in cpus if c in supported.stdout + supported.stderr]
    print(f"{mca_path}; -mcpu {', '.join(cpus)}; FMA bound = FMAs / {FMA_PIPES} cycles per iteration")
    head = (f"{'kernel':<44}{'loop':>7}{'fma':>5}{'ld':>4}{'bc':>4}{'spl':>4}{'bound':>7}"
            + "".join(f"{c:>9}{'fma%':>6}" for c in cpus))
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for isa in args.isa.split(","):
            for op in OPS:
                for src in sorted((ROOT / "csrc/ukernels").glob(f"f32-{op}-*-{isa}.cc")):
                    if op.startswith("dwconv") is False and "dwconv" in src.name:
                        continue
                    asm_path = Path(tmp) / (src.stem + ".s")
                    subprocess.run([args.cxx, "-O3", "-DNDEBUG", "-std=c++17", "-fPIC", *FLAGS[isa],
                                    f"-I{ROOT / 'csrc'}", "-S", "-o", str(asm_path), str(src)], check=True)
                    found = [(label, body, stats(body)) for label, body in loops(asm_path.read_text())]
                    found = [f for f in found if f[2][0] > 0]
                    if not args.all:
                        found = sorted(found, key=lambda f: -f[2][0])[:1]
                    for label, body, (fma, loads, bcast, spills) in found:
                        if args.show == f"{src.name}:{label}":
                            print("\n".join(body))
                        bound = fma / FMA_PIPES
                        row = f"{src.name:<44}{label:>7}{fma:>5}{loads:>4}{bcast:>4}{spills:>4}{bound:>7.1f}"
                        for c in cpus:
                            if isa == "avx512" and c in NO_AVX512:
                                row += f"{'-':>9}{'-':>6}"
                                continue
                            cyc = mca(mca_path, body, c)
                            row += f"{cyc:>9.2f}{100 * bound / cyc:>5.0f}%"
                        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
