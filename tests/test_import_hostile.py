"""Hostile files for the importers (issue 18, item 1): truncated files, a graph with a cycle or a
missing input, tensors whose declared sizes exceed the file, and a model of another architecture.
Each must be a clear ModelImportError (a ModelFormatError) naming what does not fit: never another
exception, never a hang, and nothing written."""
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mbv2_engine.arch import build_arch
from mbv2_engine.export import random_model, to_arrays
from mbv2_engine.importers import ModelImportError

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # as bench/providers.py imports it
from tflite_writer import tflite_model  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return random_model(2, 0.35, 10, (64, 64), calib_batches=1, progress=False)


def truncated(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out = path.with_name("truncated-" + path.name)
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


def export_onnx(model, path):
    with warnings.catch_warnings():  # torch's TorchScript exporter warns about its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(path), dynamo=False, opset_version=13)
    return path


# ---- TFLite -----------------------------------------------------------------------------------

def test_truncated_tflite(small, tmp_path):
    from mbv2_engine.importers.tflite import import_tflite

    path = tmp_path / "m.tflite"
    path.write_bytes(tflite_model(to_arrays(small), build_arch(0.35, 10), 1, 64, 64))
    for fraction in (0.5, 0.95, 0.001):
        with pytest.raises(ModelImportError, match="truncated-m.tflite"):
            import_tflite(truncated(path, fraction))


def test_tflite_buffer_past_the_file(small, tmp_path):
    """A weight tensor whose buffer offset (flatbuffers stores it as data) points past the end."""
    from mbv2_engine.importers.tflite import import_tflite

    data = bytearray(tflite_model(to_arrays(small), build_arch(0.35, 10), 1, 64, 64))
    # Overwrite the largest run of float weights' length prefix region with huge values: the vector
    # lengths flatbuffers reads then exceed the file.
    for offset in range(1000, len(data) - 4, 4096):
        data[offset:offset + 4] = (0x7FFFFFF0).to_bytes(4, "little")
    path = tmp_path / "lying.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelImportError, match="lying.tflite"):
        import_tflite(path)


# ---- ONNX -------------------------------------------------------------------------------------

def test_truncated_onnx(small, tmp_path):
    from mbv2_engine.importers.onnx import import_onnx

    path = export_onnx(small, tmp_path / "m.onnx")
    with pytest.raises(ModelImportError, match="is not an ONNX model that onnx.load reads"):
        import_onnx(truncated(path))


def test_onnx_cycle_is_refused_not_followed_forever(small, tmp_path):
    from mbv2_engine.importers.onnx import import_onnx

    model = onnx.load(export_onnx(small, tmp_path / "m.onnx"))
    graph = model.graph
    # The first Clip reads its own output: a cycle a walk from the input would never leave.
    clip = next(n for n in graph.node if n.op_type == "Clip")
    clip.input[0] = clip.output[0]
    path = tmp_path / "cycle.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelImportError, match="the graph stops at tensor .*: expected Clip for the stem.s ReLU6"):
        import_onnx(path)


def test_onnx_missing_input(small, tmp_path):
    from mbv2_engine.importers.onnx import import_onnx

    model = onnx.load(export_onnx(small, tmp_path / "m.onnx"))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.input[1] = "a_weight_nobody_defines"
    path = tmp_path / "missing.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelImportError, match="a_weight_nobody_defines"):
        import_onnx(path)


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_onnx_of_another_architecture(tmp_path):
    from mbv2_engine.importers.onnx import import_onnx

    path = export_onnx(TinyCnn().eval(), tmp_path / "tiny.onnx")
    with pytest.raises(ModelImportError) as info:
        import_onnx(path)
    assert "Relu" in str(info.value) or "channels" in str(info.value) or "MobileNetV2" in str(info.value)


# ---- Keras ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend in this process")
    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=4)
    out = tmp_path_factory.mktemp("keras")
    with warnings.catch_warnings():  # Keras warns that .h5 is its legacy format, and numpy 2 about __array__
        warnings.simplefilter("ignore")
        model.save(out / "m.keras")
        model.save(out / "m.h5")
    return out / "m.keras", out / "m.h5"


@pytest.mark.parametrize("kind", [0, 1], ids=["keras", "h5"])
def test_truncated_keras(keras_files, kind):
    from mbv2_engine.importers.keras import import_keras

    with pytest.raises(ModelImportError, match="truncated-m"):
        import_keras(truncated(keras_files[kind]))


def test_keras_config_that_is_not_json(keras_files, tmp_path):
    import zipfile

    from mbv2_engine.importers.keras import import_keras

    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(keras_files[0]) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"{not json" if item.filename == "config.json" else src.read(item))
    with pytest.raises(ModelImportError, match="broken.keras cannot be read as a Keras model"):
        import_keras(broken)
