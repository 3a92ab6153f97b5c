"""atheris target for the Python front doors (issue 18): the first byte picks one, the rest is the file.

    0: a weight file (format.loads, then Engine.load and a run when it loads)
    1: an ONNX model (importers.onnx), 2: a .tflite (importers.tflite), 3: a Keras file (importers.keras)

A refusal is an Mbv2Error (ModelImportError, ModelFormatError, InputError, ...); any other
exception is a defect, and atheris stops with the input that raised it.

    python tests/fuzz/fuzz_python.py CORPUS SEEDS -runs=N    (libFuzzer's flags)
"""
import contextlib
import os
import sys
import tempfile
import warnings

try:
    import atheris
except ImportError:  # tests/test_fuzz_regressions.py replays inputs without it
    atheris = None

with atheris.instrument_imports() if atheris else contextlib.nullcontext():
    import numpy as np

    from mbv2_engine import Engine, Mbv2Error
    from mbv2_engine import format as wformat
    from mbv2_engine.importers.keras import import_keras
    from mbv2_engine.importers.onnx import import_onnx
    from mbv2_engine.importers.tflite import import_tflite

FOLDER = tempfile.mkdtemp(prefix="mbv2-fuzz-")
SUFFIXES = (".npz", ".onnx", ".tflite", ".keras")


def weight_file(path: str, data: bytes) -> None:
    wformat.loads(data)
    engine = Engine.load(path, threads=1, isa="ref")
    engine.run(np.zeros((1, 3, 32, 32), np.float32))


IMPORTERS = (weight_file, lambda path, data: import_onnx(path), lambda path, data: import_tflite(path),
             lambda path, data: import_keras(path))


def test_one_input(raw: bytes) -> None:
    if not raw:
        return
    kind, data = raw[0] % len(IMPORTERS), raw[1:]
    path = os.path.join(FOLDER, "input" + SUFFIXES[kind])
    with open(path, "wb") as f:
        f.write(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # third-party parsers' deprecation chatter is not a finding
            IMPORTERS[kind](path, data)
    except Mbv2Error:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
