"""int8 accuracy side by side (issue 14, item 4): the engine's int8 against ONNX Runtime's int8 on the
same model and the same calibration inputs, both judged against the float32 engine.

    python bench/int8_accuracy.py            # the shipped shapes model, 1000 held-out pictures
    python bench/int8_accuracy.py --quick    # 200 pictures

The trained model is mbv2_engine/data/shapes.npz (ten classes of drawn shapes,
examples/train_shapes.py); its calibration pictures are drawn from a seed that
neither training nor the held-out set uses. The engine quantizes with
`mbv2_engine.quantize` (its default method); ONNX Runtime's model is
`quantize_static` QDQ, per channel, S8S8 (bench/int8_peers.py's settings) from
the ONNX export of the same folded weights. Prints accuracy, top-1 agreement
with float32 and the logit error for each, and saves the table as JSON under
bench/results/.
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
from mbv2_engine.quantize import quantize  # noqa: E402

CALIBRATION_SEED = 77  # neither shapes.TRAIN_SEED nor shapes.HELD_OUT_SEED
BATCH = 50  # the ONNX export's fixed batch: calibration and evaluation go in batches of it


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
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: np.concatenate([session.run(["logits"], {"x": x[i:i + BATCH]})[0]
                                     for i in range(0, len(x), BATCH)])


def scores(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    err = np.abs(logits - reference)
    return {"accuracy": float((logits.argmax(1) == labels).mean()),
            "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
            "max_logit_error": float(err.max()), "mean_logit_error": float(err.mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 held-out pictures instead of 1000")
    parser.add_argument("--samples", type=int, default=250, help="calibration pictures (a multiple of 50)")
    args = parser.parse_args(argv)
    n = 200 if args.quick else 1000
    pp = Engine.load(SHAPES_MODEL).meta["preprocess"]
    cal = shapes.to_batch(shapes.make_dataset(args.samples, CALIBRATION_SEED)[0], pp=pp)
    images, labels = shapes.make_dataset(n, shapes.HELD_OUT_SEED)
    x = shapes.to_batch(images, pp=pp)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        int8 = quantize(SHAPES_MODEL, tmp / "shapes-int8.npz", cal, samples=args.samples)
        onnx = onnx_export(SHAPES_MODEL, tmp / "shapes.onnx", x[:BATCH])
        from int8_peers import QDQ_SETTINGS, qdq_file
        workload = SimpleNamespace(case=SimpleNamespace(batch=BATCH), calibration=cal, dir=tmp)
        qdq = qdq_file(workload, lambda w: onnx)
        float32 = Engine.load(SHAPES_MODEL, threads=2).run(x)
        rows = {"mbv2-engine float32": float32,
                "mbv2-engine int8": Engine.load(int8, threads=2).run(x),
                "onnxruntime float32": ort_runner(onnx)(x),
                "onnxruntime int8 (QDQ)": ort_runner(qdq)(x)}
    table = {name: scores(logits, float32, labels) for name, logits in rows.items()}
    print(f"shapes model (width 0.35, 64x64, 10 classes), {n} held-out pictures, calibration {args.samples}; "
          f"errors against the engine's float32")
    print(f"{'':<26}{'accuracy':>9}{'top-1 = f32':>12}{'max err':>9}{'mean err':>10}")
    for name, s in table.items():
        print(f"{name:<26}{100 * s['accuracy']:>8.1f}%{100 * s['top1_agreement']:>11.1f}%"
              f"{s['max_logit_error']:>9.3f}{s['mean_logit_error']:>10.4f}")
    out = ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d_%H%M}_int8-accuracy.json"
    out.write_text(json.dumps({"held_out": n, "calibration": args.samples, "ort": QDQ_SETTINGS,
                               "rows": table}, indent=1))
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
