"""Write the weight files the C++ reader tests load, and a manifest describing them.

    python make_fixtures.py OUT_DIR

Valid files are written by numpy itself (np.savez and np.savez_compressed) from
the layout of docs/format.md, independently of mbv2_engine/format.py; the corrupt
ones each break one rule. The manifest (OUT_DIR/manifest.json) carries what the
C++ side compares against: arch.py's architecture for every width, make_divisible
samples, and a few values of every array of the valid files.

    python make_fixtures.py OUT_DIR --check-python-loader

loads every fixture with mbv2_engine.format.load and checks that the Python
loader accepts and refuses the same files as the C++ reader (ACCEPTED,
STRICTER_IN_CPP).
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mbv2_engine.arch import build_arch, make_divisible  # noqa: E402

WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
# Every channel count rounds up to 8 at this width: a 130 KB file, so the corrupt
# variants and the byte-flipping test in test_npz_reader.cc are cheap.
BASE_WIDTH, BASE_CLASSES = 0.01, 3


def shapes(arch) -> dict[str, tuple[int, ...]]:
    """docs/format.md's member table, written out again so the fixtures test it independently."""
    out = {"stem.weight": (arch.stem, 3, 3, 3), "stem.bias": (arch.stem,)}
    for i, b in enumerate(arch.blocks):
        if b.has_expand:
            out[f"blocks.{i}.expand.weight"] = (b.hidden, b.cin)
            out[f"blocks.{i}.expand.bias"] = (b.hidden,)
        out[f"blocks.{i}.depthwise.weight"] = (b.hidden, 3, 3)
        out[f"blocks.{i}.depthwise.bias"] = (b.hidden,)
        out[f"blocks.{i}.project.weight"] = (b.cout, b.hidden)
        out[f"blocks.{i}.project.bias"] = (b.cout,)
    out["head.weight"] = (arch.last, arch.blocks[-1].cout)
    out["head.bias"] = (arch.last,)
    out["classifier.weight"] = (arch.num_classes, arch.last)
    out["classifier.bias"] = (arch.num_classes,)
    return out


def meta_for(width: float, classes: int, labels: bool = False) -> dict:
    return {"format": "mbv2-engine-weights", "version": 1, "width_mult": width, "num_classes": classes,
            "input_size": [224, 192], "padding": "same",
            "preprocess": {"crop_fraction": 0.875, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "labels": [f"class {k}" for k in range(classes)] if labels else None,
            "source": {"kind": "random", "seed": 7}}


def meta_array(meta) -> np.ndarray:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode("utf-8")
    return np.frombuffer(raw, dtype=np.uint8)


def random_arrays(width: float, classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32)
            for name, shape in shapes(build_arch(width, classes)).items()}


def savez(path: Path, members: dict, compressed: bool = False) -> None:
    with open(path, "wb") as f:  # an open file: np.savez would append ".npz" to a bare name
        (np.savez_compressed if compressed else np.savez)(f, **members)


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    """A hand-made archive, for what np.savez cannot write (duplicate names, odd .npy versions)."""
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted, for one fixture
        for name, data in members.items() if isinstance(members, dict) else members:
            zf.writestr(name, data)


def npy_bytes(array: np.ndarray, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


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


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def put_nan(arrays) -> None:
    arrays["head.bias"][[0, 5, 9]] = np.nan
    arrays["head.bias"][1] = np.inf


def to_zip64(data: bytes) -> bytes:
    """The same archive with a zip64 central directory and end records, as zipfile
    writes for members or offsets past 4 GiB: every 32-bit size and offset is the
    0xFFFFFFFF marker and the real values sit in zip64 extra fields."""
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    cd_offset = struct.unpack_from("<I", data, data.rfind(b"PK\x05\x06") + 16)[0]
    central = b""
    for info in infos:
        name = info.filename.encode()
        extra = struct.pack("<HHQQQ", 1, 24, info.file_size, info.compress_size, info.header_offset)
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


def write_corrupt(out: Path) -> None:
    meta, arrays = base()
    good = {"__meta__": meta_array(meta), **arrays}
    savez(out / "base.npz", good)
    savez(out / "base_compressed.npz", good, compressed=True)
    data = (out / "base.npz").read_bytes()
    compressed = (out / "base_compressed.npz").read_bytes()
    (out / "zip64.npz").write_bytes(to_zip64(data))
    (out / "truncated_half.npz").write_bytes(data[: len(data) // 2])
    (out / "truncated_tail.npz").write_bytes(data[:-7])
    (out / "not_zip.npz").write_bytes(b"this is not a weight file\n")
    (out / "empty.npz").write_bytes(b"")
    (out / "crc_mismatch.npz").write_bytes(flip_member_byte(data, "head.weight.npy"))
    (out / "bad_deflate.npz").write_bytes(flip_member_byte(compressed, "head.weight.npy"))
    variants = {
        "bad_version": with_meta(version=2),
        "version_zero": with_meta(version=0),
        "version_string": with_meta(version="1"),
        "wrong_format_name": with_meta(format="something-else"),
        "unknown_meta_key": with_meta(color="blue"),
        "missing_meta_key": {"__meta__": meta_array(without(meta, "padding")), **arrays},
        "bad_json": {"__meta__": meta_array(b"{not json"), **arrays},
        "not_utf8": {"__meta__": meta_array(b'{"format": "\xff"}'), **arrays},
        "meta_not_object": {"__meta__": meta_array([1, 2]), **arrays},
        "meta_wrong_dtype": {"__meta__": np.zeros(4, np.int32), **arrays},
        "no_meta": dict(arrays),
        "width_too_large": with_meta(width_mult=4.5),
        "width_bool": with_meta(width_mult=True),
        "classes_zero": with_meta(num_classes=0),
        "input_too_small": with_meta(input_size=[16, 224]),
        "bad_padding": with_meta(padding="valid"),
        "crop_too_large": with_preprocess(crop_fraction=1.5),
        "std_zero": with_preprocess(std=[0.2, 0.0, 0.2]),
        "preprocess_unknown_key": with_preprocess(gamma=2.2),
        "labels_wrong_count": with_meta(labels=["a", "b"]),
        "source_not_object": with_meta(source="a camera"),
        "missing_member": without(good, "blocks.3.project.bias"),
        "extra_member": {**good, "extra.weight": np.zeros(3, np.float32)},
        "expand_on_t1": {**good, "blocks.0.expand.weight": np.zeros((8, 16), np.float32)},
        "wrong_shape": with_arrays(lambda a: a.update({"stem.weight": np.zeros((3, 3, 3, 16), np.float32)})),
        "wrong_dtype": with_arrays(lambda a: a.update({"stem.bias": a["stem.bias"].astype(np.float64)})),
        "big_endian": with_arrays(lambda a: a.update({"stem.bias": a["stem.bias"].astype(">f4")})),
        "fortran_order": with_arrays(lambda a: a.update({"head.weight": np.asfortranarray(a["head.weight"])})),
        "object_array": with_arrays(lambda a: a.update({"stem.bias": np.array([{"x": 1}] * 16, dtype=object)})),
        "nan_values": with_arrays(put_nan),
    }
    for name, members in variants.items():
        savez(out / f"{name}.npz", members)
    raw = {f"{k}.npy": npy_bytes(v) for k, v in good.items()}
    write_zip(out / "npy_version3.npz", {**raw, "stem.bias.npy": npy_bytes(arrays["stem.bias"], (3, 0))})
    write_zip(out / "npy_version2.npz", {**raw, "stem.bias.npy": npy_bytes(arrays["stem.bias"], (2, 0))})
    write_zip(out / "duplicate_member.npz", list(raw.items()) + [("stem.bias.npy", raw["stem.bias.npy"])])


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
    return valid


def arch_json(width: float) -> dict:
    a = build_arch(width, 1000)
    return {"stem": a.stem, "last": a.last, "blocks": [[b.cin, b.t, b.cout, b.stride] for b in a.blocks]}


def write_manifest(out: Path, valid: list[dict]) -> None:
    samples = [v / 4 for v in range(1, 4 * 2000)] + [c * w for c in (16, 24, 32, 64, 96, 160, 320, 1280)
                                                    for w in np.arange(0.05, 4.001, 0.05).tolist()]
    manifest = {"valid": valid, "arch": {str(w): arch_json(w) for w in WIDTHS},
                "make_divisible": [[v, make_divisible(v)] for v in samples]}
    (out / "manifest.json").write_text(json.dumps(manifest))


# Fixtures both loaders accept; every other one both refuse, with an
# UnsupportedVersionError only for bad_version.
ACCEPTED = {"base.npz", "base_compressed.npz", "zip64.npz", "npy_version2.npz"}
# Where the C++ reader is deliberately stricter than the Python loader.
STRICTER_IN_CPP = {
    "duplicate_member.npz": "zipfile reads the last of two same-named members; the C++ reader refuses the ambiguity",
}


def check_python_loader(out: Path) -> int:
    from mbv2_engine.errors import ModelFormatError, UnsupportedVersionError
    from mbv2_engine.format import load

    accepts = ACCEPTED | {v["file"] for v in json.loads((out / "manifest.json").read_text())["valid"]}
    failures = 0
    for path in sorted(out.glob("*.npz")):
        if path.name in STRICTER_IN_CPP:
            continue
        try:
            load(path)
            verdict = "ok"
        except UnsupportedVersionError:
            verdict = "unsupported version"
        except ModelFormatError:
            verdict = "invalid format"
        expected = "ok" if path.name in accepts else "unsupported version" if path.name == "bad_version.npz" \
            else "invalid format"
        if verdict != expected:
            failures += 1
            print(f"{path.name}: Python loader says {verdict}, the C++ reader {expected}")
    print(f"{failures} disagreements; known, deliberate ones: {STRICTER_IN_CPP}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--check-python-loader", action="store_true")
    args = parser.parse_args()
    if args.check_python_loader:
        return check_python_loader(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    write_corrupt(args.out)
    write_manifest(args.out, write_valid(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
