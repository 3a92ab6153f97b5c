"""Seed corpora for the fuzz targets: small valid files of every kind the targets read.

    python tests/fuzz/make_seeds.py OUT      writes OUT/reader/, OUT/capi/ and OUT/python/

Run with the installed package (it writes a weight file, an ONNX and a .tflite model and a
Keras file of one small random MobileNetV2), from the repository root.
"""
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "cpp"), str(ROOT / "bench")]


def main(out: Path) -> int:
    import make_fixtures
    import numpy as np
    import torch
    from tflite_writer import tflite_model

    from mbv2_engine.arch import build_arch
    from mbv2_engine.export import random_model, to_arrays, write_model

    for name in ("reader", "capi", "python"):
        (out / name).mkdir(parents=True, exist_ok=True)
    fixtures = out / "fixtures"
    fixtures.mkdir(exist_ok=True)
    make_fixtures.write_corrupt(fixtures)
    small = [fixtures / n for n in ("base.npz", "base_compressed.npz", "v2_base.npz", "v3_base.npz")]
    model = random_model(0, 0.35, 2, (32, 32), calib_batches=1, progress=False)
    valid = write_model(model, out / "valid.npz", {"kind": "fuzz seed"}, size=(32, 32))
    for path in small:
        (out / "reader" / path.name).write_bytes(path.read_bytes())
    for path in small + [Path(valid), fixtures / "v3_int8_0.35.npz"]:
        (out / "capi" / path.name).write_bytes(path.read_bytes())
    seeds = {0: Path(valid).read_bytes()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 32, 32), str(out / "m.onnx"), dynamo=False, opset_version=13)
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=2).save(
            out / "m.keras")
    seeds[1] = (out / "m.onnx").read_bytes()
    seeds[2] = tflite_model(to_arrays(model), build_arch(0.35, 2), 1, 32, 32)
    seeds[3] = (out / "m.keras").read_bytes()
    for kind, data in seeds.items():
        (out / "python" / f"seed{kind}").write_bytes(bytes([kind]) + data)
    print(f"seeds in {out}: reader {len(small)}, capi {len(small) + 1}, python {len(seeds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
