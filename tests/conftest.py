"""Shared fixtures: small random models (fast to run) and a sample picture."""
import numpy as np
import pytest

from mbv2_engine import Engine
from mbv2_engine import format as wformat
from mbv2_engine.export import export_random

SMALL = dict(width_mult=0.35, size=(64, 64), num_classes=10)


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory):
    return export_random(tmp_path_factory.mktemp("small") / "small.npz", seed=1, progress=False, **SMALL)


@pytest.fixture(scope="session")
def int8_model_path(small_model_path, tmp_path_factory):
    """The small model quantized (format version 3), calibrated on 16 random inputs."""
    from mbv2_engine.quantize import quantize

    x = np.random.default_rng(11).standard_normal((16, 3, *SMALL["size"]), dtype=np.float32)
    return quantize(small_model_path, tmp_path_factory.mktemp("int8") / "small-int8.npz", x, samples=16)


HEAD_HIDDEN = [{"units": 32, "activation": "relu"}, {"units": 12, "activation": "relu6"}]
HEAD_PADDING = ["same", [0, 1, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1], [0, 1, 1, 1]]


def with_head(path, out, activation, hidden=HEAD_HIDDEN, padding=HEAD_PADDING, seed=3):
    """The small model with format version 2's head (hidden Dense layers, an output activation) and
    per-conv padding rules; new random weights after the pool."""
    arrays, meta, _ = wformat.load(path)
    rng = np.random.default_rng(seed)
    arrays = {k: v for k, v in arrays.items() if not k.startswith("classifier.")}
    inputs = arrays["head.bias"].shape[0]
    for j, layer in enumerate(hidden):
        arrays[f"hidden.{j}.weight"] = rng.normal(0, 2 / np.sqrt(inputs), (layer["units"], inputs)).astype(np.float32)
        arrays[f"hidden.{j}.bias"] = rng.normal(0, 0.3, layer["units"]).astype(np.float32)
        inputs = layer["units"]
    k = meta["num_classes"]
    arrays["classifier.weight"] = rng.normal(0, 2 / np.sqrt(inputs), (k, inputs)).astype(np.float32)
    arrays["classifier.bias"] = rng.normal(0, 0.3, k).astype(np.float32)
    meta = {**meta, "version": wformat.FORMAT_VERSION, "hidden": hidden, "activation": activation, "padding": padding}
    return wformat.save(out, arrays, meta)


@pytest.fixture(scope="session")
def head_model_path(small_model_path, tmp_path_factory):
    """A version-2 model: two hidden layers, softmax output, fixed pads on the stride-2 convs."""
    return with_head(small_model_path, tmp_path_factory.mktemp("head") / "head.npz", "softmax")


@pytest.fixture(scope="session")
def sigmoid_model_path(small_model_path, tmp_path_factory):
    """As head_model_path, with a sigmoid per class after the classifier."""
    return with_head(small_model_path, tmp_path_factory.mktemp("sigmoid") / "sigmoid.npz", "sigmoid")


@pytest.fixture(scope="session")
def small_engine(small_model_path):
    return Engine.load(small_model_path, threads=1)


@pytest.fixture(scope="session")
def labelled_engine(small_model_path, tmp_path_factory):
    arrays, meta, _ = wformat.load(small_model_path)
    meta = {**meta, "labels": [f"thing-{i}" for i in range(meta["num_classes"])]}
    path = tmp_path_factory.mktemp("labelled") / "labelled.npz"
    wformat.save(path, arrays, meta)
    return Engine.load(path, threads=1)


@pytest.fixture(scope="session")
def sample_rgb():
    """A 90x120 picture with structure (gradients and a block), not noise."""
    y, x = np.mgrid[0:90, 0:120]
    img = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    img[30:60, 40:80] = (200, 30, 30)
    return img
