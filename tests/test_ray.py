"""mbv2_engine.ray on a local Ray instance: read_images, read_binary_files (corrupt files) and float batches.

Every route is checked against the single-process engine in this process
(`Engine.classify`, one image at a time), so both sides run the same
preprocessing: same labels, probabilities within `same_engine_rerun`.
One Ray instance (2 CPUs) serves the whole file: starting Ray takes seconds.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mbv2_engine
from mbv2_engine import Engine, InputError
from mbv2_engine.shapes import CLASSES, HELD_OUT_SEED, make_dataset
from tolerances import assert_close

# The imported package's own copy and folder: in CI that is the installed wheel, and the source
# tree (no compiled _core there) must not reach Ray's worker processes.
PACKAGE_ROOT = Path(mbv2_engine.__file__).resolve().parents[1]
MODEL = PACKAGE_ROOT / "mbv2_engine" / "data" / "shapes.npz"
TOP_K = 3


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it (blocked)
        return False


HAVE_RAY = all(_installed(m) for m in ("ray", "pyarrow", "pandas"))
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='Ray Data is not installed: pip install "mbv2-engine[ray]" '
                                                    '(ray[data]: ray, pandas, pyarrow)')
# Ray 2.60's DataContext.__setattr__ warns about its deprecated fields (use_push_based_shuffle,
# use_polars, ...) whenever they are set, including by the dataclass's own __init__ on the first
# DataContext.get_current(): warnings about Ray's own defaults, raised in that one module.
pytestmark = pytest.mark.filterwarnings(r"ignore::DeprecationWarning:ray\.data\.context")


def test_import_without_ray_says_how_to_install(tmp_path):
    # A subprocess in which `import ray` fails, installed or not.
    code = ("import sys; sys.modules['ray'] = None\n"
            "try:\n    import mbv2_engine.ray\nexcept ImportError as e:\n    print('IMPORT-ERROR', e)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    # Away from the repository root, whose mbv2_engine (no compiled _core in CI) `-c` would import first.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "IMPORT-ERROR" in out.stdout and 'pip install "mbv2-engine[ray]"' in out.stdout, out.stdout


@needs_ray
def test_module_imports_the_real_ray():
    import mbv2_engine.ray as mray
    import ray
    assert mray.ray is ray is sys.modules["ray"]
    assert Path(ray.__file__).parent.name == "ray" and "mbv2_engine" not in Path(ray.__file__).parts
    assert hasattr(mray.ray, "init") and hasattr(mray.ray, "data")


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    if not HAVE_RAY:
        pytest.skip('Ray Data is not installed: pip install "mbv2-engine[ray]"')
    import ray
    import ray.data
    if ray.is_initialized():
        pytest.skip("another Ray instance is already running in this process")
    # Workers are separate processes: they import mbv2_engine through the same PYTHONPATH as this one.
    saved, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), saved]))
    # Ray puts the driver's working directory on its workers' path: not the repository root.
    os.chdir(tmp_path_factory.mktemp("ray-cwd"))
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 ** 2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
        os.chdir(cwd)
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def engine():
    return Engine.load(MODEL, threads=1)


# (size (h, w), count): upscaled, the model's own size, larger, non-square; PNG and JPEG alternate.
SIZES = [((40, 40), 24), ((64, 64), 24), ((96, 96), 20), ((150, 150), 16), ((96, 144), 16)]
BAD = {  # name -> how it is spoilt
    "truncated.png": "half of a valid PNG", "truncated.jpg": "a third of a valid JPEG",
    "random.jpg": "random bytes", "empty.png": "an empty file", "tiny.png": "a valid 16x16 PNG (< 32x32)",
}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A directory of about 100 shapes pictures at various sizes, PNG and JPEG, plus corrupt files.
    Returns (directory, {good path: true label}, [bad paths])."""
    root = tmp_path_factory.mktemp("ray_pictures")
    good = {}
    for k, ((h, w), n) in enumerate(SIZES):
        images, labels = make_dataset(n, HELD_OUT_SEED + 1 + k, max(h, w) if h == w else h)
        for i, (img, label) in enumerate(zip(images, labels)):
            pil = Image.fromarray(img)
            if pil.size != (w, h):
                pil = pil.resize((w, h), Image.BILINEAR)
            path = root / f"s{k}_{i:02d}.{'png' if i % 2 else 'jpg'}"
            pil.save(path, quality=90) if path.suffix == ".jpg" else pil.save(path)
            good[str(path)] = int(label)
    png, jpg = root / "s1_01.png", root / "s1_00.jpg"
    (root / "truncated.png").write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    (root / "truncated.jpg").write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 3])
    (root / "random.jpg").write_bytes(np.random.default_rng(7).integers(0, 256, 3000, np.uint8).tobytes())
    (root / "empty.png").write_bytes(b"")
    Image.fromarray(make_dataset(1, HELD_OUT_SEED, 16)[0][0]).save(root / "tiny.png")
    return root, good, [str(root / name) for name in BAD]


def expected_for(engine, image):
    return engine.classify(image, TOP_K)


def check_rows(rows, expected: dict):
    """Each row (a dict from the result) against the engine's own predictions for its path."""
    assert {r["path"] for r in rows} == set(expected), "rows and paths differ"
    for r in rows:
        want = expected[r["path"]]
        assert r["error"] is None, (r["path"], r["error"])
        assert list(r["top_k_indices"]) == [p.index for p in want], r["path"]
        assert list(r["top_k_labels"]) == [p.label for p in want], r["path"]
        assert (r["index"], r["label"]) == (want[0].index, want[0].label)
        assert_close(r["top_k_probabilities"], [p.probability for p in want], "same_engine_rerun")
        assert_close(r["probability"], want[0].probability, "same_engine_rerun")


def rows_of(ds):
    import pyarrow as pa
    import ray
    return pa.concat_tables(ray.get(ds.to_arrow_refs())).to_pylist()


@needs_ray
def test_read_images_matches_engine(ray_local, engine, pictures):
    from mbv2_engine.ray import classify_dataset
    _, good, _ = pictures
    paths = sorted(good)
    ds = ray_local.data.read_images(paths, mode="RGB", include_paths=True)
    rows = rows_of(classify_dataset(ds, MODEL, top_k=TOP_K, actors=1, threads=1, batch_size=32))
    # read_images decodes with Pillow and converts to RGB: the engine gets the same arrays.
    expected = {p: expected_for(engine, np.asarray(Image.open(p).convert("RGB"))) for p in paths}
    check_rows(rows, expected)
    # The labels mean something: the shipped model recognises the held-out shapes.
    accuracy = np.mean([r["label"] == CLASSES[good[r["path"]]] for r in rows])
    assert accuracy >= 0.9, f"accuracy {accuracy:.1%} on {len(rows)} held-out pictures"


@needs_ray
def test_binary_files_route_gives_error_rows(ray_local, engine, pictures, tmp_path):
    import pyarrow.parquet as pq
    from mbv2_engine.ray import OUTPUT_COLUMNS, classify_dataset
    root, good, bad = pictures
    ds = ray_local.data.read_binary_files(str(root), include_paths=True)
    out = tmp_path / "predictions"
    classify_dataset(ds, MODEL, top_k=TOP_K, actors=1, threads=1, batch_size=25).write_parquet(str(out))
    table = pq.read_table(out)
    assert table.column_names == ["path", *OUTPUT_COLUMNS]
    rows = table.to_pylist()
    assert len(rows) == len(good) + len(bad)
    errors = {r["path"]: r for r in rows if r["error"] is not None}
    assert sorted(errors) == sorted(bad), f"error rows for {sorted(errors)}, corrupt files {sorted(bad)}"
    for r in errors.values():
        assert r["label"] is None and r["probability"] is None and r["top_k_labels"] is None, r
        assert r["error"].startswith("InputError: "), r  # says why, not a crash's traceback
    assert "smaller than the minimum" in errors[str(root / "tiny.png")]["error"]
    assert "empty" in errors[str(root / "empty.png")]["error"]
    assert "cannot decode" in errors[str(root / "random.jpg")]["error"]

    def engine_on_file(path):  # the class decodes each file with Pillow and hands it to the engine
        with Image.open(path) as img:
            return expected_for(engine, img)
    check_rows([r for r in rows if r["error"] is None], {p: engine_on_file(p) for p in good})
    # A PNG decodes the same from its path: the engine's answer for the file itself.
    for p in [p for p in good if p.endswith(".png")][:10]:
        assert engine.classify(p, TOP_K) == engine_on_file(p)


@needs_ray
def test_float_batches_match_engine(ray_local, engine, pictures):
    from mbv2_engine.ray import classify_dataset
    _, good, _ = pictures
    paths = sorted(good)[:40]
    x = np.concatenate([engine.preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in paths])
    x[5, 1, 10, 10] = np.nan  # refused by the engine: that row's error, the others classified
    ds = ray_local.data.from_items([{"path": p, "x": xi} for p, xi in zip(paths, x)])
    rows = rows_of(classify_dataset(ds, MODEL, top_k=TOP_K, column="x", batch_size=16))
    bad = [r for r in rows if r["error"] is not None]
    assert [r["path"] for r in bad] == [paths[5]] and "NaN" in bad[0]["error"]
    check_rows([r for r in rows if r["error"] is None],
               {p: expected_for(engine, x[i:i + 1])[0] for i, p in enumerate(paths) if i != 5})


@needs_ray
def test_class_refuses_bad_arguments_and_batches():
    from mbv2_engine.ray import ImageClassifier
    clf = ImageClassifier(MODEL, top_k=2, threads=2)
    assert clf.engine.plan.threads == 2
    for kwargs in ({"top_k": 0}, {"threads": 0}, {"threads": 1.5}):
        with pytest.raises(InputError):
            ImageClassifier(MODEL, **kwargs)
    with pytest.raises(InputError, match="none of the columns"):
        clf({"pixels": np.zeros((1, 3, 64, 64), np.float32)})
    with pytest.raises(InputError, match="float32"):
        clf({"image": np.zeros((2, 3, 64, 64), np.float64)})
    # A (N, 3, H, W) float32 column, a uint8 (N, H, W, 3) column and a grayscale row all work.
    images, _ = make_dataset(3, HELD_OUT_SEED, 64)
    want = [p[0].label for p in clf.engine.classify(np.concatenate([clf.engine.preprocess(i) for i in images]), 2)]
    assert clf({"image": images}).column("label").to_pylist() == want
    gray = np.asarray(Image.fromarray(images[0]).convert("L"))
    t = clf({"image": np.array([gray, images[1][:20]], dtype=object), "id": np.array([7, 8])})
    assert t.column_names[0] == "id" and t.column("id").to_pylist() == [7, 8]
    assert t.column("label").to_pylist()[0] == clf.engine.classify(np.asarray(Image.fromarray(gray).convert("RGB")),
                                                                   1)[0].label
    assert t.column("error").to_pylist()[1].startswith("InputError")
