"""The mbv2-engine command line, run in-process through `main` and once as a real process."""
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mbv2_engine
from mbv2_engine import Engine
from mbv2_engine.cli import main
from mbv2_engine.export import random_model


@pytest.fixture(scope="module")
def images(tmp_path_factory, sample_rgb):
    d = tmp_path_factory.mktemp("imgs")
    Image.fromarray(sample_rgb).save(d / "a.png")
    Image.fromarray(sample_rgb[::-1].copy()).save(d / "b.jpg")
    return [str(d / "a.png"), str(d / "b.jpg")]


def test_export_random_then_info(tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert main(["export", "--random", "--seed", "5", "--width", "0.5", "--size", "96x80",
                 "--num-classes", "7", "-o", str(out), "--quiet"]) == 0
    engine = Engine.load(out)
    assert engine.num_classes == 7 and engine.input_size == (96, 80)
    assert engine.meta["width_mult"] == 0.5 and engine.meta["source"]["seed"] == 5
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "block16" in text and "arena" in text and "multiply-adds" in text and "96x80" in text


def test_classify_prints_top5_per_image(small_model_path, images, capsys):
    assert main(["classify", *images, "--model", str(small_model_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == images[0] and lines[6] == images[1]
    assert len(lines) == 12 and all("class " in line for line in lines[1:6])


@pytest.mark.parametrize("wrap", [False, True])
def test_export_from_torch(tmp_path, wrap):
    model = random_model(seed=2, width_mult=0.35, num_classes=5, size=(64, 64), progress=False)
    sd = model.state_dict()
    torch.save({"state_dict": sd} if wrap else sd, tmp_path / "s.pth")
    assert main(["export", "--from-torch", str(tmp_path / "s.pth"), "--width", "0.35",
                 "-o", str(tmp_path / "t.npz")]) == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    assert (Engine.load(tmp_path / "t.npz").run(x).argmax(1) == ref.argmax(1)).all()


def test_export_from_torch_wrong_keys_is_a_clear_error(tmp_path, capsys):
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "bad.pth")
    assert main(["export", "--from-torch", str(tmp_path / "bad.pth"), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "features.0.0.weight" in err


def test_missing_model_is_exit_2(tmp_path, images, capsys):
    assert main(["classify", images[0], "--model", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_bad_size_argument(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--random", "--size", "big", "-o", "x.npz"])
    assert "size must be H or HxW" in capsys.readouterr().err


def test_demo_runs_and_checks_against_pytorch(tmp_path):
    # The child imports the same mbv2_engine as this test (installed, or the source tree).
    env = {**os.environ, "PYTHONPATH": str(Path(mbv2_engine.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-m", "mbv2_engine", "demo", "--out-dir", str(tmp_path),
                           "--repeat", "2"], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo passed" in proc.stdout and "PyTorch eager" in proc.stdout
    assert (tmp_path / "mbv2_random.npz").is_file() and (tmp_path / "sample.png").is_file()


def test_console_script_runs():
    try:
        distribution("mbv2-engine")
    except PackageNotFoundError:
        pytest.skip("running from a source tree: the console script exists once the package is installed")
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("mbv2-engine") == "mbv2_engine.cli:main"
    proc = subprocess.run([shutil.which("mbv2-engine"), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "export" in proc.stdout and "demo" in proc.stdout


def test_bench_prints_time_and_per_block_profile(small_model_path, capsys):
    assert main(["bench", str(small_model_path), "--repeat", "2", "--threads", "1", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "GFLOP/s" in out and "1 thread(s)" in out
    assert "stem+block0" in out and "block16+head+classifier" in out


def test_bench_prints_the_share_of_the_measured_fma_peak(small_model_path, capsys):
    from mbv2_engine import _core

    assert _core.fma_peak_gflops("ref") == -1 and _core.fma_peak_gflops("neon") == -1
    for isa in {"avx2", "avx512"} & set(_core.available_isas()):
        peak = _core.fma_peak_gflops(isa, 20000, 3)
        assert 1 < peak < 10000, f"{isa}: {peak} GFLOP/s is no FMA peak"
        assert main(["bench", str(small_model_path), "--repeat", "2", "--threads", "1", "--isa", isa,
                     "--profile"]) == 0
        out = capsys.readouterr().out
        assert f"GFLOP/s {isa} FMA peak)" in out and "% of 1 x " in out and "peak" in out.splitlines()[1]


def test_dtype_bf16_reaches_classify_info_and_bench(small_model_path, images, capsys):
    """--isa ref: the bf16 reference kernels run on any CPU, so the flag is tested everywhere."""
    model = str(small_model_path)
    assert main(["classify", images[0], "--model", model, "--dtype", "bf16", "--isa", "ref", "--top-k", "1"]) == 0
    top = Engine.load(small_model_path, dtype="bf16", isa="ref").classify(images[0], top_k=1)[0]
    assert capsys.readouterr().out.splitlines()[1].split() == [f"{top.probability:.4f}", *top.label.split()]
    assert main(["info", model, "--dtype", "bf16", "--isa", "ref"]) == 0
    out = capsys.readouterr().out
    assert "bf16 on ISA ref" in out and "mbv2_bf16_expand_relu6_ukernel_1x8__ref" in out
    assert main(["bench", model, "--dtype", "bf16", "--isa", "ref", "--repeat", "2", "--threads", "1"]) == 0
    assert "bf16 on ISA ref" in capsys.readouterr().out
    for isa, instruction in (("avx512", "vdpbf16ps"), ("amx", "tdpbf16ps")):
        if isa in mbv2_engine._core.available_bf16_isas():
            assert main(["bench", model, "--dtype", "bf16", "--isa", isa, "--repeat", "2", "--threads", "1"]) == 0
            assert f"GFLOP/s {isa} bf16 ({instruction}) peak)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["info", model, "--dtype", "fp16"])
    assert info.value.code == 2 and "--dtype: invalid choice: 'fp16'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["export", "--random", "--width", "0", "-o", "x.npz"], "--width: must be a number > 0, got '0'"),
    (["export", "--random", "--width", "nan", "-o", "x.npz"], "--width: must be a number > 0, got 'nan'"),
    (["export", "--random", "--num-classes", "0", "-o", "x.npz"], "--num-classes: must be an integer >= 1, got '0'"),
    (["bench", "m.npz", "--repeat", "0"], "--repeat: must be an integer >= 1, got '0'"),
    (["bench", "m.npz", "--batch", "-1"], "--batch: must be an integer >= 1, got '-1'"),
    (["classify", "a.png", "--model", "m.npz", "--top-k", "0"], "--top-k: must be an integer >= 1, got '0'"),
])
def test_out_of_range_numbers_are_usage_errors(argv, fragment, capsys):
    """`export --width 0 --num-classes 0` wrote a width-1.0, 1000-class model; `bench --repeat 0` printed nan."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and fragment in capsys.readouterr().err
