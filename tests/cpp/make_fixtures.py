"""Write the weight files the reader tests load, with the verdict expected for each.

    python make_fixtures.py OUT_DIR

writes OUT_DIR/*.npz and OUT_DIR/manifest.json. From an import:

    write_fixtures(out) -> {file name: verdict}   everything, manifest included
    write_corrupt(out)  -> {file name: verdict}   the small valid and hostile files only
    write_sparse(path)  -> verdict                a sparse 3 GiB file (not written by the above)

A verdict is the reader's mbv2::status_string: "ok", "invalid format",
"unsupported version". The manifest holds the same table under "expected",
plus what the C++ side compares the valid files against: the architecture of
every width and make_divisible samples (from this file's own copy of the
paper's table, not mbv2_engine's), and a few values of every array.

Valid files are written by numpy itself (np.savez, np.savez_compressed) from
the layout of docs/format.md; each hostile one breaks one rule, most by
patching the bytes of a valid archive.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

OK, FORMAT, VERSION = "ok", "invalid format", "unsupported version"

# ---- the network, written out again (docs/format.md; paper, table 2) --------------------

ROWS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's rounding: nearest multiple of 8, at least 8, never below 90% of v."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def arch(width: float) -> dict:
    """stem, last and every block as [cin, t, cout, stride]."""
    blocks, cin = [], make_divisible(32 * width)
    for t, c, n, s in ROWS:
        cout = make_divisible(c * width)
        for i in range(n):
            blocks.append([cin, t, cout, s if i == 0 else 1])
            cin = cout
    return {"stem": make_divisible(32 * width), "last": make_divisible(1280 * max(1.0, width)), "blocks": blocks}


def shapes(width: float, classes: int, head_units=()) -> dict[str, tuple[int, ...]]:
    """docs/format.md's member table; `head_units` lists the hidden Dense layers' units (version 2)."""
    a = arch(width)
    out = {"stem.weight": (a["stem"], 3, 3, 3), "stem.bias": (a["stem"],)}
    for i, (cin, t, cout, _) in enumerate(a["blocks"]):
        hidden = cin * t
        if t != 1:
            out[f"blocks.{i}.expand.weight"] = (hidden, cin)
            out[f"blocks.{i}.expand.bias"] = (hidden,)
        out[f"blocks.{i}.depthwise.weight"] = (hidden, 3, 3)
        out[f"blocks.{i}.depthwise.bias"] = (hidden,)
        out[f"blocks.{i}.project.weight"] = (cout, hidden)
        out[f"blocks.{i}.project.bias"] = (cout,)
    out["head.weight"] = (a["last"], a["blocks"][-1][2])
    out["head.bias"] = (a["last"],)
    inputs = a["last"]
    for j, units in enumerate(head_units):
        out[f"hidden.{j}.weight"] = (units, inputs)
        out[f"hidden.{j}.bias"] = (units,)
        inputs = units
    out["classifier.weight"] = (classes, inputs)
    out["classifier.bias"] = (classes,)
    return out


# ---- writing archives ----------------------------------------------------------------------

WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
# Every channel count rounds up to 8 at this width: a 130 KB file, so the hostile
# variants and the byte-flipping test in test_npz_reader.cc are cheap.
BASE_WIDTH, BASE_CLASSES = 0.01, 3


def meta_for(width: float, classes: int, labels: bool = False) -> dict:
    return {"format": "mbv2-engine-weights", "version": 1, "width_mult": width, "num_classes": classes,
            "input_size": [224, 192], "padding": "same",
            "preprocess": {"crop_fraction": 0.875, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "labels": [f"class {k}" for k in range(classes)] if labels else None,
            "source": {"kind": "random", "seed": 7}}


# Version 2: a Keras-style head (two hidden layers, softmax) and fixed pads on the stride-2 convs.
V2_HIDDEN = [{"units": 24, "activation": "relu"}, {"units": 16, "activation": "relu6"}]
V2_PADDING = ["same", [0, 1, 0, 1], [1, 1, 0, 1], [0, 1, 1, 1], [0, 0, 1, 0]]


def meta_v2(width: float, classes: int, hidden=V2_HIDDEN, padding=V2_PADDING, activation="softmax") -> dict:
    meta = meta_for(width, classes)
    meta.update(version=2, padding=padding, hidden=hidden, activation=activation)
    return {k: meta[k] for k in ("format", "version", "width_mult", "num_classes", "input_size", "padding",
                                 "preprocess", "labels", "hidden", "activation", "source")}


def base_v2() -> tuple[dict, dict[str, np.ndarray]]:
    meta = meta_v2(BASE_WIDTH, BASE_CLASSES)
    return meta, random_arrays(BASE_WIDTH, BASE_CLASSES, seed=2, hidden=[layer["units"] for layer in meta["hidden"]])


def with_meta_v2(**changes) -> dict:
    meta, arrays = base_v2()
    meta.update(changes)
    return {"__meta__": meta_array(meta), **arrays}


def meta_array(meta) -> np.ndarray:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode("utf-8")
    return np.frombuffer(raw, dtype=np.uint8)


def random_arrays(width: float, classes: int, seed: int = 0, hidden=()) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32)
            for name, shape in shapes(width, classes, hidden).items()}


def savez(path: Path, members: dict, compressed: bool = False) -> None:
    with open(path, "wb") as f:  # an open file: np.savez would append ".npz" to a bare name
        (np.savez_compressed if compressed else np.savez)(f, **members)


def write_zip(path: Path, members, method: int = zipfile.ZIP_STORED) -> None:
    """A hand-made archive of (name, bytes), for what np.savez cannot write."""
    with zipfile.ZipFile(path, "w", method) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted, for one fixture
        for name, data in members.items() if isinstance(members, dict) else members:
            zf.writestr(name, data)


def npy_bytes(array: np.ndarray, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


def raw_npy(header: str, payload: bytes) -> bytes:
    """A version 1.0 .npy with this header dict text, padded to 64 bytes as numpy pads."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def base() -> tuple[dict, dict[str, np.ndarray]]:
    return meta_for(BASE_WIDTH, BASE_CLASSES, labels=True), random_arrays(BASE_WIDTH, BASE_CLASSES)


def with_meta(**changes) -> dict:
    meta, arrays = base()
    meta.update(changes)
    return {"__meta__": meta_array(meta), **arrays}


def with_preprocess(**changes) -> dict:
    meta, arrays = base()
    meta["preprocess"].update(changes)
    return {"__meta__": meta_array(meta), **arrays}


def with_arrays(edit) -> dict:
    meta, arrays = base()
    edit(arrays)
    return {"__meta__": meta_array(meta), **arrays}


def with_meta_bytes(raw: bytes) -> dict:
    return {"__meta__": meta_array(raw), **base()[1]}


def meta_text(version: str = "1", seed: str = "7") -> bytes:
    """The base metadata with `version` and source's `seed` as literal JSON text (1e400, 2.0, ...)."""
    meta = base()[0]
    meta.update(version="@VERSION@", source={"kind": "random", "seed": "@SEED@"})
    return json.dumps(meta).replace('"@VERSION@"', version).replace('"@SEED@"', seed).encode()


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def put_nan(arrays) -> None:
    arrays["head.bias"][[0, 5, 9]] = np.nan
    arrays["head.bias"][1] = np.inf


# ---- patching archives -------------------------------------------------------------------------
# Offsets into numpy's archives: central entries have 32-bit sizes (no zip64
# extra), local headers carry a zip64 extra of (uncompressed, compressed) sizes.

def end_record(data: bytes) -> int:
    return data.rfind(b"PK\x05\x06")


def central_entry(data: bytes, member: str) -> int:
    pos = struct.unpack_from("<I", data, end_record(data) + 16)[0]
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len] == member.encode():
            return pos
        pos += 46 + name_len + extra_len + comment_len
    raise KeyError(member)


def local_entry(data: bytes, member: str) -> int:
    return struct.unpack_from("<I", data, central_entry(data, member) + 42)[0]


def patch(data: bytes, *edits: tuple[int, str, object]) -> bytes:
    """`data` with each (offset, struct format, value) written over it."""
    out = bytearray(data)
    for pos, fmt, value in edits:
        if isinstance(value, bytes):
            out[pos:pos + len(value)] = value
        else:
            struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def patch_sizes(data: bytes, member: str, size: int) -> bytes:
    """Declared uncompressed size of a deflate member changed in both headers (the lie is consistent);
    in the local header's zip64 extra where it has one (numpy's), else in its 32-bit field (zipfile's)."""
    local = local_entry(data, member)
    name_len = struct.unpack_from("<H", data, local + 26)[0]
    zip64 = struct.unpack_from("<I", data, local + 22)[0] == 0xFFFFFFFF
    local_edit = (local + 30 + name_len + 4, "<Q", size) if zip64 else (local + 22, "<I", size)
    return patch(data, (central_entry(data, member) + 24, "<I", size), local_edit)


def patch_both(data: bytes, member: str, central_pos: int, local_pos: int, fmt: str, value) -> bytes:
    """The same field changed in the central and the local header."""
    return patch(data, (central_entry(data, member) + central_pos, fmt, value),
                 (local_entry(data, member) + local_pos, fmt, value))


def to_zip64(data: bytes, sizes: dict[str, int] | None = None) -> bytes:
    """The same archive with a zip64 central directory and end records, as zipfile
    writes for members or offsets past 4 GiB: every 32-bit size and offset is the
    0xFFFFFFFF marker and the real values sit in zip64 extra fields. `sizes`
    overrides members' declared uncompressed sizes."""
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    cd_offset = struct.unpack_from("<I", data, end_record(data) + 16)[0]
    central = b""
    for info in infos:
        name = info.filename.encode()
        size = (sizes or {}).get(info.filename, info.file_size)
        extra = struct.pack("<HHQQQ", 1, 24, size, info.compress_size, info.header_offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, info.flag_bits, info.compress_type,
                               0, 0x21, info.CRC, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0,
                               0xFFFFFFFF) + name + extra
    end64_offset = cd_offset + len(central)
    n = len(infos)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, end64_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:cd_offset] + central + end64 + locator + end


def flip_member_byte(data: bytes, member: str) -> bytes:
    """One byte of `member`'s stored data changed: only the CRC can tell."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    pos = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    return data[:pos] + bytes([data[pos] ^ 0x40]) + data[pos + 1:]


def set_entry_count(data: bytes, count: int) -> bytes:
    end = end_record(data)
    return patch(data, (end + 8, "<H", count), (end + 10, "<H", count))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---- the fixtures ------------------------------------------------------------------------------

def metadata_variants(meta: dict, arrays: dict) -> dict[str, tuple[dict, str]]:
    """Archives (written by np.savez) whose metadata breaks a rule, and their verdicts."""
    unicode_source = {"kind": "torch", "file": "r\u00e9seau \u2603 \U0001f600.pth", "note": "tab\t quote\" nul\x00",
                      "big": 2 ** 64 - 1, "small": 5e-324}
    return {
        "bad_version": (with_meta(version=4), VERSION),
        "version_1e30": (with_meta_bytes(meta_text(version=str(10 ** 30))), VERSION),
        "version_1e30_float": (with_meta_bytes(meta_text(version="1e30")), VERSION),
        "version_4_float": (with_meta_bytes(meta_text(version="4.0")), VERSION),
        "version_1_float": (with_meta_bytes(meta_text(version="1.0")), FORMAT),
        "version_fraction": (with_meta_bytes(meta_text(version="1.5")), FORMAT),
        "version_negative": (with_meta_bytes(meta_text(version="-3")), FORMAT),
        "version_zero": (with_meta(version=0), FORMAT),
        "version_string": (with_meta(version="1"), FORMAT),
        "version_400_digits": (with_meta_bytes(meta_text(version="9" * 400)), FORMAT),
        "wrong_format_name": (with_meta(format="something-else"), FORMAT),
        "unknown_meta_key": (with_meta(color="blue"), FORMAT),
        "missing_meta_key": ({"__meta__": meta_array(without(meta, "padding")), **arrays}, FORMAT),
        "bad_json": (with_meta_bytes(b"{not json"), FORMAT),
        "not_utf8": (with_meta_bytes(b'{"format": "\xff"}'), FORMAT),
        "meta_overlong_utf8": (with_meta_bytes(meta_text(seed='"@"').replace(b'"@"', b'"\xc0\xaf"')), FORMAT),
        "meta_bom": (with_meta_bytes(b"\xef\xbb\xbf" + meta_text()), FORMAT),
        "meta_trailing_nul": (with_meta_bytes(meta_text() + b"\x00"), FORMAT),
        "meta_number_overflow": (with_meta_bytes(meta_text(seed="1e400")), FORMAT),
        "meta_integer_overflow": (with_meta_bytes(meta_text(seed="1" + "0" * 400)), FORMAT),
        "meta_deep_json": (with_meta_bytes(meta_text(seed=nested(80000))), FORMAT),
        "meta_depth_32": (with_meta_bytes(meta_text(seed=nested(30))), OK),  # the object, "source", 30 lists
        "meta_depth_33": (with_meta_bytes(meta_text(seed=nested(31))), FORMAT),
        "meta_unicode": (with_meta_bytes(json.dumps({**meta, "source": unicode_source}, ensure_ascii=False).encode()),
                         OK),
        "meta_not_object": (with_meta_bytes(b"[1, 2]"), FORMAT),
        "meta_wrong_dtype": ({"__meta__": np.zeros(4, np.int32), **arrays}, FORMAT),
        "no_meta": (dict(arrays), FORMAT),
        "width_too_large": (with_meta(width_mult=4.5), FORMAT),
        "width_bool": (with_meta(width_mult=True), FORMAT),
        "classes_zero": (with_meta(num_classes=0), FORMAT),
        "input_too_small": (with_meta(input_size=[16, 224]), FORMAT),
        "bad_padding": (with_meta(padding="valid"), FORMAT),
        "crop_too_large": (with_preprocess(crop_fraction=1.5), FORMAT),
        "std_zero": (with_preprocess(std=[0.2, 0.0, 0.2]), FORMAT),
        "preprocess_unknown_key": (with_preprocess(gamma=2.2), FORMAT),
        "labels_wrong_count": (with_meta(labels=["a", "b"]), FORMAT),
        "source_not_object": (with_meta(source="a camera"), FORMAT),
    }


def v2_variants() -> dict[str, tuple[dict, str]]:
    """Version 2's keys: the head, the activation and per-conv padding rules, each broken once."""
    meta, arrays = base_v2()
    v1_keys = {k: v for k, v in meta.items() if k not in ("hidden", "activation")}
    return {
        "v2_base": (with_meta_v2(), OK),
        "v2_no_hidden": (with_meta_v2(hidden=[]), FORMAT),  # the arrays still hold hidden.* members
        "v2_missing_activation": ({"__meta__": meta_array(without(meta, "activation")), **arrays}, FORMAT),
        "v1_with_hidden_keys": (with_meta_v2(version=1), FORMAT),
        "v1_padding_list": ({"__meta__": meta_array({**v1_keys, "version": 1}), **base()[1]}, FORMAT),
        "v2_padding_rule_2": (with_meta_v2(padding=["same", [0, 2, 0, 1]] + V2_PADDING[2:]), FORMAT),
        "v2_padding_four_rules": (with_meta_v2(padding=V2_PADDING[:4]), FORMAT),
        "v2_padding_valid": (with_meta_v2(padding=["valid"] + V2_PADDING[1:]), FORMAT),
        "v2_padding_bool": (with_meta_v2(padding=["same", [False, True, 0, 1]] + V2_PADDING[2:]), FORMAT),
        "v2_hidden_units_zero": (with_meta_v2(hidden=[{"units": 0, "activation": "relu"}]), FORMAT),
        "v2_hidden_units_too_many": (with_meta_v2(hidden=[{"units": 4097, "activation": "relu"}]), FORMAT),
        "v2_hidden_too_many_layers": (with_meta_v2(hidden=[{"units": 8, "activation": "relu"}] * 9), FORMAT),
        "v2_hidden_tanh": (with_meta_v2(hidden=[{**V2_HIDDEN[0], "activation": "tanh"}, V2_HIDDEN[1]]), FORMAT),
        "v2_hidden_unknown_key": (with_meta_v2(hidden=[{**V2_HIDDEN[0], "dropout": 0.2}, V2_HIDDEN[1]]), FORMAT),
        "v2_output_relu": (with_meta_v2(activation="relu"), FORMAT),
        "v2_hidden_wrong_shape": ({"__meta__": meta_array(meta), **arrays,
                                   "hidden.1.weight": np.zeros((16, 25), np.float32)}, FORMAT),
        "v2_hidden_member_missing": ({"__meta__": meta_array(meta), **without(arrays, "hidden.0.bias")}, FORMAT),
    }


# Version 3: an int8 network. Its activation tensors, in network order: the
# stem, each block's expand output (t > 1), depthwise output and block output,
# the head; all but the block outputs follow a ReLU6 and have zero point 0.
def quant_tensors(width: float) -> list[list]:
    tensors = [[0.03, 0]]
    for _, t, _, _ in arch(width)["blocks"]:
        tensors += ([[0.025, 0]] if t != 1 else []) + [[0.02, 0], [0.05, 120]]
    return tensors + [[0.024, 0]]


def int8_member(name: str) -> bool:
    return name.endswith(".weight") and (name.startswith("blocks.") or name == "head.weight")


def base_v3(width: float = BASE_WIDTH, classes: int = BASE_CLASSES, hidden=V2_HIDDEN) -> tuple[dict, dict]:
    meta = meta_v2(width, classes, hidden=hidden)
    meta.update(version=3, quantization={
        "weights": "int8-symmetric-per-channel", "activations": "uint8-asymmetric-per-tensor",
        "layers": {"stem": "float32", "blocks": "int8", "head": "int8", "classifier": "float32"},
        "calibration": {"method": "minmax", "samples": 8}, "tensors": quant_tensors(width)})
    rng = np.random.default_rng(4)
    arrays = {}
    for name, a in random_arrays(width, classes, seed=4, hidden=[h["units"] for h in meta["hidden"]]).items():
        if int8_member(name):
            arrays[name] = rng.integers(-127, 128, a.shape, dtype=np.int8)
            arrays[name[:-len("weight")] + "weight_scale"] = rng.uniform(0.001, 0.02, a.shape[0]).astype(np.float32)
        else:
            arrays[name] = a
    return meta, arrays


def v3_variants() -> dict[str, tuple[dict, str]]:
    """Version 3's quantization, each rule broken once."""
    meta, arrays = base_v3()
    q = meta["quantization"]

    def with_quant(**changes):
        return {"__meta__": meta_array({**meta, "quantization": {**q, **changes}}), **arrays}

    def with_tensor(index, pair):
        tensors = [list(t) for t in q["tensors"]]
        tensors[index] = pair
        return with_quant(tensors=tensors)

    def with_array(name, value):
        return {"__meta__": meta_array(meta), **arrays, name: value}

    out_index = 3  # block 0 (t = 1): depthwise at 1, output at 2; block 1's expand at 3, output at 5
    weight = "blocks.1.expand.weight"
    runnable_meta, runnable = base_v3(0.35, 17, hidden=[])  # a network the core runs (test_capi.cc)
    return {
        "v3_base": ({"__meta__": meta_array(meta), **arrays}, OK),
        "v3_int8_0.35": ({"__meta__": meta_array(runnable_meta), **runnable}, OK),
        "v3_float": ({"__meta__": meta_array({**meta, "quantization": None}), **base_v2()[1]}, OK),
        "v3_missing_quantization": ({"__meta__": meta_array(without(meta, "quantization")), **arrays}, FORMAT),
        "v2_with_quantization": ({"__meta__": meta_array({**meta, "version": 2}), **arrays}, FORMAT),
        "v3_scale_zero": (with_tensor(0, [0.0, 0]), FORMAT),
        "v3_scale_negative": (with_tensor(4, [-0.02, 0]), FORMAT),
        "v3_scale_huge": (with_tensor(5, [1e10, 0]), FORMAT),
        "v3_zero_point_300": (with_tensor(5, [0.05, 300]), FORMAT),
        "v3_zero_point_after_relu6": (with_tensor(out_index, [0.025, 3]), FORMAT),
        "v3_zero_point_float": (with_tensor(5, [0.05, 120.5]), FORMAT),
        "v3_tensors_short": (with_quant(tensors=q["tensors"][:-1]), FORMAT),
        "v3_layers_stem_int8": (with_quant(layers={**q["layers"], "stem": "int8"}), FORMAT),
        "v3_weights_asymmetric": (with_quant(weights="int8-asymmetric"), FORMAT),
        "v3_unknown_key": (with_quant(bits=8), FORMAT),
        "v3_calibration_samples_zero": (with_quant(calibration={"method": "minmax", "samples": 0}), FORMAT),
        "v3_weight_float": (with_array(weight, arrays[weight].astype(np.float32)), FORMAT),
        "v3_weight_uint8": (with_array(weight, arrays[weight].view(np.uint8)), FORMAT),
        "v3_weight_minus_128": (with_array(weight, np.full_like(arrays[weight], -128)), FORMAT),
        "v3_weight_scale_zero": (with_array("blocks.1.expand.weight_scale",
                                            np.zeros_like(arrays["blocks.1.expand.weight_scale"])), FORMAT),
        "v3_weight_scale_nan": (with_array("head.weight_scale", np.full_like(arrays["head.weight_scale"], np.nan)),
                                FORMAT),
        "v3_weight_scale_missing": ({"__meta__": meta_array(meta), **without(arrays, "head.weight_scale")}, FORMAT),
        "v3_stem_int8": (with_array("stem.weight", np.zeros(arrays["stem.weight"].shape, np.int8)), FORMAT),
    }


def array_variants(good: dict) -> dict[str, tuple[dict, str]]:
    """Archives (written by np.savez) whose arrays break a rule."""
    return {
        "missing_member": (without(good, "blocks.3.project.bias"), FORMAT),
        "extra_member": ({**good, "extra.weight": np.zeros(3, np.float32)}, FORMAT),
        "expand_on_t1": ({**good, "blocks.0.expand.weight": np.zeros((8, 16), np.float32)}, FORMAT),
        "wrong_shape": (with_arrays(lambda a: a.update({"stem.weight": np.zeros((3, 3, 3, 16), np.float32)})), FORMAT),
        "wrong_dtype": (with_arrays(lambda a: a.update({"stem.bias": a["stem.bias"].astype(np.float64)})), FORMAT),
        "big_endian": (with_arrays(lambda a: a.update({"stem.bias": a["stem.bias"].astype(">f4")})), FORMAT),
        "fortran_order": (with_arrays(lambda a: a.update({"head.weight": np.asfortranarray(a["head.weight"])})),
                          FORMAT),
        "object_array": (with_arrays(lambda a: a.update({"stem.bias": np.array([{"x": 1}] * 16, dtype=object)})),
                         FORMAT),
        "nan_values": (with_arrays(put_nan), FORMAT),
        "meta_too_large": ({**good, "__meta__": meta_array(json.dumps(base()[0]).encode() + b" " * (17 << 20))},
                           FORMAT),
    }


def raw_variants(raw: dict[str, bytes], meta_raw: bytes) -> dict[str, tuple[list, str]]:
    """Hand-made archives of .npy bytes: what np.savez cannot write."""
    bias = raw["stem.bias.npy"]
    bias_payload = bias[-32:]  # (8,) float32
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (8,), }"
    meta_header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s,), }"

    def replaced(name: str, data: bytes) -> list:
        return list({**raw, name: data}.items())

    def renamed(old: str, new: str) -> list:
        return [(new if k == old else k, v) for k, v in raw.items()]

    return {
        "npy_version2": (replaced("stem.bias.npy", npy_bytes(np.frombuffer(bias_payload, "<f4"), (2, 0))), OK),
        "npy_version3": (replaced("stem.bias.npy", npy_bytes(np.frombuffer(bias_payload, "<f4"), (3, 0))), FORMAT),
        "duplicate_member": (list(raw.items()) + [("stem.bias.npy", bias)], FORMAT),
        "trailing_bytes": (replaced("stem.bias.npy", bias + b"\0\0\0\0"), FORMAT),
        "payload_short": (replaced("stem.bias.npy", bias[:-4]), FORMAT),
        "descr_native": (replaced("stem.bias.npy", raw_npy(header % "=f4", bias_payload)), FORMAT),
        "descr_no_order": (replaced("stem.bias.npy", raw_npy(header % "|f4", bias_payload)), FORMAT),
        "descr_name": (replaced("stem.bias.npy", raw_npy(header % "float32", bias_payload)), FORMAT),
        "npy_repeated_key": (replaced("stem.bias.npy", raw_npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (8,), 'shape': (8,), }", bias_payload)), FORMAT),
        "npy_comment": (replaced("stem.bias.npy", raw_npy(
            "{'descr': '<f4', # a comment\n 'fortran_order': False, 'shape': (8,), }", bias_payload)), FORMAT),
        "npy_unclosed_paren": (replaced("stem.bias.npy", raw_npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (8, }", bias_payload)), FORMAT),
        "meta_descr_little": (replaced("__meta__.npy", raw_npy(meta_header % ("<u1", len(meta_raw)), meta_raw)), OK),
        "meta_descr_native": (replaced("__meta__.npy", raw_npy(meta_header % ("=u1", len(meta_raw)), meta_raw)),
                              FORMAT),
        "meta_shape_1e12": (replaced("__meta__.npy", raw_npy(meta_header % ("|u1", 10 ** 12), meta_raw)), FORMAT),
        "meta_shape_1e15": (replaced("__meta__.npy", raw_npy(meta_header % ("|u1", 10 ** 15), meta_raw)), FORMAT),
        "meta_shape_2e64": (replaced("__meta__.npy", raw_npy(meta_header % ("|u1", 2 ** 64), meta_raw)), FORMAT),
        "member_without_npy": (renamed("stem.bias.npy", "stem.bias"), FORMAT),
    }


def patched_variants(data: bytes, compressed: bytes) -> dict[str, tuple[bytes, str]]:
    """Valid archives with header fields overwritten: lies about sizes, counts and methods."""
    end, cd = end_record(data), struct.unpack_from("<I", data, end_record(data) + 16)[0]
    cd_size = struct.unpack_from("<I", data, end + 12)[0]
    count = struct.unpack_from("<H", data, end + 10)[0]
    head = "head.weight.npy"
    bias_compressed = zipfile.ZipFile(io.BytesIO(compressed)).getinfo("stem.bias.npy").compress_size
    local_head = local_entry(data, head)
    return {
        "zip64": (to_zip64(data), OK),
        "truncated_half": (data[: len(data) // 2], FORMAT),
        "truncated_tail": (data[:-7], FORMAT),
        "trailing_garbage": (data + b"junk", FORMAT),
        "prefix_junk": (b"\0" * 64 + data, FORMAT),
        "prefix_garbage": (b"PK\x03\x04" + b"\0" * 60 + data, FORMAT),
        "crc_mismatch": (flip_member_byte(data, head), FORMAT),
        "bad_deflate": (flip_member_byte(compressed, head), FORMAT),
        "method_99": (patch_both(data, head, 10, 8, "<H", 99), FORMAT),
        "encrypted": (patch_both(data, head, 8, 6, "<H", 1), FORMAT),
        "nul_in_name": (patch_both(data, "stem.bias.npy", 46 + 9, 30 + 9, "<c", b"\0"), FORMAT),
        "local_name_mismatch": (patch(data, (local_head + 30 + len(head) - 1, "<c", b"z")), FORMAT),
        "local_method_mismatch": (patch(data, (local_head + 8, "<H", 8)), FORMAT),
        "local_size_mismatch": (patch(data, (local_head + 30 + len(head) + 4, "<Q", 12345)), FORMAT),
        "local_crc_mismatch": (patch(data, (local_head + 14, "<I", 12345)), FORMAT),
        "stored_past_end": (patch(data, (central_entry(data, head) + 20, "<I", 1 << 30),
                                  (central_entry(data, head) + 24, "<I", 1 << 30)), FORMAT),
        "deflate_claims_5gib": (to_zip64(compressed, {head: 5 << 30}), FORMAT),
        "deflate_beyond_shape": (patch_sizes(compressed, "stem.bias.npy", bias_compressed * 1000), FORMAT),
        "eocd_count_low": (set_entry_count(data, count - 1), FORMAT),
        "eocd_count_high": (set_entry_count(data, count + 1), FORMAT),
        "eocd_count_huge": (set_entry_count(data, 60000), FORMAT),
        "directory_too_small": (set_entry_count(data, 500), FORMAT),
        "directory_size_wrong": (patch(data, (end + 12, "<I", cd_size - 1)), FORMAT),
        "directory_offset_wrong": (patch(data, (end + 16, "<I", cd - 1)), FORMAT),
        "not_zip": (b"this is not a weight file\n", FORMAT),
        "empty": (b"", FORMAT),
    }


def deflate_lies(good: dict) -> dict[str, tuple[bytes, str]]:
    """Deflate members whose inflated size differs from the (consistent) declared one."""
    raw = {f"{k}.npy": npy_bytes(v) for k, v in good.items()}
    out = {}
    for name, data, declared in (("deflate_shorter_than_declared", raw["head.weight.npy"][:-4], 4),
                                 ("deflate_longer_than_declared", raw["head.weight.npy"] + b"\0" * 4, -4)):
        buf = io.BytesIO()
        write_zip(buf, {**raw, "head.weight.npy": data}, zipfile.ZIP_DEFLATED)
        archive = buf.getvalue()
        out[name] = (patch_sizes(archive, "head.weight.npy", len(data) + declared), FORMAT)
    buf = io.BytesIO()
    write_zip(buf, raw, zipfile.ZIP_DEFLATED)
    out["zipfile_deflated"] = (buf.getvalue(), OK)
    return out


def write_corrupt(out: Path) -> dict[str, str]:
    """The base file (width 0.01, 3 classes), stored and deflated, and every
    hostile variant of it; returns {file name: verdict}."""
    expected = {}
    meta, arrays = base()
    good = {"__meta__": meta_array(meta), **arrays}
    savez(out / "base.npz", good)
    savez(out / "base_compressed.npz", good, compressed=True)
    expected.update({"base.npz": OK, "base_compressed.npz": OK})
    variants = {**metadata_variants(meta, arrays), **array_variants(good), **v2_variants(), **v3_variants()}
    for name, (members, verdict) in variants.items():
        savez(out / f"{name}.npz", members, compressed=name == "meta_too_large")
        expected[f"{name}.npz"] = verdict
    raw = {f"{k}.npy": npy_bytes(v) for k, v in good.items()}
    for name, (members, verdict) in raw_variants(raw, json.dumps(meta).encode()).items():
        write_zip(out / f"{name}.npz", members)
        expected[f"{name}.npz"] = verdict
    for method, name in ((zipfile.ZIP_BZIP2, "method_bzip2"), (zipfile.ZIP_LZMA, "method_lzma")):
        write_zip(out / f"{name}.npz", raw, method)
        expected[f"{name}.npz"] = FORMAT
    data, compressed = (out / "base.npz").read_bytes(), (out / "base_compressed.npz").read_bytes()
    for name, (content, verdict) in {**patched_variants(data, compressed), **deflate_lies(good)}.items():
        (out / f"{name}.npz").write_bytes(content)
        expected[f"{name}.npz"] = verdict
    return expected


SPARSE_SIZE = 3 << 30


def write_sparse(path: Path) -> str:
    """A 3 GiB file of zeros that takes no disk space (where the file system
    allows holes); the reader must refuse it reading only its tail."""
    with open(path, "wb") as f:
        f.truncate(SPARSE_SIZE)
    return FORMAT


def value_checks(arrays: dict[str, np.ndarray]) -> dict:
    return {k: [float(v.flat[0]), float(v.flat[-1]), float(v.astype(np.float64).sum())] for k, v in arrays.items()}


def write_valid(out: Path) -> list[dict]:
    valid = []
    for width in WIDTHS:
        for compressed in (False, True) if width in (0.35, 1.0) else (False,):
            classes = 1000 if width == 1.0 else 17
            meta, arrays = meta_for(width, classes, labels=compressed), random_arrays(width, classes, seed=1)
            name = f"valid_{width}{'_compressed' if compressed else ''}.npz"
            savez(out / name, {"__meta__": meta_array(meta), **arrays}, compressed)
            valid.append({"file": name, "meta": meta, "values": value_checks(arrays)})
    for width, hidden, padding, activation in ((0.35, V2_HIDDEN, V2_PADDING, "softmax"),
                                               (1.0, [], "torch", "sigmoid")):
        meta = meta_v2(width, 10, hidden, padding, activation)
        arrays = random_arrays(width, 10, seed=3, hidden=[layer["units"] for layer in hidden])
        name = f"valid_v2_{width}.npz"
        savez(out / name, {"__meta__": meta_array(meta), **arrays})
        valid.append({"file": name, "meta": meta, "values": value_checks(arrays)})
    return valid


def write_fixtures(out: Path) -> dict[str, str]:
    """Every fixture and the manifest; returns {file name: verdict}."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.npz"):  # a fixture an earlier version wrote would have no verdict
        old.unlink()
    expected = write_corrupt(out)
    valid = write_valid(out)
    expected.update({v["file"]: OK for v in valid})
    samples = [v / 4 for v in range(1, 4 * 2000)] + [c * w for c in (16, 24, 32, 64, 96, 160, 320, 1280)
                                                    for w in np.arange(0.05, 4.001, 0.05).tolist()]
    manifest = {"expected": expected, "valid": valid, "arch": {str(w): arch(w) for w in WIDTHS},
                "make_divisible": [[v, make_divisible(v)] for v in samples],
                "sparse": {"size": SPARSE_SIZE, "expected": FORMAT}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    write_fixtures(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
