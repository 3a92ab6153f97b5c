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
