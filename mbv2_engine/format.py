"""Read and write the weight file, format version 1 (docs/format.md).

`load` is the one gate every weight file passes through: it refuses anything
the engine could misread, naming the culprit. `save` runs the same checks
before writing, so a file this module writes always loads. No torch here.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from .arch import MIN_INPUT, Arch, build_arch
from .errors import ModelFileNotFoundError, ModelFormatError, UnsupportedVersionError

FORMAT_NAME = "mbv2-engine-weights"
FORMAT_VERSION = 1
META_MEMBER = "__meta__"
# Limits of docs/format.md, exported so the C++ reader can be checked against them.
MAX_WIDTH_MULT = 4.0
MIN_CLASSES, MAX_CLASSES = 1, 100_000
MAX_INPUT = 4096
PADDINGS = ("torch", "same")
META_KEYS = ("format", "version", "width_mult", "num_classes", "input_size", "padding",
             "preprocess", "labels", "source")
PREPROCESS_KEYS = ("crop_fraction", "mean", "std")
DTYPE = np.dtype("<f4")
TORCHVISION_PREPROCESS = {"crop_fraction": 0.875, "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]}


class WeightFile(NamedTuple):
    """What `load` returns; unpacks as `arrays, meta, arch = load(path)`."""

    arrays: dict[str, np.ndarray]
    meta: dict
    arch: Arch


def expected_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """Every array member's name and shape, in network order: the single source of the layout."""
    shapes = {"stem.weight": (arch.stem, 3, 3, 3), "stem.bias": (arch.stem,)}
    for i, b in enumerate(arch.blocks):
        p = f"blocks.{i}."
        if b.has_expand:
            shapes[p + "expand.weight"] = (b.hidden, b.cin)
            shapes[p + "expand.bias"] = (b.hidden,)
        shapes[p + "depthwise.weight"] = (b.hidden, 3, 3)
        shapes[p + "depthwise.bias"] = (b.hidden,)
        shapes[p + "project.weight"] = (b.cout, b.hidden)
        shapes[p + "project.bias"] = (b.cout,)
    shapes["head.weight"] = (arch.last, arch.blocks[-1].cout)
    shapes["head.bias"] = (arch.last,)
    shapes["classifier.weight"] = (arch.num_classes, arch.last)
    shapes["classifier.bias"] = (arch.num_classes,)
    return shapes


# ---- metadata ---------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _numbers(v, n: int) -> bool:
    return isinstance(v, list) and len(v) == n and all(_is_number(x) for x in v)


def _differences(have, want, extra_word: str) -> str:
    """Empty when `have` holds exactly the names in `want`; otherwise every name missing and extra."""
    missing = [k for k in want if k not in have]
    extra = sorted(set(have) - set(want))
    return ", ".join([f"missing {missing}"] * bool(missing) + [f"{extra_word} {extra}"] * bool(extra))


def _check_keys(obj: dict, keys: tuple[str, ...], what: str) -> None:
    diff = _differences(obj, keys, "unknown")
    if diff:
        raise ModelFormatError(f"{what}: {diff} keys (format version {FORMAT_VERSION} has exactly {list(keys)})")


def check_version(meta) -> None:
    """Format name and version first: a newer file must say so, not fail on a new key."""
    if not isinstance(meta, dict):
        raise ModelFormatError(f"metadata must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"metadata 'format' is {meta.get('format')!r}, expected {FORMAT_NAME!r}: "
                               "not an mbv2-engine weight file")
    version = meta.get("version")
    if not _is_int(version) or version < 1:
        raise ModelFormatError(f"metadata 'version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"the file is weight format version {version}; this mbv2-engine reads version "
            f"{FORMAT_VERSION} only: upgrade mbv2-engine to load it")


def _meta_problem(meta: dict) -> str | None:
    """The first value of `meta` outside the limits of docs/format.md, described; None if all fit."""
    w, k, size, pre, labels = (meta[x] for x in ("width_mult", "num_classes", "input_size", "preprocess", "labels"))
    if not (_is_number(w) and 0 < w <= MAX_WIDTH_MULT):
        return f"'width_mult' must be a number in (0, {MAX_WIDTH_MULT}], got {w!r}"
    if not (_is_int(k) and MIN_CLASSES <= k <= MAX_CLASSES):
        return f"'num_classes' must be an integer in [{MIN_CLASSES}, {MAX_CLASSES}], got {k!r}"
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s) and MIN_INPUT <= s <= MAX_INPUT for s in size)):
        return f"'input_size' must be [H, W] with integers in [{MIN_INPUT}, {MAX_INPUT}], got {size!r}"
    if meta["padding"] not in PADDINGS:
        return f"'padding' must be one of {list(PADDINGS)}, got {meta['padding']!r}"
    if not isinstance(pre, dict):
        return f"'preprocess' must be an object, got {pre!r}"
    _check_keys(pre, PREPROCESS_KEYS, "metadata 'preprocess'")
    if not (_is_number(pre["crop_fraction"]) and 0 < pre["crop_fraction"] <= 1):
        return f"'preprocess.crop_fraction' must be a number in (0, 1], got {pre['crop_fraction']!r}"
    if not (_numbers(pre["mean"], 3) and _numbers(pre["std"], 3) and all(s > 0 for s in pre["std"])):
        return f"'preprocess' mean and std must be 3 numbers each, std > 0; got {pre['mean']!r}, {pre['std']!r}"
    if labels is not None and not (isinstance(labels, list) and len(labels) == k
                                   and all(isinstance(s, str) for s in labels)):
        return f"'labels' must be null or a list of num_classes = {k} strings"
    if not isinstance(meta["source"], dict):
        return f"'source' must be an object, got {meta['source']!r}"
    return None


def check_meta(meta) -> Arch:
    """Validate a metadata object completely; returns the architecture it describes."""
    check_version(meta)
    _check_keys(meta, META_KEYS, "metadata")
    problem = _meta_problem(meta)
    if problem:
        raise ModelFormatError(f"metadata {problem}")
    return build_arch(meta["width_mult"], meta["num_classes"])


# ---- arrays -----------------------------------------------------------------

def check_members(names, expected: dict) -> None:
    """The array members must be exactly the expected ones; name every difference."""
    diff = _differences(names, expected, "unexpected")
    if diff:
        raise ModelFormatError(f"wrong array members for this architecture: {diff}")


def check_header(name: str, dtype: np.dtype, shape: tuple, fortran: bool, expected: tuple) -> None:
    """dtype, order and shape of one member, checked from its header before its data is read."""
    if dtype.hasobject:
        raise ModelFormatError(f"member {name!r} is a pickled object array; weight files never hold pickles")
    if dtype != DTYPE:
        raise ModelFormatError(f"member {name!r} has dtype {dtype.str}, expected little-endian float32 (<f4)")
    if fortran:
        raise ModelFormatError(f"member {name!r} is stored in Fortran order, expected C order")
    if tuple(shape) != tuple(expected):
        raise ModelFormatError(f"member {name!r} has shape {tuple(shape)}, expected {tuple(expected)}")


def check_finite(name: str, a: np.ndarray) -> None:
    bad = a.size - int(np.isfinite(a).sum())
    if bad:
        raise ModelFormatError(f"member {name!r} has {bad} NaN or infinite values")


# ---- files ------------------------------------------------------------------

def _read_npy(zf: zipfile.ZipFile, member: str, expected: tuple | None) -> np.ndarray:
    """One .npy member; its header is checked against `expected` (None: the uint8 metadata)."""
    name = member[:-len(".npy")]
    try:
        with zf.open(member) as f:
            shape, fortran, dtype = _npy_header(f, name)
            if expected is None:
                if dtype != np.uint8 or len(shape) != 1:
                    raise ModelFormatError(f"member {name!r} must be a 1-D uint8 array, got {dtype} {shape}")
            else:
                check_header(name, dtype, shape, fortran, expected)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as e:
        raise ModelFormatError(f"member {name!r} is truncated or corrupt: {e}") from None


def _npy_header(f, name: str) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ModelFormatError(f"member {name!r} is .npy version {version}, expected 1.0 or 2.0")


def _read_meta(zf: zipfile.ZipFile) -> dict:
    if META_MEMBER + ".npy" not in zf.namelist():
        raise ModelFormatError(f"no {META_MEMBER!r} member: not an mbv2-engine weight file")
    raw = _read_npy(zf, META_MEMBER + ".npy", None).tobytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{META_MEMBER!r} is not UTF-8 JSON: {e}") from None


def _read(zf: zipfile.ZipFile) -> WeightFile:
    meta = _read_meta(zf)
    arch = check_meta(meta)
    expected = expected_shapes(arch)
    members = [m for m in zf.namelist() if m != META_MEMBER + ".npy"]
    check_members([m[:-len(".npy")] if m.endswith(".npy") else m for m in members], expected)
    arrays = {}
    for name, shape in expected.items():
        arrays[name] = _read_npy(zf, name + ".npy", shape)
        check_finite(name, arrays[name])
    return WeightFile(arrays, meta, arch)


def load(path) -> WeightFile:
    """Read and fully validate a weight file; returns (arrays, meta, arch)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileNotFoundError(f"weight file {path!r} does not exist")
    if not os.path.isfile(path):
        raise ModelFormatError(f"{path} is not a file; expected an mbv2-engine weight file (.npz)")
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise ModelFormatError(f"{path} is not a zip/npz archive; expected an mbv2-engine weight "
                                   "file written by `mbv2-engine export` (docs/format.md)")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf)
    except ModelFormatError as e:
        raise type(e)(f"{path}: {e}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as e:
        raise ModelFormatError(f"{path} is a truncated or corrupt zip archive: {e}") from None


def save(path, arrays: dict, meta: dict, compressed: bool = False):
    """Write a weight file; `format` and `version` are filled in. Refuses what `load` would refuse."""
    path = os.fspath(path)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta}
    arrays = {k: np.ascontiguousarray(v, dtype=DTYPE) for k, v in arrays.items()}
    try:
        expected = expected_shapes(check_meta(meta))
        check_members(list(arrays), expected)
        for name, shape in expected.items():
            check_header(name, arrays[name].dtype, arrays[name].shape, False, shape)
            check_finite(name, arrays[name])
    except ModelFormatError as e:
        raise type(e)(f"cannot save {path}: {e}") from None
    payload = {META_MEMBER: np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)}
    payload.update((name, arrays[name]) for name in expected)
    # An open file, because np.savez appends ".npz" to a name without it.
    with open(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **payload)
    return path
