"""Side-by-side comparison of mbv2-engine with its peers: one command, one process, interleaved.

    python bench/compare.py                    # every case, 30 repetitions
    python bench/compare.py --quick            # 5 repetitions: proves it works, measures little
    python bench/compare.py --cases w1.0-224-b1-t1 w1.0-224-b8-t2 --memory
    python bench/compare.py --quick --cases int8-w0.35-224-b1-t1 int8-w1.0-224-b1-t1
    python bench/compare.py --cases bf16-w1.0-224-b1-t1 bf16-w1.0-224-b1-t2 bf16-w1.0-224-b8-t2

For each case every provider is built from the same weights, checked against
PyTorch eager, then timed interleaved: each repetition times every provider
once, in a freshly shuffled order, so drift on a shared machine hits them all
alike and no provider always follows the same one. Prints a table per case
(median ms, images/s, GFLOP/s and its share of the core's measured peak for the
case's precision times the threads, ratio to the best peer's median, the median
per-repetition ratio and the share of repetitions won against it, with
--memory the peak memory growth of load plus inference) and saves everything
as JSON under bench/results/. Exits 1 if a provider gave wrong numbers.

The int8 cases (`int8-...`) run the engine's int8 and the peers' own int8, each
quantized from the same float weights with the same calibration inputs
(bench/int8_peers.py), beside the engine's float32 and OpenVINO's default
precision; their tables add each provider's max |logit error| against PyTorch
eager float32 and its top-1 agreement on the timed inputs, and say whether the
engine's int8 error is within ONNX Runtime's.

The bf16 cases (`bf16-...`) run the engine's bf16 (`dtype="bf16"`) against
OpenVINO's default precision on the same float model (the best peer there; its
ISA column says what it resolved to, bf16 or bf16 on AMX), with the engine's
float32 and the float32 peers as context; their tables add the same error
columns and say whether the engine's bf16 error is within OpenVINO's default's.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

import peak_memory
from providers import CASES, PROVIDERS, Case, Runner, Unavailable, Workload, cpu_model, make_workload, ready

ENGINE_INT8, ORT_INT8 = "mbv2-engine-int8", "onnxruntime-int8"
ENGINE_BF16, OPENVINO_DEFAULT = "mbv2-engine-bf16", "openvino-default"
# Per reduced precision, the engine's provider and the peer whose logit error against float32 it must not
# exceed (issue 14, item 4; issue 15, item 3), and how the verdict names that peer. Their tables add the
# error columns.
ERROR_VERDICTS = {"int8": (ENGINE_INT8, ORT_INT8, "ONNX Runtime's"),
                  "bf16": (ENGINE_BF16, OPENVINO_DEFAULT, "OpenVINO default's")}

RESULTS = Path(__file__).resolve().parent / "results"
# The peak each case's GFLOP/s is a share of: this core's single-thread peak for the case's precision,
# measured by the core (mbv2_engine.fma_peak), the best over these ISAs, times the case's threads. The
# FMA peak for float32, vdpbf16ps for bf16, vpdpbusd (GOP/s) for int8, and on a CPU with AMX the tiles'
# TDPBF16PS and TDPBUSD (the best, by far: the shares there are of the tiles); none on a CPU without them.
PEAK_ISAS = {"float32": ("avx512", "avx2"), "bf16": ("amx", "avx512"), "int8": ("amx", "avx512", "avxvnni")}


def core_peak(precision: str) -> tuple[float, str] | None:
    """(GFLOP/s of one thread, the ISA) of this CPU's best peak for `precision`, or None."""
    from mbv2_engine.fma_peak import peak_gflops

    peaks = [(p, isa) for isa in PEAK_ISAS[precision] if (p := peak_gflops(isa, precision))]
    return max(peaks, default=None)


def case_providers(names: list[str], case: Case) -> list[str]:
    """The providers of `names` that run in this case's precision (float32, int8 or bf16), in order."""
    return [name for name in names if PROVIDERS[name].runs_in(case)]


def build(names: list[str], w: Workload) -> tuple[dict[str, Runner], dict[str, str], dict[str, str]]:
    """Checked runners by provider name; the skipped ones and those with wrong numbers, with why."""
    runners, skipped, wrong = {}, {}, {}
    for name in tqdm(case_providers(names, w.case), desc=f"{w.case.name}: build and check", leave=False):
        try:
            runners[name] = ready(PROVIDERS[name], w)
        except Unavailable as e:
            skipped[name] = str(e)
        except AssertionError as e:
            wrong[name] = str(e)
    return runners, skipped, wrong


def wait_for_quiet(limit: float = 0.5, window: float = 0.02) -> None:
    """Returns once no thread of this process burns CPU (at most `limit` seconds).

    ONNX Runtime's and OpenVINO's thread pools spin-wait for tens of
    milliseconds after a run; whoever runs next would share the cores with
    those spinning threads, which no user running one engine ever sees.
    The kernel adds up the CPU time of threads running on other cores only
    at scheduler ticks (4 ms here), so a window shorter than a few ticks can
    read 0 while a spinning thread holds a core: the window is 20 ms.
    """
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(window)
        if time.process_time() - cpu < 0.2 * (time.perf_counter() - wall):
            return


def warm_up(run: Callable[[], object], seconds: float) -> None:
    """Untimed calls for at least `seconds`, and at least one.

    After the idle spell of `wait_for_quiet` these VMs run the next call or
    two slower (the core clocks down, or the vCPU resumes on another core with
    cold caches): one engine at 224 on 1 thread took 7.0 ms as the second call
    after 20 ms idle and 5.9 ms back to back. Calling for a while first times
    what a user running inference back to back gets.
    """
    until = time.perf_counter() + seconds
    run()
    while time.perf_counter() < until:
        run()


def interleave(runners: dict[str, Runner], reps: int, label: str, warmup: float) -> dict[str, list[float]]:
    """Seconds per call, `reps` per provider: every repetition times each provider once.

    The order is shuffled anew for each repetition (seeded, so a run can be
    repeated): what one engine leaves behind (caches, a woken core) shapes the
    next one's time, and a fixed or merely rotated order would give every
    provider the same predecessor almost every time. Each turn starts once the
    previous provider's threads have gone quiet, then makes untimed calls for
    `warmup` seconds (at least one) and one timed call.
    """
    names = list(runners)
    samples = {name: [] for name in names}
    order = np.random.default_rng(0)
    for _ in tqdm(range(reps), desc=f"{label}: timing", leave=False):
        for name in order.permutation(names):
            run = runners[name].run
            wait_for_quiet()
            warm_up(run, warmup)
            t0 = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - t0)
    return samples


def summarize(w: Workload, runners: dict[str, Runner], samples: dict[str, list[float]]) -> dict:
    """Per provider: median ms, images/s, GFLOP/s, and three comparisons with the best peer (the
    peer with the lowest median; < 1 is faster): the ratio of the medians; the median of the
    per-repetition ratios; and the share of repetitions in which the provider was faster.

    A repetition times every provider within a fraction of a second, so a per-repetition ratio
    compares two engines on the same state of a shared machine, whose speed drifts by 20-40%
    between stretches; the ratio of medians compares each engine's typical stretch, and it is the
    one the tables lead with.
    """
    medians = {name: float(np.median(s)) for name, s in samples.items()}
    case = w.case if hasattr(w.case, "precision") else Case()  # a case without one is float32
    peers = [name for name in medians if PROVIDERS[name].is_peer(case)]
    best = min(peers, key=medians.get) if peers else None
    peak = core_peak(case.precision)
    rows = {}
    for name, m in medians.items():
        row = {"isa": runners[name].isa, "median_ms": 1e3 * m, "images_per_s": w.case.batch / m,
               "gflops": w.gflops(m), "share_of_peak": w.gflops(m) / (peak[0] * case.threads) if peak else None,
               "vs_best_peer": None, "paired_vs_best_peer": None, "won_vs_best_peer": None,
               # the checked output against PyTorch eager float32 (max |error|, top-1 agreement)
               "vs_torch_f32": getattr(runners[name], "accuracy", None),
               "samples_ms": [1e3 * s for s in samples[name]]}
        if best:
            paired = np.asarray(samples[name]) / np.asarray(samples[best])
            row.update(vs_best_peer=m / medians[best], paired_vs_best_peer=float(np.median(paired)),
                       won_vs_best_peer=float(np.mean(paired < 1)))
        rows[name] = row
    return rows


def memory(names: list[str], w: Workload) -> dict[str, float | None]:
    """Peak memory growth in MB of load + inference, one fresh process per provider (None: probe failed)."""
    out = {}
    for name in tqdm(names, desc=f"{w.case.name}: memory", leave=False):
        try:
            out[name] = peak_memory.measure(PROVIDERS[name], w) / 2**20
        except RuntimeError as e:
            print(e, file=sys.stderr)
            out[name] = None
    return out


def _err(value: float) -> str:
    """A logit error: 4 decimals for int8's (0.3303), scientific for float32's (1.1e-05)."""
    return f"{value:.4f}" if value >= 1e-3 else f"{value:.1e}"


def error_verdict(precision: str, rows: dict) -> str | None:
    """Is the engine's max |logit error| vs float32 within its reference peer's (ERROR_VERDICTS): int8 against
    ONNX Runtime's int8 (issue 14, item 4), bf16 against OpenVINO's default (issue 15, item 3)?"""
    if precision not in ERROR_VERDICTS:
        return None
    engine_name, peer_name, peers = ERROR_VERDICTS[precision]
    engine, peer = (rows.get(name, {}).get("vs_torch_f32") for name in (engine_name, peer_name))
    if not engine or not peer:
        return None
    verdict = "within" if engine["max_abs_error"] <= peer["max_abs_error"] else "ABOVE"
    return (f"{precision} max |logit error| vs PyTorch float32: {engine_name} {engine['max_abs_error']:.4f}, "
            f"{peer_name} {peer['max_abs_error']:.4f} ({verdict} {peers}; mean |error| "
            f"{engine['mean_abs_error']:.4f} and {peer['mean_abs_error']:.4f})")


def table(w: Workload, rows: dict, skipped: dict[str, str], wrong: dict[str, str], reps: int) -> str:
    c = w.case
    errors = c.precision in ERROR_VERDICTS  # int8 and bf16: the error columns and the verdict
    best = {"int8": ", best peer among the peers' int8",
            "bf16": f", best peer {OPENVINO_DEFAULT} (float32 peers as context)"}.get(c.precision, "")
    from mbv2_engine.fma_peak import instruction

    peak = core_peak(c.precision)
    peak_line = (f"peak: {c.threads} x {peak[0]:.1f} GFLOP/s ({peak[1]} {instruction(peak[1], c.precision)}, "
                 f"measured)" if peak else f"peak: no {c.precision} peak on this CPU")
    lines = [f"\n{c.name}: width {c.width}, {c.size}x{c.size}, batch {c.batch}, {c.threads} thread(s), "
             f"{2 * w.macs_per_image / 1e9:.3f} GFLOP per image, {reps} interleaved repetitions" + best,
             peak_line,
             f"{'provider':<22}{'ISA':<16}{'median ms':>10}{'images/s':>10}{'GFLOP/s':>9}{'peak':>6}{'vs best peer':>14}"
             f"{'paired':>8}{'won':>6}{'peak MB':>9}"
             + (f"{'max err':>9}{'mean err':>9}{'top-1':>7}" if errors else "")]
    for name, r in sorted(rows.items(), key=lambda item: item[1]["median_ms"]):
        ratio = f"{r['vs_best_peer']:.2f}x" if r["vs_best_peer"] else "-"
        paired = f"{r['paired_vs_best_peer']:.2f}x" if r.get("paired_vs_best_peer") else "-"
        won = f"{r['won_vs_best_peer']:.0%}" if r.get("won_vs_best_peer") is not None else "-"
        mem = f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else "-"
        share = f"{r['share_of_peak']:.0%}" if r.get("share_of_peak") is not None else "-"
        line = (f"{name:<22}{r['isa']:<16}{r['median_ms']:>10.2f}{r['images_per_s']:>10.1f}"
                f"{r['gflops']:>9.1f}{share:>6}{ratio:>14}{paired:>8}{won:>6}{mem:>9}")
        if errors:
            acc = r.get("vs_torch_f32") or {}
            line += (f"{_err(acc['max_abs_error']):>9}{_err(acc['mean_abs_error']):>9}{acc['top1_agreement']:>7.0%}"
                     if "top1_agreement" in acc else f"{'-':>9}{'-':>9}{'-':>7}")
        lines.append(line)
    lines += [f"{name:<22}skipped: {why}" for name, why in skipped.items()]
    lines += [f"{name:<22}WRONG NUMBERS, not timed: {why}" for name, why in wrong.items()]
    verdict = error_verdict(c.precision, rows)
    if verdict:
        lines.append(verdict)
    return "\n".join(lines)


def run_case(case_name: str, names: list[str], root: Path, reps: int, warmup: float) -> dict:
    w = make_workload(CASES[case_name], root)
    runners, skipped, wrong = build(names, w)
    rows = summarize(w, runners, interleave(runners, reps, case_name, warmup))
    print(table(w, rows, skipped, wrong, reps), flush=True)
    result = {"case": case_name, **vars(w.case), "macs_per_image": w.macs_per_image, "reps": reps,
              "warmup_s": warmup, "providers": rows, "skipped": skipped, "wrong": wrong}
    if w.case.precision == "int8":
        from int8_peers import CALIBRATION_SAMPLES, CALIBRATION_SEED, QDQ_SETTINGS
        result["int8"] = {"calibration": {"samples": CALIBRATION_SAMPLES, "seed": CALIBRATION_SEED,
                                          "distribution": "standard normal, preprocessed NCHW"},
                          "onnxruntime_quantize_static": QDQ_SETTINGS, "verdict": error_verdict("int8", rows)}
    if w.case.precision == "bf16":
        result["bf16"] = {"best_peer": OPENVINO_DEFAULT, "resolved": rows.get(OPENVINO_DEFAULT, {}).get("isa"),
                          "verdict": error_verdict("bf16", rows)}
    return result


def add_memory(result: dict, root: Path) -> None:
    """Adds each timed provider's peak memory growth to a case's result and prints its table again."""
    w = make_workload(CASES[result["case"]], root)
    rows = result["providers"]
    for name, mb in memory(list(rows), w).items():
        rows[name]["peak_mb"] = mb
    print(table(w, rows, result["skipped"], result["wrong"], result["reps"]), flush=True)


def save(cpu: str, results: list[dict], args: argparse.Namespace) -> Path:
    now = datetime.now()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", cpu).strip("-")
    path = RESULTS / f"{now:%Y-%m-%d_%H%M}_{slug}.json"
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps({"cpu": cpu, "date": now.isoformat(timespec="seconds"), "versions": versions(),
                                "args": vars(args), "cases": results}, indent=1, default=str))
    return path


def versions() -> dict[str, str]:
    """Versions of every runtime that could be compared, so a saved result says what it measured."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for dist in ("mbv2-engine", "torch", "onnxruntime", "onnx", "onnxscript", "openvino", "ai-edge-litert", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 repetitions instead of 30: a smoke run")
    p.add_argument("--reps", type=int, help="repetitions per provider (overrides --quick)")
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES), metavar="CASE",
                   help=f"cases to run (default all, float32, int8, then bf16): {', '.join(CASES)}")
    p.add_argument("--providers", nargs="+", choices=list(PROVIDERS), default=list(PROVIDERS),
                   metavar="NAME", help=f"providers to run (default all; each runs in the cases of its "
                                        f"precision): {', '.join(PROVIDERS)}")
    p.add_argument("--warmup-ms", type=float, default=20.0,
                   help="untimed calls for at least this long (at least one) before each timed call (default 20)")
    p.add_argument("--memory", action="store_true",
                   help="also measure each provider's peak memory growth (a fresh process each)")
    p.add_argument("--workdir", type=Path, help="where model files are written (default: a temporary folder)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    reps = args.reps or (5 if args.quick else 30)
    cpu = cpu_model()
    print(f"CPU: {cpu}", flush=True)
    # Which build is timed: an installed wheel shadows a source tree unless PYTHONPATH names it
    # (a whole session once timed a stale wheel here).
    import mbv2_engine
    print(f"mbv2_engine {mbv2_engine.__version__} from {Path(mbv2_engine.__file__).parent}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mbv2-bench-") as tmp:
        root = args.workdir or Path(tmp)
        results = [run_case(case, args.providers, root, reps, args.warmup_ms / 1e3) for case in args.cases]
        if args.memory:
            # Only after all timing: the fresh processes this starts (torch and every
            # runtime imported in each) left the case timed next slower (width 0.35,
            # timed last: the engine 2.0 ms after them, 1.6-1.7 ms in runs without).
            print("\npeak memory growth, one fresh process per provider:")
            for result in results:
                add_memory(result, root)
    print(f"\nsaved {save(cpu, results, args)}")
    wrong = [f"{r['case']}: {name}" for r in results for name in r["wrong"]]
    if wrong:
        print("wrong numbers (not timed): " + "; ".join(wrong), file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
