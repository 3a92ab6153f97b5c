"""bf16 accuracy side by side (issue 15, item 3): the engine's bf16 against OpenVINO's default precision on
the same float models and the same inputs, both judged against the engine's float32.

    python bench/bf16_accuracy.py            # shapes: 1000 held-out pictures; random models: 500 inputs each
    python bench/bf16_accuracy.py --quick    # 200 pictures, 100 inputs

Models:
- the shipped shapes model (mbv2_engine/data/shapes.npz: width 0.35, 64x64, ten classes of drawn shapes,
  examples/train_shapes.py), on pictures drawn from shapes.HELD_OUT_SEED, which training never saw, each
  preprocessed as the engine does;
- random calibrated models (`export.export_random`, seed providers.SEED, as bench/compare.py's cases) at
  width 1.0 and 0.35, 224x224, 1000 classes, on random-normal inputs (the bench's own, whose first eight
  are the batch-8 cases' inputs).

Each model runs in the engine's float32 (the reference) and bf16 (`dtype="bf16"`), and in OpenVINO on the
ONNX export of the same folded weights (bench/int8_accuracy.py's export), once with no precision hint (its
default: bf16 on a CPU with AVX512-BF16 or AMX; the row names what it resolved to) and once with
`INFERENCE_PRECISION_HINT=f32` (which shows the export itself adds nothing). Prints, per model and row,
accuracy (the shapes model), top-1 agreement with float32, max and mean |logit error| against float32, the
largest float32 top-1 margin among the inputs whose top-1 changed (how near a tie they were), and whether the
engine's bf16 error is within OpenVINO's default's; saves everything as JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from mbv2_engine import Engine, _core, shapes  # noqa: E402
from mbv2_engine.demo import SHAPES_MODEL  # noqa: E402
from mbv2_engine.export import export_random  # noqa: E402

from int8_accuracy import BATCH, onnx_export, scores  # noqa: E402,I001
from providers import SEED, cpu_model, openvino_resolved  # noqa: E402

THREADS = 2
RANDOM_MODELS = (1.0, 0.35)  # widths, at 224x224 with 1000 classes
ENGINE_BF16, OPENVINO_DEFAULT = "mbv2-engine bf16", "openvino default"


def held_out(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The shapes model's held-out pictures, preprocessed as the engine does them, and their labels."""
    images, labels = shapes.make_dataset(n, shapes.HELD_OUT_SEED)
    return shapes.to_batch(images, pp=Engine.load(SHAPES_MODEL).meta["preprocess"]), labels


def openvino_runner(path: Path, hint: str | None):
    """OpenVINO on an ONNX file of fixed batch BATCH: a function of any multiple of BATCH inputs, and what
    the compiled model resolved to (`providers.openvino_resolved`)."""
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": THREADS, "PERFORMANCE_HINT": "LATENCY"}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    run = lambda x: np.concatenate([request.infer({0: x[i:i + BATCH]})[0].copy()  # noqa: E731
                                    for i in range(0, len(x), BATCH)])
    return run, openvino_resolved(compiled)


def compare(path: Path, x: np.ndarray, labels: np.ndarray | None, tmp: Path) -> dict:
    """The rows of one model: each run's scores against the engine's float32, and the verdict."""
    float32 = Engine.load(path, threads=THREADS).run(x)
    bf16 = Engine.load(path, threads=THREADS, dtype="bf16")
    assert bf16.precision == "bf16"
    onnx = onnx_export(path, tmp / f"{path.stem}.onnx", x[:BATCH])
    default, resolved = openvino_runner(onnx, None)
    f32_hint, _ = openvino_runner(onnx, "f32")
    outputs = {"mbv2-engine float32": float32, ENGINE_BF16: bf16.run(x),
               OPENVINO_DEFAULT: default(x), "openvino f32 hint": f32_hint(x)}
    top2 = np.sort(float32, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]  # float32's top-1 logit minus its second
    rows = {name: scores(out, float32, labels) for name, out in outputs.items()}
    engine, peer = rows[ENGINE_BF16], rows[OPENVINO_DEFAULT]
    return {"model": str(path.name), "inputs": int(len(x)), "bf16_kernels": bf16.plan_for(*x.shape[2:]).isa,
            "openvino_default_resolved": resolved,
            "max_abs_logit": float(np.abs(float32).max()),
            "median_top1_margin": float(np.median(margin)),
            "rows": rows,
            "engine_within_openvino_default": {
                "max": engine["max_logit_error"] <= peer["max_logit_error"],
                "mean": engine["mean_logit_error"] <= peer["mean_logit_error"]},
            "engine_top1_at_least_99": engine["top1_agreement"] >= 0.99}


def cpu_bf16_features() -> list[str]:
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    return sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_fp16"})


def print_model(title: str, m: dict) -> None:
    print(f"\n{title}: {m['inputs']} inputs, logits up to {m['max_abs_logit']:.2f}, median float32 top-1 margin "
          f"{m['median_top1_margin']:.3f}; engine bf16 kernels {m['bf16_kernels']}, OpenVINO default resolved "
          f"to {m['openvino_default_resolved']}; errors against the engine's float32")
    accuracy = "accuracy" in m["rows"][ENGINE_BF16]
    print(f"{'':<24}" + (f"{'accuracy':>9}" if accuracy else "")
          + f"{'top-1 = f32':>12}{'max err':>9}{'mean err':>10}{'flipped margin':>16}")
    for name, s in m["rows"].items():
        label = f"{name} ({m['openvino_default_resolved']})" if name == OPENVINO_DEFAULT else name
        flipped = "-" if s["largest_flipped_margin"] is None else f"<= {s['largest_flipped_margin']:.4f}"
        print(f"{label:<24}" + (f"{100 * s['accuracy']:>8.1f}%" if accuracy else "")
              + f"{100 * s['top1_agreement']:>11.1f}%{s['max_logit_error']:>9.4f}{s['mean_logit_error']:>10.5f}"
              + f"{flipped:>16}")
    within = m["engine_within_openvino_default"]
    print(f"engine bf16 vs OpenVINO default: max |error| {'within' if within['max'] else 'ABOVE'}, mean |error| "
          f"{'within' if within['mean'] else 'ABOVE'}; top-1 agreement "
          f"{'>=' if m['engine_top1_at_least_99'] else 'BELOW'} 99%")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 held-out pictures and 100 random inputs")
    args = parser.parse_args(argv)
    n_shapes, n_random = (200, 100) if args.quick else (1000, 500)
    if "avx512" not in _core.available_bf16_isas():
        print("this CPU has no AVX512-BF16: the engine's bf16 cannot run here", file=sys.stderr)
        return 1
    cpu, features = cpu_model(), cpu_bf16_features()
    print(f"CPU: {cpu}; bf16 features: {', '.join(features) or 'none'}; {THREADS} threads")
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        x, labels = held_out(n_shapes)
        models["shapes (width 0.35, 64x64, 10 classes)"] = compare(SHAPES_MODEL, x, labels, tmp)
        x = np.random.default_rng(SEED).standard_normal((n_random, 3, 224, 224), dtype=np.float32)
        for width in RANDOM_MODELS:
            path = Path(export_random(tmp / f"random-w{width}-224.npz", seed=SEED, width_mult=width, progress=False))
            models[f"random (width {width}, 224x224, 1000 classes)"] = compare(path, x, None, tmp)
    for title, m in models.items():
        print_model(title, m)
    out = ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d_%H%M}_bf16-accuracy.json"
    out.write_text(json.dumps({"cpu": cpu, "cpu_bf16_features": features, "threads": THREADS,
                               "held_out": n_shapes, "random_inputs": n_random, "random_seed": SEED,
                               "reference": "mbv2-engine float32", "models": models}, indent=1))
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
