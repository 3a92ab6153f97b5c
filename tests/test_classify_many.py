"""`mbv2-engine classify` over collections: discovery, the decode pool, writers, resume, errors, Ctrl-C."""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mbv2_engine
from mbv2_engine import Engine, collection
from mbv2_engine.cli import main
from mbv2_engine.preprocess import crop_box, load_image, preprocess, to_rgb_array
from mbv2_engine.shapes import CLASSES, HELD_OUT_SEED, make_dataset

SHAPES = Path(mbv2_engine.__file__).parent / "data" / "shapes.npz"
ENV = {**os.environ, "PYTHONPATH": str(Path(mbv2_engine.__file__).parents[1])}


@pytest.fixture(scope="module")
def engine():
    return Engine.load(SHAPES, threads=1)


@pytest.fixture(scope="module")
def pictures():
    x, y = make_dataset(24, HELD_OUT_SEED, 96)
    return x, y


@pytest.fixture
def tree(tmp_path, pictures):
    """imgs/ with nested folders: PNGs and small JPEGs (too small for draft), and a text file."""
    x, _ = pictures
    root = tmp_path / "imgs"
    for i, a in enumerate(x[:12]):
        d = root / ("" if i < 4 else "sub" if i < 8 else "sub/deep")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / (f"p{i:02d}.png" if i % 2 else f"p{i:02d}.JPG"), quality=95)
    (root / "notes.txt").write_text("not a picture")
    return root


def rel(paths, root):
    return [Path(p).relative_to(root).as_posix() for p in paths]


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# ---- discovery -----------------------------------------------------------------------------------

def test_discover_walks_nested_folders_and_filters(tree):
    found = collection.discover([str(tree)])
    assert len(found) == 12 and "notes.txt" not in " ".join(found)  # .JPG: extensions match in any case
    assert [Path(p).relative_to(tree).as_posix() for p in found] == \
        [f"{'' if i < 4 else 'sub/' if i < 8 else 'sub/deep/'}p{i:02d}.{'png' if i % 2 else 'JPG'}" for i in range(12)]
    assert rel(collection.discover([str(tree)], globs=["*.png"]), tree) == \
        [f"{d}p{i:02d}.png" for i, d in [(1, ""), (3, ""), (5, "sub/"), (7, "sub/"), (9, "sub/deep/"),
                                          (11, "sub/deep/")]]
    assert rel(collection.discover([str(tree)], globs=["sub/deep/*"]), tree) == \
        ["sub/deep/p08.JPG", "sub/deep/p09.png", "sub/deep/p10.JPG", "sub/deep/p11.png"]
    # A file named on the command line is taken whatever its extension; a missing one is kept (it fails later).
    assert collection.discover([str(tree / "notes.txt"), "nope.png"]) == [str(tree / "notes.txt"), "nope.png"]


def test_discover_reads_stdin_dash(tree):
    stdin = io.StringIO(f"{tree / 'p00.JPG'}\n\n{tree / 'sub' / 'deep'}\r\n")
    found = collection.discover(["-", str(tree / "p01.png")], stdin=stdin)
    assert found[0] == str(tree / "p00.JPG") and found[-1] == str(tree / "p01.png")
    assert rel(found[1:-1], tree) == ["sub/deep/p08.JPG", "sub/deep/p09.png", "sub/deep/p10.JPG", "sub/deep/p11.png"]


def test_cli_stdin_list(tree, tmp_path, monkeypatch, capsys):
    files = collection.discover([str(tree)])[:3]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(files) + "\n"))
    assert main(["classify", "-", "--model", str(SHAPES), "-o", str(tmp_path / "o.jsonl"), "--top-k", "1"]) == 0
    assert [r["path"] for r in read_jsonl(tmp_path / "o.jsonl")] == files
    assert "3 images: 3 classified, 0 failed" in capsys.readouterr().err


# ---- results -------------------------------------------------------------------------------------

def test_jsonl_and_csv_match_engine_classify_one_at_a_time(tree, tmp_path, engine, capsys):
    files = collection.discover([str(tree)])
    expected = {p: engine.classify(p, top_k=3) for p in files}
    assert main(["classify", str(tree), "--model", str(SHAPES), "--top-k", "3", "--batch", "5",
                 "--threads", "1", "-o", str(tmp_path / "r.jsonl")]) == 0
    rows = read_jsonl(tmp_path / "r.jsonl")
    assert sorted(r["path"] for r in rows) == sorted(files)
    for r in rows:
        assert "error" not in r
        assert [(p["index"], p["label"], p["probability"]) for p in r["predictions"]] == \
            [tuple(p) for p in expected[r["path"]]]
    assert main(["classify", str(tree), "--model", str(SHAPES), "--top-k", "3", "--batch", "4",
                 "-o", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["path", "error", "label_1", "index_1", "probability_1", "label_2", "index_2",
                              "probability_2", "label_3", "index_3", "probability_3"]
    assert len(table) == len(files)
    for r in table:
        exp = expected[r["path"]]
        assert r["error"] == "" and [r[f"label_{k}"] for k in (1, 2, 3)] == [p.label for p in exp]
        assert [float(r[f"probability_{k}"]) for k in (1, 2, 3)] == [p.probability for p in exp]
    # The labels mean something: the shipped model gets the held-out shapes right.
    _, y = make_dataset(12, HELD_OUT_SEED, 96)
    hits = sum(r["predictions"][0]["label"] == CLASSES[y[int(Path(r["path"]).stem[1:])]] for r in rows)
    assert hits >= 10
    err = capsys.readouterr().err
    assert "12 images: 12 classified, 0 failed" in err and "images/s" in err and "decode" in err


def test_table_on_stdout_and_format_flag(tree, capsys):
    files = collection.discover([str(tree)])[:2]
    assert main(["classify", *files, "--model", str(SHAPES), "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == files[0] and out[3] == files[1] and len(out) == 6
    assert main(["classify", *files, "--model", str(SHAPES), "--top-k", "1", "--format", "jsonl"]) == 0
    assert [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()] == files


# ---- failures and exit statuses -----------------------------------------------------------------

def test_bad_files_are_reported_written_and_counted(tree, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.jpg").write_bytes(os.urandom(3000))
    (bad / "text.png").write_text("hello, I am not a PNG")
    good = (tree / "p00.JPG").read_bytes()
    (bad / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (bad / "tiny.png").write_bytes(_png_bytes(np.zeros((8, 8, 3), np.uint8)))  # below the network's minimum
    Image.new("L", (1000, 1000)).save(bad / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 1e6 pixels > 2x the limit: an error, not a warning
    inputs = [str(tree / "p01.png"), str(bad), str(tmp_path / "missing.jpg")]
    assert main(["classify", *inputs, "--model", str(SHAPES), "-o", str(tmp_path / "o.jsonl")]) == 1
    rows = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "o.jsonl")}
    assert set(rows) == {"p01.png", "corrupt.jpg", "text.png", "truncated.jpg", "tiny.png", "bomb.png",
                         "missing.jpg"}
    assert "predictions" in rows["p01.png"] and "error" not in rows["p01.png"]
    assert "decompression bomb" in rows["bomb.png"]["error"]
    assert "truncated" in rows["truncated.jpg"]["error"]
    assert "cannot identify" in rows["text.png"]["error"] and "cannot identify" in rows["corrupt.jpg"]["error"]
    assert "smaller than the minimum" in rows["tiny.png"]["error"]
    assert rows["missing.jpg"]["error"] == "file not found"
    err = capsys.readouterr().err
    for name in ("corrupt.jpg", "text.png", "truncated.jpg", "tiny.png", "bomb.png", "missing.jpg"):
        assert f"{name}: {rows[name]['error']}" in err
    assert "7 images: 1 classified, 6 failed" in err


def test_usage_errors_exit_2(tree, tmp_path, capsys):
    m = ["--model", str(SHAPES)]
    assert main(["classify", str(tree), *m, "--resume"]) == 2  # nothing to resume from
    assert "--resume needs an --output" in capsys.readouterr().err
    assert main(["classify", str(tree), *m, "-o", str(tmp_path / "o.txt")]) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["classify", str(tmp_path / "empty"), *m]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main(["classify", str(tree), *m, "--glob", "*.gif"]) == 2
    for bad in (["--batch", "0"], ["--format", "xml"]):  # argparse's own usage errors
        with pytest.raises(SystemExit) as e:
            main(["classify", str(tree), *m, *bad])
        assert e.value.code == 2


# ---- resume --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_resume_classifies_only_new_files_and_appends(tree, tmp_path, pictures, ext, capsys):
    out = tmp_path / f"o.{ext}"
    args = ["classify", str(tree), "--model", str(SHAPES), "--top-k", "2", "-o", str(out), "--resume"]
    assert main(args) == 0  # --resume with no file yet: a fresh run
    first = out.read_text()
    x, _ = pictures
    for i in (20, 21, 22):
        Image.fromarray(x[i]).save(tree / "sub" / f"new{i}.png")
    if ext == "jsonl":  # a line an interrupted run left unfinished is dropped, and its file done again
        out.write_text(first + '{"path": "' + str(tree / "sub" / "new20.png") + '", "predi')
    capsys.readouterr()
    assert main(args) == 0
    assert "3 classified, 0 failed, 12 skipped" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith(first)
    lines = text.splitlines()
    paths = [json.loads(line)["path"] for line in lines] if ext == "jsonl" else [r[0] for r in csv.reader(lines[1:])]
    assert len(paths) == 15 and len(set(paths)) == 15
    assert sorted(Path(p).name for p in paths[12:]) == ["new20.png", "new21.png", "new22.png"]
    if ext == "csv":
        assert sum(line.startswith("path,") for line in lines) == 1
        assert main(["classify", str(tree), "--model", str(SHAPES), "--top-k", "3", "-o", str(out), "--resume"]) == 2
        assert "another --top-k" in capsys.readouterr().err


# ---- preprocessing -------------------------------------------------------------------------------

def _png_bytes(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _old_preprocess(rgb, size, crop_fraction, mean, std):
    """The preprocess before the crop-first resize: resize the whole picture, then crop."""
    h, w = rgb.shape[:2]
    out_h, out_w = size
    scale = max(out_h / crop_fraction / h, out_w / crop_fraction / w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    crop = resized[top:top + out_h, left:left + out_w].astype(np.float32) / 255.0
    x = (crop - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def test_preprocess_is_resize_then_crop_and_the_box_route_one_level_from_it(engine):
    """A normal picture is resized whole and cropped: torchvision's Resize + CenterCrop, bit for bit.
    One whose resize would be more than MAX_RESIZE_OVER_CROP times its crop is resampled from the
    crop's box; Pillow's window arithmetic from a non-zero box origin rounds a few values by one level."""
    from mbv2_engine.preprocess import MAX_RESIZE_OVER_CROP, resized_size

    rng = np.random.default_rng(0)
    std = np.asarray([0.229, 0.224, 0.225], np.float32)[:, None, None]
    mean = [0.485, 0.456, 0.406]
    routes = {"whole": 0, "box": 0}
    for size, cf in [((224, 224), 0.875), ((64, 64), 0.875), ((160, 128), 1.0)]:
        for h, w in [tuple(rng.integers(32, 700, 2)) for _ in range(6)] + [(32, 700), (40, 2000)]:
            img = np.asarray(Image.fromarray(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), np.uint8))
                             .resize((int(w), int(h)), Image.BICUBIC))
            a = _old_preprocess(img, size, cf, mean, std.ravel())
            b = preprocess(img, size, cf, mean, std.ravel())
            new_h, new_w = resized_size(h, w, size, cf)
            if new_h * new_w <= MAX_RESIZE_OVER_CROP * size[0] * size[1]:
                routes["whole"] += 1
                np.testing.assert_array_equal(a, b)
            else:
                routes["box"] += 1
                assert (np.abs(a - b)[0] * std * 255).max() <= 1.001
    assert routes["whole"] >= 10 and routes["box"] >= 2, routes


def test_extreme_aspect_png_costs_little(tmp_path):
    """A 1,000,000x32 strip: the old resize-then-crop made an 8,000,000x256 RGB picture (6 GB)."""
    path = tmp_path / "strip.png"
    strip = np.tile(np.arange(256, dtype=np.uint8)[None, :], (32, 1000000 // 256 + 1))[:, :1000000]
    Image.fromarray(strip).save(path, compress_level=1)
    code = ("import resource, sys; from mbv2_engine.preprocess import load_image; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"x = load_image({str(path)!r}, (224, 224), 0.875, [0.5] * 3, [0.5] * 3); "
            "print(x.shape, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr
    shape, before, after = proc.stdout.rsplit(")", 1)[0] + ")", *map(int, proc.stdout.split(")")[1].split())
    assert shape == "(3, 224, 224)"
    assert (after - before) * 1024 < 400e6  # the decoded strip is 32 MB; the box resample adds little


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as img:
        assert img.mode == "I;16"
    rgb = to_rgb_array(tmp_path / "g16.png")
    expected = np.rint(ramp / 257).astype(np.uint8)
    assert (rgb[:, :, 0] == expected).all() and (rgb[:, :, 2] == expected).all()
    assert 100 < rgb.mean() < 155  # not all white (Pillow's convert("RGB") clips to 255)
    gray8 = tmp_path / "g8.png"
    Image.fromarray(expected).save(gray8)
    args = ((64, 64), 0.875, [0.5] * 3, [0.5] * 3)
    assert np.array_equal(load_image(tmp_path / "g16.png", *args), load_image(gray8, *args))


def test_draft_applies_to_a_big_jpeg_and_agrees(tmp_path, engine, pictures, monkeypatch):
    from PIL import JpegImagePlugin

    x, y = pictures
    big = tmp_path / "big.jpg"
    Image.fromarray(x[0]).resize((1600, 1200), Image.BICUBIC).save(big, quality=92)
    sizes = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    pp = engine.meta["preprocess"]
    args = (engine.input_size, pp["crop_fraction"], pp["mean"], pp["std"])
    drafted = load_image(big, *args, draft=True)
    assert sizes == [(200, 150)]  # decoded at 1/8 scale: the resize needs 85x64
    full = load_image(big, *args, draft=False)
    assert len(sizes) == 1
    assert np.abs(drafted - full).mean() < 0.1  # in std units: the two decodes look alike
    top = engine.classify(np.stack([drafted, full]), top_k=1)
    assert top[0][0].index == top[1][0].index == y[0]
    # A small JPEG is not drafted: its result is Engine.classify's exactly (the tests above rely on it).
    load_image(_small_jpeg(tmp_path, x[1]), *args)
    assert sizes[-1] == (96, 96)


def _small_jpeg(tmp_path, a):
    path = tmp_path / "small.jpg"
    Image.fromarray(a).save(path)
    return path


def test_crop_box_is_resize_then_crop():
    # 300x400 (h x w) to 224 at 0.875: resized to 256x341, crop top 16, left 58.
    x0, y0, x1, y1 = crop_box(300, 400, (224, 224), 0.875)
    assert (x0, y0) == pytest.approx((58 * 400 / 341, 16 * 300 / 256))
    assert (x1 - x0, y1 - y0) == pytest.approx((224 * 400 / 341, 224 * 300 / 256))


# ---- progress, interrupts ------------------------------------------------------------------------

def test_progress_bar_only_on_a_terminal(tree, engine, capsys):
    files = collection.discover([str(tree)])
    writer, _ = collection.open_writer("jsonl", None, 1)
    collection.classify_paths(engine, files, writer, top_k=1, progress=None)  # capsys: stderr is no terminal
    assert "img/s" not in capsys.readouterr().err
    collection.classify_paths(engine, files, writer, top_k=1, progress=True)
    assert "img/s" in capsys.readouterr().err  # the bar, forced on: the check above can fail


def test_subprocess_quiet_when_stderr_is_not_a_tty(tree, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mbv2_engine", "classify", str(tree), "--model", str(SHAPES),
                           "-o", str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "12 images: 12 classified" in proc.stderr
    assert "\r" not in proc.stderr and proc.stdout == ""


def test_ctrl_c_stops_cleanly_with_whole_batches(tmp_path, pictures):
    x, _ = pictures
    src = tmp_path / "big.jpg"
    Image.fromarray(x[2]).resize((2400, 1800), Image.BICUBIC).save(src, quality=95)
    d = tmp_path / "many"
    d.mkdir()
    for i in range(400):  # hard links: 400 files, one picture's bytes on disk
        os.link(src, d / f"i{i:03d}.jpg")
    out = tmp_path / "o.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mbv2_engine", "classify", str(d), "--model", str(SHAPES),
                             "--no-draft", "--batch", "4", "--workers", "1", "--threads", "1", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 8:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = out.read_text().splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines)
    rows = [json.loads(line) for line in lines]  # every line complete
    assert all("predictions" in r for r in rows)
    assert 8 <= len(rows) < 400 and len(rows) % 4 == 0  # whole batches only
    assert f"interrupted: {len(rows)} of 400 done: {len(rows)} classified" in err
    assert "Traceback" not in err


def test_normalise_lookup_is_the_arithmetic_bit_for_bit():
    from mbv2_engine.preprocess import normalise

    crop = np.random.default_rng(1).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    for mean, std in [([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), ([0.5] * 3, [0.5] * 3)]:
        ref = (crop.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        assert np.array_equal(normalise(crop, mean, std), ref.transpose(2, 0, 1))
