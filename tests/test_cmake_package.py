"""The CMake package of an installed wheel: examples/cpp_host builds against it
through find_package(mbv2_engine) and prints the same top-5 as the Python engine.

Needs the installed wheel (pip install .), cmake and a C++ compiler; CI has all
three. From a source tree (PYTHONPATH=<repo>) there is no package: skipped.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mbv2_engine import Engine
from mbv2_engine import format as wformat
from mbv2_engine.cli import cmake_dir

ROOT = Path(__file__).resolve().parents[1]
# The same logits give probabilities equal to printing precision; the slack
# covers a different thread count (and so summation order) in the two engines.
PROB_TOLERANCE = 2e-6

pytestmark = pytest.mark.skipif(not (cmake_dir() / "mbv2_engineConfig.cmake").is_file() or not shutil.which("cmake"),
                                reason="needs the installed wheel's CMake package (pip install .) and cmake")


def write_ppm(path: Path, rgb: np.ndarray) -> Path:
    path.write_bytes(b"P6\n# test picture\n%d %d\n255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.tobytes())
    return path


@pytest.fixture(scope="module")
def cpp_host(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cpp_host")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    # Run outside the source tree, where `python -m` would find ./mbv2_engine first.
    config = subprocess.run([sys.executable, "-m", "mbv2_engine", "--cmake-dir"], cwd=build, check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["cmake", "-S", ROOT / "examples" / "cpp_host", "-B", build, *generator,
                    f"-DCMAKE_PREFIX_PATH={config}", "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", build], check=True, capture_output=True)
    return build / "cpp_host"


@pytest.fixture(scope="module")
def labelled_model(small_model_path, tmp_path_factory) -> Path:
    arrays, meta, _ = wformat.load(small_model_path)
    meta = {**meta, "labels": [f"label {i} of {meta['num_classes']}" for i in range(meta["num_classes"])]}
    return Path(wformat.save(tmp_path_factory.mktemp("labelled") / "labelled.npz", arrays, meta))


def host_top5(cpp_host: Path, model: Path, image: Path) -> list[tuple[int, float, str]]:
    out = subprocess.run([cpp_host, model, image], check=True, capture_output=True, text=True).stdout
    rows = [line.split(" ", 2) for line in out.splitlines()]
    return [(int(i), float(p), label) for i, p, label in rows]


def expect_same_top5(cpp_host: Path, model: Path, image: Path) -> None:
    host = host_top5(cpp_host, model, image)
    python = Engine.load(model).classify(str(image), top_k=5)
    assert [i for i, _, _ in host] == [p.index for p in python]
    assert [label for _, _, label in host] == [p.label for p in python]
    np.testing.assert_allclose([p for _, p, _ in host], [p.probability for p in python], rtol=0, atol=PROB_TOLERANCE)


def test_config_dir_is_inside_the_package():
    assert cmake_dir().is_relative_to(Path(sys.modules["mbv2_engine"].__file__).parent)
    assert (cmake_dir() / "mbv2_engineConfigVersion.cmake").is_file()


def test_resized_picture_matches_python(cpp_host, small_model_path, sample_rgb, tmp_path):
    # 90x120 -> 73x98 with Pillow's bilinear filter -> centre 64x64: the host reproduces Pillow's resize.
    expect_same_top5(cpp_host, Path(small_model_path), write_ppm(tmp_path / "sample.ppm", sample_rgb))


def test_picture_at_crop_size_matches_python(cpp_host, labelled_model, tmp_path):
    # 73x73 at crop 0.875 needs no resize (round(64 / 0.875) = 73): only the crop and normalisation differ in code.
    rgb = np.random.default_rng(3).integers(0, 256, (73, 73, 3), dtype=np.uint8)
    expect_same_top5(cpp_host, labelled_model, write_ppm(tmp_path / "noise.ppm", rgb))


def test_host_reports_a_bad_model(cpp_host, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a weight file")
    result = subprocess.run([cpp_host, bad, write_ppm(tmp_path / "x.ppm", np.zeros((40, 40, 3), np.uint8))],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "invalid format" in result.stderr and "bad.npz" in result.stderr
