"""bench/compare.py's bf16 cases (issue 15, item 4): their names, which providers run in them and which one
is the best peer (OpenVINO's default precision, the float32 peers only context), the error columns and the
verdict, and the cases end to end through `compare.main` on a tiny model (width 0.35 at 64x64, 2
repetitions; the ONNX export OpenVINO needs is most of its ~15 s).

The end-to-end tests skip where the CPU lacks AVX512-BF16 (the engine's bf16 then raises DeviceError) or
OpenVINO is not installed."""
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mbv2_engine.tolerances import TOLERANCES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
compare = pytest.importorskip("compare", reason="bench/compare.py needs the bench extra (tqdm, torch)")
providers = pytest.importorskip("providers")

BF16_CASES = ["bf16-w1.0-224-b1-t1", "bf16-w1.0-224-b1-t2", "bf16-w1.0-224-b8-t2"]
FLOAT_PEERS = {"torch-eager", "torch-channels-last", "torch-compile", "onnxruntime", "openvino", "litert-xnnpack"}
BF16_PROVIDERS = {"mbv2-engine-bf16", "openvino-default", "mbv2-engine"} | FLOAT_PEERS
TINY = providers.Case(width=0.35, size=64, precision="bf16")


def _bf16_isas() -> list[str]:
    try:
        from mbv2_engine import _core
    except ImportError:
        return []
    return getattr(_core, "available_bf16_isas", list)()


def _bf16_cpu() -> bool:
    return "avx512" in _bf16_isas()


needs_bf16 = pytest.mark.skipif(not _bf16_cpu(), reason="this CPU (or this build) has no AVX512-BF16 kernels")
needs_openvino = pytest.mark.skipif(not all(map(providers._importable, ("openvino", "onnx", "onnxscript"))),
                                    reason="OpenVINO (or the ONNX exporter) is not installed")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A folder holding the tiny bf16 case's workload (written once for the module)."""
    root = tmp_path_factory.mktemp("bf16-bench")
    providers.make_workload(TINY, root)
    return root


def test_bf16_cases_are_the_issues_and_run_by_default():
    assert list(providers.CASES)[-3:] == BF16_CASES
    assert {(c.width, c.size, c.batch, c.threads) for c in map(providers.CASES.get, BF16_CASES)} == \
        {(1.0, 224, 1, 1), (1.0, 224, 1, 2), (1.0, 224, 8, 2)}
    assert all(providers.CASES[name].precision == "bf16" for name in BF16_CASES)
    assert TINY.name == "bf16-w0.35-64-b1-t1"
    assert set(BF16_CASES) <= set(compare.parse_args([]).cases)  # one command runs everything


def test_each_bf16_case_gets_its_providers_and_openvino_default_is_its_best_peer():
    names = list(providers.PROVIDERS)
    for case in map(providers.CASES.get, BF16_CASES):
        assert set(compare.case_providers(names, case)) == BF16_PROVIDERS
        assert {n for n in BF16_PROVIDERS if providers.PROVIDERS[n].is_peer(case)} == {"openvino-default"}
    floats, int8 = providers.CASES["w1.0-224-b1-t1"], providers.CASES["int8-w1.0-224-b1-t1"]
    assert {n for n in compare.case_providers(names, floats) if providers.PROVIDERS[n].is_peer(floats)} == FLOAT_PEERS
    assert "mbv2-engine-bf16" not in compare.case_providers(names, floats) + compare.case_providers(names, int8)
    assert "openvino-default" in compare.case_providers(names, int8)
    assert not providers.PROVIDERS["openvino-default"].is_peer(int8)  # context there: int8 cases compare int8
    assert providers.PROVIDERS["mbv2-engine-bf16"].tolerance == "bf16_vs_f32"
    assert providers.PROVIDERS["openvino-default"].tolerance == "openvino_default_vs_f32"
    with pytest.raises(providers.Unavailable, match="bf16 cases, not float32"):
        providers.ready(providers.PROVIDERS["mbv2-engine-bf16"], SimpleNamespace(case=floats))


def test_bf16_table_measures_against_openvino_default_and_gives_the_verdict():
    # LiteRT is the fastest, but a float32 peer: in a bf16 case the ratio is to OpenVINO's default.
    samples = {"mbv2-engine-bf16": [2.0, 2.2, 1.8], "openvino-default": [2.5, 2.0, 2.5],
               "litert-xnnpack": [1.0, 1.0, 1.0], "mbv2-engine": [3.0, 3.0, 3.0]}
    acc = {"mbv2-engine-bf16": 0.09, "openvino-default": 0.12, "litert-xnnpack": 1e-5, "mbv2-engine": 1e-5}
    runners = {n: SimpleNamespace(isa="onednn-bf16" if n == "openvino-default" else "x",
                                  accuracy={"max_abs_error": acc[n], "mean_abs_error": acc[n] / 5,
                                            "top1_agreement": 0.875}) for n in samples}
    w = SimpleNamespace(case=providers.CASES["bf16-w1.0-224-b8-t2"], macs_per_image=300_000_000,
                        gflops=lambda seconds: 1.0)
    rows = compare.summarize(w, runners, samples)
    assert rows["mbv2-engine-bf16"]["vs_best_peer"] == pytest.approx(2.0 / 2.5)
    assert rows["mbv2-engine-bf16"]["paired_vs_best_peer"] == pytest.approx(0.8)  # 0.8, 1.1, 0.72
    assert rows["mbv2-engine-bf16"]["won_vs_best_peer"] == pytest.approx(2 / 3)
    assert rows["litert-xnnpack"]["vs_best_peer"] == pytest.approx(1.0 / 2.5)
    text = compare.table(w, rows, {}, {}, 3)
    assert "best peer openvino-default" in text and "onednn-bf16" in text
    assert "max err" in text and "0.0900" in text and "88%" in text
    assert "bf16 max |logit error| vs PyTorch float32: mbv2-engine-bf16 0.0900, openvino-default 0.1200 " \
           "(within OpenVINO default's;" in text
    rows["mbv2-engine-bf16"]["vs_torch_f32"]["max_abs_error"] = 0.13
    assert "(ABOVE OpenVINO default's;" in compare.table(w, rows, {}, {}, 3)
    del rows["openvino-default"]
    assert "bf16 max |logit error|" not in compare.table(w, rows, {}, {}, 3)  # no peer, no verdict


@needs_bf16
def test_engine_bf16_provider_runs_bf16_and_is_checked(tiny_root):
    w = providers.make_workload(TINY, tiny_root)
    assert not (w.dir / "calibration.npy").exists()  # bf16 needs no calibration
    runner = providers.ready(providers.PROVIDERS["mbv2-engine-bf16"], w)
    from mbv2_engine import _core
    assert runner.isa == _core.available_bf16_isas()[-1]  # avx512, or amx on a CPU with AMX-BF16
    # Really bf16: float32 is within 2e-5 of PyTorch here (seen 1.2e-5), bf16 about 0.13 on logits up to 1.75.
    assert 1e-3 < runner.accuracy["max_abs_error"] <= TOLERANCES["bf16_vs_f32"][0]
    float32 = providers.ready(providers.PROVIDERS["mbv2-engine"], w)
    assert float32.accuracy["max_abs_error"] < 1e-4
    with pytest.raises(AssertionError, match="mbv2-engine-bf16 vs PyTorch eager"):
        providers.checked("mbv2-engine-bf16", runner, w.expected + 0.5, top1=False, tolerance="bf16_vs_f32")


@needs_bf16
@needs_openvino
def test_bf16_case_end_to_end(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(providers.CASES, TINY.name, TINY)
    monkeypatch.setattr(compare, "RESULTS", tmp_path / "results")
    names = ["mbv2-engine", "mbv2-engine-bf16", "openvino-default", "openvino"]
    argv = ["--cases", TINY.name, "--reps", "2", "--warmup-ms", "1", "--providers"]
    assert compare.main(argv + names + ["--workdir", str(tiny_root)]) == 0
    saved = sorted((tmp_path / "results").glob("*.json"))
    result = json.loads(saved[-1].read_text())["cases"][0]
    rows = result["providers"]
    assert set(rows) == set(names) and not result["skipped"] and not result["wrong"]
    assert all(len(r["samples_ms"]) == 2 for r in rows.values())
    resolved = rows["openvino-default"]["isa"]
    # With AMX-BF16, oneDNN runs the convolutions on the tiles (brgconv_avx512_amx_*_bf16), also here.
    assert resolved == ("onednn-bf16-amx" if "amx" in _bf16_isas() else "onednn-bf16")
    assert result["bf16"]["resolved"] == resolved
    assert rows["openvino"]["isa"] == "onednn"  # the f32 hint: context, not the best peer
    assert rows["openvino-default"]["vs_best_peer"] == pytest.approx(1.0)
    best_ms = rows["openvino-default"]["median_ms"]
    for name in ("mbv2-engine-bf16", "openvino", "mbv2-engine"):
        assert rows[name]["vs_best_peer"] == pytest.approx(rows[name]["median_ms"] / best_ms)
    assert rows["openvino-default"]["vs_torch_f32"]["max_abs_error"] > 1e-3  # OpenVINO ran bf16, not f32
    assert rows["openvino"]["vs_torch_f32"]["max_abs_error"] < 1e-4
    assert result["bf16"]["verdict"].startswith("bf16 max |logit error| vs PyTorch float32: mbv2-engine-bf16 ")
    assert result["bf16"]["verdict"] in capsys.readouterr().out

    # Wrong numbers are reported and not timed, and the run exits 1 (on a copy: the ONNX file is reused).
    shutil.copytree(tiny_root / TINY.name, tmp_path / "work" / TINY.name)
    expected = tmp_path / "work" / TINY.name / "expected.npy"
    np.save(expected, np.load(expected) + 0.5)
    assert compare.main(argv + ["mbv2-engine-bf16", "openvino-default", "--workdir", str(tmp_path / "work")]) == 1
    result = json.loads(sorted((tmp_path / "results").glob("*.json"))[-1].read_text())["cases"][0]
    assert set(result["wrong"]) == {"mbv2-engine-bf16", "openvino-default"} and not result["providers"]
