"""The trained model that ships with the package, its data, its training script, and the demo.

The shipped mbv2_engine/data/shapes.npz must classify held-out drawn shapes
(a seed the training never used) at 95% or better through the engine at its
best ISA and through PyTorch with the same weights, with identical
predictions; the training script must be reproducible; `run_demo` must run
end to end and fail when a model does not measure up.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mbv2_engine import Engine, shapes
from mbv2_engine.demo import MIN_ACCURACY, SHAPES_MODEL, run_demo, shapes_demo, torch_model_from_file
from mbv2_engine.export import random_model, write_model
from mbv2_engine.tolerances import violations

HELD_OUT = 300
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_shapes.py"


@pytest.fixture(scope="module")
def train_script():
    spec = importlib.util.spec_from_file_location("train_shapes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def held_out():
    images, labels = shapes.make_dataset(HELD_OUT, shapes.HELD_OUT_SEED)
    return images, labels, shapes.to_batch(images)


@pytest.fixture
def torch_state():
    """Training sets torch's global seed, thread count and determinism: give the other tests theirs back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_shipped_model_metadata():
    engine = Engine.load(SHAPES_MODEL, threads=1)
    assert engine.labels == list(shapes.CLASSES)
    assert engine.input_size == (shapes.SIZE, shapes.SIZE) and engine.meta["width_mult"] == 0.35
    assert SHAPES_MODEL.stat().st_size < 4 * 2 ** 20


def test_shipped_model_accuracy_engine_and_torch(held_out):
    images, labels, x = held_out
    engine = Engine.load(SHAPES_MODEL, threads=1)  # isa "auto": the best this CPU has
    # The batch is what the engine makes of each picture itself.
    assert np.array_equal(x[:3], np.concatenate([engine.preprocess(img) for img in images[:3]]))
    ours = engine.run(x)
    with torch.inference_mode():
        ref = torch_model_from_file(SHAPES_MODEL)(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    assert not violations(ours, ref, "network_f32_vs_torch").any()
    for logits in (ours, ref):
        accuracy = (logits.argmax(1) == labels).mean()
        assert accuracy >= MIN_ACCURACY, f"held-out accuracy {accuracy:.1%}"
    assert np.bincount(ours.argmax(1), minlength=10).min() > 0  # every class is predicted somewhere


def test_torch_model_from_file_computes_the_exported_model(tmp_path):
    model = random_model(seed=3, width_mult=0.35, num_classes=10, size=(64, 64), progress=False)
    path = write_model(model, tmp_path / "r.npz", source={"kind": "random", "seed": 3})
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref, rebuilt = model(x).numpy(), torch_model_from_file(path)(x).numpy()
    assert not violations(rebuilt, ref, "export_f32").any()


def test_dataset_is_deterministic_and_balanced():
    a, la = shapes.make_dataset(30, 7)
    b, lb = shapes.make_dataset(30, 7)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    c, _ = shapes.make_dataset(12, 7)
    assert np.array_equal(c, a[:12])  # picture i depends on (seed, i) alone
    d, _ = shapes.make_dataset(30, 8)
    assert not np.array_equal(a, d)
    assert a.shape == (30, 64, 64, 3) and a.dtype == np.uint8
    assert np.bincount(la).tolist() == [3] * 10
    assert shapes.HELD_OUT_SEED != shapes.TRAIN_SEED


def test_training_is_reproducible(train_script, torch_state):
    kw = dict(n_train=96, epochs=1, batch=32, max_steps=3, threads=1, progress=False)
    a = train_script.train(seed=5, **kw).state_dict()
    b = train_script.train(seed=5, **kw).state_dict()
    c = train_script.train(seed=6, **kw).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_shipped_model_records_the_script_defaults(train_script):
    src = Engine.load(SHAPES_MODEL, threads=1).meta["source"]
    assert src["kind"] == "trained" and src["script"] == "examples/train_shapes.py"
    assert src["data_seed"] == shapes.TRAIN_SEED
    assert {k: src[k] for k in train_script.DEFAULTS} == train_script.DEFAULTS


def test_shapes_demo_fails_for_an_untrained_model(tmp_path, capsys):
    model = random_model(seed=4, width_mult=0.35, num_classes=10, size=(64, 64), progress=False)
    path = write_model(model, tmp_path / "untrained.npz", source={"kind": "random", "seed": 4},
                       labels=list(shapes.CLASSES), size=(64, 64))
    assert not shapes_demo(tmp_path, torch, n=40, repeat=1, threads=1, model_path=path)
    assert "FAILED" in capsys.readouterr().out


def test_run_demo_end_to_end(tmp_path, capsys):
    assert run_demo(tmp_path, repeat=2, threads=1, held_out=100) == 0
    out = capsys.readouterr().out
    assert "demo passed" in out and "predictions identical: 100/100" in out
    assert out.count("PyTorch eager") >= 2 and "[5/5]" in out
    saved = sorted((tmp_path / "shapes").glob("[0-9]*_*.png"))
    assert len(saved) == 10 and (tmp_path / "shapes" / "predictions.png").is_file()
    assert (tmp_path / "mbv2_random.npz").is_file() and (tmp_path / "sample.png").is_file()
    # A saved picture is named by the class the engine gives it, read back from the file.
    engine = Engine.load(SHAPES_MODEL, threads=1)
    for path in saved:
        assert engine.classify(path, top_k=1)[0].label == path.stem.split("_", 1)[1]
