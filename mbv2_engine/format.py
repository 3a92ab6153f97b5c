"""Write weight files, format version 3 (docs/format.md); read them (versions 1 to 3) through the core.

Reading is the C++ reader's job (csrc/io, bound as `_core.read_weight_file`),
the same code the C API uses, so both front doors accept and refuse exactly
the same files. `save` writes with numpy and reads its own bytes back through
that reader before writing them out, so a file this module writes always loads.
No torch here.
"""
from __future__ import annotations

import io
import json
import os
from typing import NamedTuple

import numpy as np

from . import _core
from .arch import Arch, build_arch, hidden_tuples
from .errors import InputError, Mbv2Error, ModelFormatError

FORMAT_NAME = _core.FORMAT_NAME
FORMAT_VERSION = _core.FORMAT_VERSION
# Limits of docs/format.md, as the reader enforces them.
MAX_WIDTH_MULT = _core.MAX_WIDTH_MULT
MIN_CLASSES, MAX_CLASSES = _core.MIN_CLASSES, _core.MAX_CLASSES
MAX_INPUT = _core.MAX_INPUT
META_MEMBER = "__meta__"
DTYPE = np.dtype("<f4")
TORCHVISION_PREPROCESS = {"crop_fraction": 0.875, "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]}


class WeightFile(NamedTuple):
    """What `load` returns; unpacks as `arrays, meta, arch = load(path)`."""

    arrays: dict[str, np.ndarray]
    meta: dict
    arch: Arch


def expected_shapes(arch: Arch, hidden=()) -> dict[str, tuple[int, ...]]:
    """Every array member's name and shape, in network order (csrc/core/network.cc, member_shapes);
    `hidden` is the metadata's list of hidden Dense layers."""
    return dict(_core.member_shapes(*arch.core_spec(), hidden_tuples(hidden)))


def _weight_file(meta: dict, arrays: dict) -> WeightFile:
    return WeightFile(arrays, meta, build_arch(meta["width_mult"], meta["num_classes"]))


def load(path) -> WeightFile:
    """Read and fully validate a weight file; returns (arrays, meta, arch). Arrays are not copied."""
    return _weight_file(*_core.read_weight_file(os.fspath(path)))


def loads(data: bytes) -> WeightFile:
    """`load` for a weight file held in memory."""
    return _weight_file(*_core.read_weight_file_bytes(data))


def check_destination(path) -> None:
    """InputError unless a file can be written at `path`: its folder exists and it is not a folder itself."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"cannot write the weight file to {path!r}: it is a directory; give a file name")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write the weight file to {path!r}: the directory {folder!r} does not exist")


def save(path, arrays: dict, meta: dict, compressed: bool = False) -> str:
    """Write a weight file; `format` and `version` are filled in. Refuses what `load` would refuse."""
    path = os.fspath(path)
    check_destination(path)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta}
    if meta["version"] == FORMAT_VERSION:  # a plain float MobileNetV2 unless the caller says otherwise
        meta = {"hidden": [], "activation": "none", "quantization": None, **meta}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ModelFormatError(f"cannot save {path}: the metadata is not plain JSON: {e}") from None
    payload = {META_MEMBER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    # An int8 network's int8 weights stay int8; everything else is float32.
    payload.update((name, np.ascontiguousarray(a, dtype=np.int8 if np.asarray(a).dtype == np.int8 else DTYPE))
                   for name, a in arrays.items())
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **payload)
    data = buffer.getvalue()
    try:
        loads(data)
    except Mbv2Error as e:
        raise type(e)(f"cannot save {path}: {e}") from None
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise InputError(f"cannot write the weight file to {path!r}: {e.strerror or e}") from None
    return path
