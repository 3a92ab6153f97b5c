"""Weight files (format versions 1 to 3): round trips, and every refusal of docs/format.md with the culprit named."""
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mbv2_engine import format as wformat
from mbv2_engine.arch import build_arch, layer_shapes
from mbv2_engine.errors import ModelFileNotFoundError, ModelFormatError, UnsupportedVersionError

ARCH = build_arch(0.35, 10)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in wformat.expected_shapes(ARCH).items()}


@pytest.fixture
def meta():
    return {"format": wformat.FORMAT_NAME, "version": 2, "width_mult": 0.35, "num_classes": 10,
            "input_size": [64, 48], "padding": "torch", "preprocess": wformat.TORCHVISION_PREPROCESS,
            "labels": None, "hidden": [], "activation": "none", "source": {"kind": "test"}}


def write_raw(path, arrays, meta):
    """Write an archive without any checks; meta is a dict, raw bytes, or None to leave it out."""
    payload = dict(arrays)
    if meta is not None:
        raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        payload["__meta__"] = np.frombuffer(raw, np.uint8)
    np.savez(path, **payload)
    return path


def refused(path, cls, *fragments):
    with pytest.raises(cls) as info:
        wformat.load(path)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# ---- what loads -------------------------------------------------------------

@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip(tmp_path, arrays, meta, compressed):
    path = wformat.save(tmp_path / "m.npz", arrays, meta, compressed=compressed)
    loaded, meta2, arch = wformat.load(path)
    assert meta2 == {**meta, "quantization": None} and arch == ARCH  # version 2 read as version 3 says
    assert list(loaded) == list(wformat.expected_shapes(ARCH))
    for k, v in arrays.items():
        assert loaded[k].dtype == np.float32 and np.array_equal(loaded[k], v)


def test_save_fills_format_and_version_and_keeps_the_name(tmp_path, arrays, meta):
    del meta["format"], meta["version"]
    path = wformat.save(tmp_path / "weights.bin", arrays, meta)
    assert path.endswith("weights.bin")
    assert wformat.load(path).meta["version"] == wformat.FORMAT_VERSION


def test_expected_shapes_agree_with_layer_table():
    arch = build_arch(1.0, 1000)
    shapes = wformat.expected_shapes(arch)
    assert len(shapes) == 2 * (1 + 16 * 3 + 2 + 1 + 1)  # stem, blocks (block 0: no expand), head, FC
    assert shapes["blocks.1.expand.weight"] == (96, 16) and shapes["head.weight"] == (1280, 320)
    assert sum(int(np.prod(s)) for s in shapes.values()) == sum(L.params for L in layer_shapes(arch, 224, 224))


def test_save_refuses_what_load_would(tmp_path, arrays, meta):
    arrays["head.bias"] = arrays["head.bias"][:-1]
    with pytest.raises(ModelFormatError, match="cannot save .*'head.bias'"):
        wformat.save(tmp_path / "m.npz", arrays, meta)


# ---- the file itself --------------------------------------------------------

def test_missing_file(tmp_path):
    refused(tmp_path / "nope.npz", ModelFileNotFoundError, "nope.npz", "does not exist")


def test_directory(tmp_path):
    refused(tmp_path, ModelFormatError, "not a file")


@pytest.mark.parametrize("content", [b"hello, not a zip", np.zeros(4, np.float32)])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with open(path, "wb") as f:
            np.save(f, content)  # a bare .npy is not an archive either
    refused(path, ModelFormatError, "not a zip/npz archive")


def test_truncated_file(tmp_path, arrays, meta):
    path = wformat.save(tmp_path / "m.npz", arrays, meta)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) * 2 // 3])
    refused(path, ModelFormatError, "truncated or corrupt")


def _data_offset(path, member):
    """Where a stored member's bytes start: after its local header, name and extra field."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_len + extra_len


def test_corrupt_member(tmp_path, arrays, meta):
    path = wformat.save(tmp_path / "m.npz", arrays, meta)
    data = bytearray(Path(path).read_bytes())
    data[_data_offset(path, "head.weight.npy") + 1000] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    refused(path, ModelFormatError, "'head.weight.npy'", "CRC-32", "corrupt")


# ---- metadata ---------------------------------------------------------------

def test_missing_meta(tmp_path, arrays):
    refused(write_raw(tmp_path / "m.npz", arrays, None), ModelFormatError, "'__meta__'")


@pytest.mark.parametrize("raw, message", [(b"{not json", "not UTF-8 JSON"), (b"\xff\xfe", "not UTF-8 JSON"),
                                          (b"[1, 2]", "JSON object")])
def test_bad_meta_bytes(tmp_path, arrays, raw, message):
    refused(write_raw(tmp_path / "m.npz", arrays, raw), ModelFormatError, message)


def test_meta_not_uint8(tmp_path, arrays):
    np.savez(tmp_path / "m.npz", __meta__=np.zeros(3, np.float32), **arrays)
    refused(tmp_path / "m.npz", ModelFormatError, "'__meta__'", "uint8")


def test_wrong_format_name(tmp_path, arrays, meta):
    meta["format"] = "keras"
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "'keras'", "not an mbv2-engine")


def test_newer_version(tmp_path, arrays, meta):
    meta.update(version=4, new_key=True)  # a newer file may add keys: the version error comes first
    refused(write_raw(tmp_path / "m.npz", arrays, meta), UnsupportedVersionError,
            "version 4", "reads versions 1 to 3", "upgrade mbv2-engine")


def test_version_1_loads_with_version_2s_defaults(tmp_path, arrays, meta):
    del meta["hidden"], meta["activation"]
    meta["version"] = 1
    loaded = wformat.load(write_raw(tmp_path / "m.npz", arrays, meta))
    assert loaded.meta == {**meta, "hidden": [], "activation": "none", "quantization": None}


def test_version_2_keys_are_refused_in_version_1(tmp_path, arrays, meta):
    meta["version"] = 1
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "unknown ['activation', 'hidden'] keys (format version 1 has exactly")


def v2_head_arrays(arrays, units=(12, 7)):
    """`arrays` with hidden layers of these units before the classifier (random weights)."""
    rng = np.random.default_rng(1)
    shapes = wformat.expected_shapes(ARCH, [{"units": u, "activation": "relu"} for u in units])
    return {k: arrays[k] if k in arrays and arrays[k].shape == s else rng.standard_normal(s).astype(np.float32)
            for k, s in shapes.items()}


def test_round_trip_version_2_head_and_padding(tmp_path, arrays, meta):
    meta.update(hidden=[{"units": 12, "activation": "relu"}, {"units": 7, "activation": "relu6"}],
                activation="softmax", padding=["same", [0, 1, 0, 1], [1, 1, 1, 1], [0, 0, 1, 0], "same"])
    path = wformat.save(tmp_path / "m.npz", v2_head_arrays(arrays), meta)
    loaded, meta2, _ = wformat.load(path)
    assert meta2 == {**meta, "quantization": None}
    assert loaded["hidden.1.weight"].shape == (7, 12) and loaded["classifier.weight"].shape == (10, 7)


@pytest.mark.parametrize("change, fragment", [
    ({"padding": ["same"] * 4}, "or a list of 5 rules"),
    ({"padding": ["same", [0, 1, 0, 2], "same", "same", "same"]}, "of 0 or 1, got"),
    ({"padding": ["same", [0, 1, 0], "same", "same", "same"]}, "of 0 or 1, got"),
    ({"hidden": [{"units": 0, "activation": "relu"}]}, "'hidden[0]' 'units' must be an integer in [1, 4096]"),
    ({"hidden": [{"units": 5, "activation": "gelu"}]}, "'activation' must be one of ['relu', 'relu6', 'none']"),
    ({"hidden": [{"units": 5}]}, "missing ['activation'] keys"),
    ({"hidden": {"units": 5}}, "'hidden' must be a list of at most 8 layers"),
    ({"activation": "tanh"}, "'activation' must be one of ['none', 'softmax', 'sigmoid'], got 'tanh'"),
])
def test_bad_version_2_keys(tmp_path, arrays, meta, change, fragment):
    meta.update(change)
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, fragment)


def test_hidden_members_must_match_the_metadata(tmp_path, arrays, meta):
    meta["hidden"] = [{"units": 12, "activation": "relu"}]
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "missing ['hidden.0.weight', 'hidden.0.bias']")


@pytest.mark.parametrize("version", [0, "1", 1.0, True, None])
def test_bad_version(tmp_path, arrays, meta, version):
    meta["version"] = version
    path = write_raw(tmp_path / "m.npz", arrays, meta)
    with pytest.raises(ModelFormatError, match="'version' must be a positive integer") as info:
        wformat.load(path)
    assert not isinstance(info.value, UnsupportedVersionError)


def test_unknown_meta_key(tmp_path, arrays, meta):
    meta["colour"] = "blue"
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "unknown ['colour'] keys")


def test_missing_meta_key(tmp_path, arrays, meta):
    del meta["labels"]
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "missing ['labels'] keys")


@pytest.mark.parametrize("key, value, message", [
    ("width_mult", 0, "'width_mult'"),
    ("width_mult", 4.5, "'width_mult'"),
    ("width_mult", "0.35", "'width_mult'"),
    ("num_classes", 0, "'num_classes'"),
    ("num_classes", wformat.MAX_CLASSES + 1, "'num_classes'"),
    ("num_classes", 10.0, "'num_classes'"),
    ("input_size", [16, 64], "'input_size'"),
    ("input_size", [64, wformat.MAX_INPUT + 1], "'input_size'"),
    ("input_size", [64], "'input_size'"),
    ("padding", "valid", "'padding'"),
    ("preprocess", [0.875], "'preprocess'"),
    ("preprocess", {"crop_fraction": 0.875, "mean": [0, 0, 0]}, "missing ['std'] keys"),
    ("preprocess", {"crop_fraction": 1.5, "mean": [0, 0, 0], "std": [1, 1, 1]}, "'preprocess.crop_fraction'"),
    ("preprocess", {"crop_fraction": 1, "mean": [0, 0], "std": [1, 1, 1]}, "mean and std"),
    ("preprocess", {"crop_fraction": 1, "mean": [0, 0, 0], "std": [1, 0, 1]}, "every std in [0.001, 1000.0]"),
    ("preprocess", {"crop_fraction": 1, "mean": [0, 0, 0], "std": [1, 1e39, 1]}, "every std in [0.001, 1000.0]"),
    ("preprocess", {"crop_fraction": 1, "mean": [0, 0, 0], "std": [1, 1e-40, 1]}, "every std in [0.001, 1000.0]"),
    ("preprocess", {"crop_fraction": 1, "mean": [0, -1e4, 0], "std": [1, 1, 1]}, "every mean in [-1000.0, 1000.0]"),
    ("preprocess", {"crop_fraction": 0.01, "mean": [0, 0, 0], "std": [1, 1, 1]}, "must be a number in [0.05, 1]"),
    ("labels", ["a", "b"], "'labels'"),
    ("labels", list(range(10)), "'labels'"),
    ("source", "somewhere", "'source'"),
])
def test_bad_meta_value(tmp_path, arrays, meta, key, value, message):
    meta[key] = value
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, message)


# ---- arrays -----------------------------------------------------------------

def test_missing_arrays_are_all_named(tmp_path, arrays, meta):
    del arrays["stem.bias"], arrays["blocks.3.expand.weight"]
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "missing ['stem.bias', 'blocks.3.expand.weight']")


def test_extra_arrays_are_all_named(tmp_path, arrays, meta):
    arrays.update({"blocks.0.expand.weight": np.zeros((16, 16), np.float32), "zz": np.zeros(1, np.float32)})
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "unexpected ['blocks.0.expand.weight', 'zz']")


@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<f2", "<i4"])
def test_wrong_dtype(tmp_path, arrays, meta, dtype):
    arrays["head.bias"] = arrays["head.bias"].astype(dtype)
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "'head.bias'", dtype)


def test_wrong_shape(tmp_path, arrays, meta):
    arrays["blocks.2.depthwise.weight"] = arrays["blocks.2.depthwise.weight"].reshape(-1, 9)
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "'blocks.2.depthwise.weight'", "shape (48, 9), expected (48, 3, 3)")


def test_fortran_order(tmp_path, arrays, meta):
    arrays["classifier.weight"] = np.asfortranarray(arrays["classifier.weight"])
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "'classifier.weight'", "Fortran")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_counted(tmp_path, arrays, meta, bad):
    arrays["classifier.bias"][[1, 4, 7]] = bad
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError,
            "'classifier.bias'", "3 NaN or infinite")


def test_pickled_object_array_is_refused(tmp_path, arrays, meta):
    arrays["stem.bias"] = np.array([{"evil": 1}] * 16, dtype=object)
    refused(write_raw(tmp_path / "m.npz", arrays, meta), ModelFormatError, "'stem.bias'", "pickled")


def test_a_message_lists_ten_names_at_most(tmp_path, arrays, meta):
    """100,000 stray members once made a 989 KB message: ten are named, then how many more."""
    stray = {f"stray.{i:03d}": np.zeros(1, np.float32) for i in range(50)}
    with pytest.raises(ModelFormatError) as info:
        wformat.load(write_raw(tmp_path / "m.npz", {**arrays, **stray}, meta))
    message = str(info.value)
    assert "unexpected ['stray.000', 'stray.001'," in message and "'stray.009'] and 40 more" in message
    assert len(message) < 500
