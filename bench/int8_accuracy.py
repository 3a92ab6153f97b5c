"""int8 accuracy side by side (issue 14, item 4): the engine's int8 against ONNX Runtime's int8 on the
same models and the same calibration inputs, both judged against the float32 engine.

    python bench/int8_accuracy.py            # shapes: 1000 held-out pictures; random models: 500 inputs each
    python bench/int8_accuracy.py --quick    # 200 pictures, 100 inputs

Models:
- the shipped shapes model (mbv2_engine/data/shapes.npz: width 0.35, 64x64, ten classes of drawn shapes,
  examples/train_shapes.py), calibrated on pictures drawn from a seed that neither training nor the held-out
  set uses, judged on pictures of shapes.HELD_OUT_SEED;
- random calibrated models (`export.export_random`, seed providers.SEED, as bench/compare.py's cases) at
  width 1.0 and 0.35, 224x224, 1000 classes, calibrated on random-normal inputs of one seed and judged on
  random-normal inputs of another (the bench's own, whose first eight are the batch-8 cases' inputs).

The engine quantizes with `mbv2_engine.quantize` (its default method); ONNX Runtime's model is
`quantize_static` QDQ, per channel, S8S8 (bench/int8_peers.py's settings) from the ONNX export of the same
folded weights, calibrated on the same inputs. Prints accuracy (the shapes model), top-1 agreement with
float32, the logit error, and the largest float32 top-1 margin among the inputs whose top-1 changed (how
near a tie they were) for each, and saves the table as JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from mbv2_engine import Engine, shapes  # noqa: E402
from mbv2_engine.demo import SHAPES_MODEL, torch_model_from_file  # noqa: E402
from mbv2_engine.export import export_random  # noqa: E402
from mbv2_engine.quantize import quantize  # noqa: E402

CALIBRATION_SEED = 77  # neither shapes.TRAIN_SEED nor shapes.HELD_OUT_SEED, nor providers.SEED
BATCH = 50  # the ONNX export's fixed batch: calibration and evaluation go in batches of it
THREADS = 2
RANDOM_MODELS = (1.0, 0.35)  # widths, at 224x224 with 1000 classes
ENGINE_INT8, ORT_INT8 = "mbv2-engine int8", "onnxruntime int8 (QDQ)"


def onnx_export(path: Path, out: Path, x: np.ndarray) -> Path:
    import torch
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_model_from_file(path), (torch.from_numpy(x),), str(out), dynamo=True,
                          input_names=["x"], output_names=["logits"], verbose=False)
    return out


def ort_runner(path: Path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: np.concatenate([session.run(["logits"], {"x": x[i:i + BATCH]})[0]
                                     for i in range(0, len(x), BATCH)])


def scores(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict:
    """One run against the reference logits (and the true labels, where the model has them)."""
    err = np.abs(logits - reference)
    top2 = np.sort(reference, axis=1)[:, -2:]
    flipped = logits.argmax(1) != reference.argmax(1)
    s = {"top1_agreement": float(1 - flipped.mean()),
         "max_logit_error": float(err.max()), "mean_logit_error": float(err.mean()),
         # A flip needs a margin below twice the max |error|: how close to a tie the flipped inputs were.
         "largest_flipped_margin": float((top2[:, 1] - top2[:, 0])[flipped].max()) if flipped.any() else None}
    if labels is not None:
        s["accuracy"] = float((logits.argmax(1) == labels).mean())
    return s


def compare(path: Path, cal: np.ndarray, x: np.ndarray, labels: np.ndarray | None, tmp: Path) -> dict:
    """The rows of one model: the engine's and ONNX Runtime's float32 and int8 against the engine's float32."""
    int8 = quantize(path, tmp / f"{path.stem}-int8.npz", cal)
    onnx = onnx_export(path, tmp / f"{path.stem}.onnx", x[:BATCH])
    from int8_peers import qdq_file
    (tmp / path.stem).mkdir()
    qdq = qdq_file(SimpleNamespace(case=SimpleNamespace(batch=BATCH), calibration=cal, dir=tmp / path.stem),
                   lambda w: onnx)
    float32 = Engine.load(path, threads=THREADS).run(x)
    outputs = {"mbv2-engine float32": float32, ENGINE_INT8: Engine.load(int8, threads=THREADS).run(x),
               "onnxruntime float32": ort_runner(onnx)(x), ORT_INT8: ort_runner(qdq)(x)}
    top2 = np.sort(float32, axis=1)[:, -2:]
    rows = {name: scores(out, float32, labels) for name, out in outputs.items()}
    engine, peer = rows[ENGINE_INT8], rows[ORT_INT8]
    return {"model": path.name, "calibration": len(cal), "inputs": len(x),
            "max_abs_logit": float(np.abs(float32).max()),
            "median_top1_margin": float(np.median(top2[:, 1] - top2[:, 0])), "rows": rows,
            "engine_within_ort": {"max": engine["max_logit_error"] <= peer["max_logit_error"],
                                  "mean": engine["mean_logit_error"] <= peer["mean_logit_error"]}}


def print_model(title: str, m: dict) -> None:
    print(f"\n{title}: calibration {m['calibration']}, {m['inputs']} held-out inputs, logits up to "
          f"{m['max_abs_logit']:.2f}, median float32 top-1 margin {m['median_top1_margin']:.3f}; "
          f"errors against the engine's float32")
    accuracy = "accuracy" in m["rows"][ENGINE_INT8]
    print(f"{'':<26}" + (f"{'accuracy':>9}" if accuracy else "")
          + f"{'top-1 = f32':>12}{'max err':>9}{'mean err':>10}{'flipped margin':>16}")
    for name, s in m["rows"].items():
        flipped = "-" if s["largest_flipped_margin"] is None else f"<= {s['largest_flipped_margin']:.4f}"
        print(f"{name:<26}" + (f"{100 * s['accuracy']:>8.1f}%" if accuracy else "")
              + f"{100 * s['top1_agreement']:>11.1f}%{s['max_logit_error']:>9.3f}{s['mean_logit_error']:>10.4f}"
              + f"{flipped:>16}")
    within = m["engine_within_ort"]
    print(f"engine int8 vs ONNX Runtime int8: max |error| {'within' if within['max'] else 'ABOVE'}, "
          f"mean |error| {'within' if within['mean'] else 'ABOVE'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 held-out pictures and 100 random inputs")
    parser.add_argument("--samples", type=int, default=250, help="calibration pictures of the shapes model "
                        "(a multiple of 50)")
    parser.add_argument("--random-samples", type=int, default=100, help="calibration inputs of each random "
                        "model (a multiple of 50)")
    args = parser.parse_args(argv)
    n_shapes, n_random = (200, 100) if args.quick else (1000, 500)
    from providers import SEED, cpu_model
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pp = Engine.load(SHAPES_MODEL).meta["preprocess"]
        cal = shapes.to_batch(shapes.make_dataset(args.samples, CALIBRATION_SEED)[0], pp=pp)
        images, labels = shapes.make_dataset(n_shapes, shapes.HELD_OUT_SEED)
        models["shapes (width 0.35, 64x64, 10 classes)"] = compare(
            SHAPES_MODEL, cal, shapes.to_batch(images, pp=pp), labels, tmp)
        cal = np.random.default_rng(CALIBRATION_SEED).standard_normal((args.random_samples, 3, 224, 224),
                                                                      dtype=np.float32)
        x = np.random.default_rng(SEED).standard_normal((n_random, 3, 224, 224), dtype=np.float32)
        for width in RANDOM_MODELS:
            path = Path(export_random(tmp / f"random-w{width}-224.npz", seed=SEED, width_mult=width, progress=False))
            models[f"random (width {width}, 224x224, 1000 classes)"] = compare(path, cal, x, None, tmp)
    for title, m in models.items():
        print_model(title, m)
    from int8_peers import QDQ_SETTINGS
    out = ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d_%H%M}_int8-accuracy.json"
    out.write_text(json.dumps({"cpu": cpu_model(), "threads": THREADS, "calibration_seed": CALIBRATION_SEED,
                               "random_seed": SEED, "reference": "mbv2-engine float32", "ort": QDQ_SETTINGS,
                               "models": models}, indent=1))
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
