"""Exporters: folding is exact, exported files reproduce the torch model, bad state dicts are refused."""
import numpy as np
import pytest
import torch
from torch import nn

from mbv2_engine import format as wformat
from mbv2_engine import reference
from mbv2_engine.errors import ModelFileNotFoundError, ModelFormatError, StateDictError
from mbv2_engine.export import (export_from_torch, export_random, fold_state_dict, random_model, to_arrays,
                                write_model)
from mbv2_engine.torch_model import MobileNetV2
from tolerances import assert_close

SIZE = (64, 64)


@pytest.fixture(scope="module")
def small():
    return random_model(seed=3, width_mult=0.35, num_classes=10, size=SIZE, progress=False)


@pytest.fixture(scope="module")
def full():
    return random_model(seed=4, width_mult=1.0, num_classes=1000, size=SIZE, progress=False)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).standard_normal((4, 3, *SIZE)).astype(np.float32)


def torch_logits(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("which", ["small", "full"])
def test_exported_file_reproduces_torch_model(request, tmp_path, batch, which):
    model = request.getfixturevalue(which)
    arrays, meta, arch = wformat.load(write_model(model, tmp_path / "m.npz", {"kind": "test"}))
    assert arch == model.arch and meta["padding"] == "torch"
    assert_close(reference.forward(arrays, arch, batch), torch_logits(model, batch), "export_f32")


def test_folding_is_exact_in_float64(small, batch):
    model = MobileNetV2(0.35, 10).double().eval()
    model.load_state_dict(small.state_dict())
    arrays = fold_state_dict(model.state_dict(), 0.35, dtype=np.float64)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch).double()).numpy()
    assert_close(reference.forward(arrays, model.arch, batch), expected, "fold_f64")


def test_same_padding_and_keras_eps_match_reference(small):
    """SAME padding is asymmetric on even sizes; odd and even sides both appear here."""
    model = MobileNetV2(0.35, 10, padding="same", eps=1e-3).double().eval()
    model.load_state_dict(small.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3, 65, 64))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    arrays = to_arrays(model, dtype=np.float64)
    assert_close(reference.forward(arrays, model.arch, x, padding="same"), expected, "fold_f64")


def test_calibrated_model_is_sane_and_clamps_bind(full, batch):
    pre = []
    hooks = [m.register_forward_pre_hook(lambda _, inp: pre.append((inp[0].min(), inp[0].max())))
             for m in full.modules() if isinstance(m, nn.ReLU6)]
    try:
        logits = torch_logits(full, batch)
    finally:
        for h in hooks:
            h.remove()
    assert np.isfinite(logits).all() and 0.1 < logits.std() < 100
    assert (logits.std(axis=1) > 0.1).all()  # classes differ within every image
    assert any(hi > 6 for _, hi in pre), "ReLU6's upper clamp never binds"
    assert all(lo < 0 for lo, _ in pre), "ReLU6's lower clamp should bind in every layer"


def test_random_model_is_deterministic_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = (random_model(s, 0.35, 10, SIZE, calib_batches=1, progress=False) for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.0.0.weight"], sc["features.0.0.weight"])


def test_export_random_writes_metadata_and_is_deterministic(tmp_path):
    kw = dict(seed=5, width_mult=0.35, size=(64, 48), num_classes=10, progress=False)
    first = wformat.load(export_random(tmp_path / "a.npz", **kw))
    second = wformat.load(export_random(tmp_path / "b.npz", **kw))
    assert first.meta == second.meta
    assert all(np.array_equal(first.arrays[k], second.arrays[k]) for k in first.arrays)
    assert first.meta["source"] == {"kind": "random", "seed": 5} and first.meta["input_size"] == [64, 48]
    assert first.meta["preprocess"] == wformat.TORCHVISION_PREPROCESS and first.meta["padding"] == "torch"


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"state_dict": sd, "epoch": 3}])
def test_export_from_pth(tmp_path, small, wrap):
    torch.save(wrap(small.state_dict()), tmp_path / "w.pth")
    labels = [f"c{i}" for i in range(10)]
    arrays, meta, arch = wformat.load(export_from_torch(tmp_path / "w.pth", tmp_path / "m.npz", 0.35, labels=labels))
    assert meta["source"] == {"kind": "torch", "file": "w.pth"} and meta["labels"] == labels
    assert arch.num_classes == 10  # taken from the classifier's rows
    expected = to_arrays(small)
    assert all(np.array_equal(arrays[k], expected[k]) for k in expected)


def test_export_from_module(tmp_path, small):
    arrays, meta, _ = wformat.load(export_from_torch(small, tmp_path / "m.npz", 0.35))
    assert meta["source"] == {"kind": "torch", "file": None}
    assert np.array_equal(arrays["head.weight"], to_arrays(small)["head.weight"])


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="nope.pth"):
        export_from_torch(tmp_path / "nope.pth", tmp_path / "m.npz")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "w.pth").write_text("not a checkpoint")
    with pytest.raises(ModelFormatError, match="w.pth is not a PyTorch checkpoint"):
        export_from_torch(tmp_path / "w.pth", tmp_path / "m.npz")


def test_checkpoint_without_state_dict(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "w.pth")
    with pytest.raises(ModelFormatError, match="expected a state dict .* got list"):
        export_from_torch(tmp_path / "w.pth", tmp_path / "m.npz")


def test_wrong_keys_are_listed(small):
    sd = dict(small.state_dict())
    del sd["features.3.conv.1.1.running_var"]
    sd["fc.weight"] = torch.zeros(1)
    with pytest.raises(StateDictError, match=r"1 missing keys \['features.3.conv.1.1.running_var'\], "
                                             r"1 unexpected keys \['fc.weight'\]"):
        fold_state_dict(sd, 0.35)


def test_data_parallel_prefix_gets_a_hint(small):
    sd = {"module." + k: v for k, v in small.state_dict().items()}
    with pytest.raises(StateDictError, match="strip that prefix"):
        fold_state_dict(sd, 0.35)


def test_wrong_width_names_key_shapes_and_the_width_that_fits(small):
    with pytest.raises(StateDictError, match=r"features.0.0.weight: expected shape \(32, 3, 3, 3\) "
                                             r"for width_mult=1.0, got \(16, 3, 3, 3\); the shapes fit "
                                             r"width_mult=0.35"):
        fold_state_dict(small.state_dict(), 1.0)


def test_wrong_class_count_is_a_shape_error(small):
    with pytest.raises(StateDictError, match=r"classifier.1.weight: expected shape \(1000, 1280\)"):
        fold_state_dict(small.state_dict(), 0.35, num_classes=1000)


def test_unwritable_destinations_are_input_errors_before_any_work(tmp_path):
    from mbv2_engine.errors import InputError

    with pytest.raises(InputError, match="it is a directory; give a file name"):
        export_random(tmp_path, progress=False)
    with pytest.raises(InputError, match="does not exist"):
        export_random(tmp_path / "missing" / "m.npz", progress=False)


def test_a_file_torch_load_cannot_read_is_a_format_error(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello world, not a checkpoint\n")
    with pytest.raises(ModelFormatError, match="is not a PyTorch checkpoint that torch.load"):
        export_from_torch(text, tmp_path / "m.npz")
