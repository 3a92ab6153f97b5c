"""bench/compare.py's int8 cases: their names, which providers run in them, the error columns, and the
engine's and LiteRT's int8 providers end to end on a tiny model (width 0.35 at 64x64, a few seconds).

ONNX Runtime's and OpenVINO's int8 need the ONNX export (about 13 s here), so they are left to
`python bench/compare.py --quick --cases int8-w0.35-224-b1-t1`."""
import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
compare = pytest.importorskip("compare", reason="bench/compare.py needs the bench extra (tqdm, torch)")
providers = pytest.importorskip("providers")

INT8_CASES = ["int8-w1.0-224-b1-t1", "int8-w1.0-224-b1-t2", "int8-w1.0-224-b8-t2", "int8-w0.35-224-b1-t1"]
FLOAT_CASES = ["w1.0-224-b1-t1", "w1.0-224-b1-t2", "w1.0-224-b8-t2", "w1.0-160-b1-t1", "w0.5-224-b1-t1",
               "w0.35-224-b1-t1"]
INT8_PROVIDERS = {"mbv2-engine", "mbv2-engine-int8", "onnxruntime-int8", "openvino-int8", "litert-xnnpack-int8",
                  "openvino-default"}


def test_int8_cases_are_named_apart_and_float_cases_unchanged():
    assert list(providers.CASES)[:len(FLOAT_CASES + INT8_CASES)] == FLOAT_CASES + INT8_CASES  # bf16 cases follow
    assert all(providers.CASES[name].precision == "int8" for name in INT8_CASES)
    assert providers.Case(width=0.35, size=64, precision="int8").name == "int8-w0.35-64-b1-t1"
    assert compare.parse_args([]).cases == list(providers.CASES)  # one command runs everything


def test_each_case_gets_the_providers_of_its_precision():
    names = list(providers.PROVIDERS)
    assert set(compare.case_providers(names, providers.CASES["int8-w1.0-224-b1-t1"])) == INT8_PROVIDERS
    floats = set(compare.case_providers(names, providers.CASES["w1.0-224-b1-t1"]))
    assert "mbv2-engine" in floats and "litert-xnnpack" in floats and not floats & (INT8_PROVIDERS - {"mbv2-engine"})
    int8_case = providers.CASES["int8-w1.0-224-b1-t1"]
    int8_peers = {n for n in INT8_PROVIDERS if providers.PROVIDERS[n].is_peer(int8_case)}
    assert int8_peers == {"onnxruntime-int8", "openvino-int8", "litert-xnnpack-int8"}  # "best peer" is int8
    w = SimpleNamespace(case=providers.CASES["w1.0-224-b1-t1"])
    with pytest.raises(providers.Unavailable, match="int8 cases, not float32"):
        providers.ready(providers.PROVIDERS["onnxruntime-int8"], w)


def test_int8_table_reports_the_error_against_float32_and_the_verdict():
    samples = {"mbv2-engine-int8": [2.0, 2.0], "onnxruntime-int8": [3.0, 3.0], "openvino-default": [1.0, 1.0]}
    acc = {"mbv2-engine-int8": 0.30, "onnxruntime-int8": 0.36, "openvino-default": 0.15}
    runners = {n: SimpleNamespace(isa="x", accuracy={"max_abs_error": acc[n], "mean_abs_error": acc[n] / 5,
                                                     "top1_agreement": 0.75}) for n in samples}
    case = providers.CASES["int8-w1.0-224-b8-t2"]
    w = SimpleNamespace(case=case, macs_per_image=300_000_000, gflops=lambda seconds: 1.0)
    rows = compare.summarize(w, runners, samples)
    assert rows["mbv2-engine-int8"]["vs_best_peer"] == pytest.approx(2 / 3)  # openvino-default is no peer
    assert rows["onnxruntime-int8"]["vs_torch_f32"]["max_abs_error"] == 0.36
    text = compare.table(w, rows, {}, {}, 2)
    assert "max err" in text and "0.3000" in text and "75%" in text
    assert "mbv2-engine-int8 0.3000, onnxruntime-int8 0.3600 (within ONNX Runtime's;" in text
    rows["mbv2-engine-int8"]["vs_torch_f32"]["max_abs_error"] = 0.4
    assert "(ABOVE ONNX Runtime's;" in compare.table(w, rows, {}, {}, 2)
    float_w = SimpleNamespace(case=providers.CASES["w1.0-224-b1-t1"], macs_per_image=1, gflops=lambda s: 1.0)
    assert "max err" not in compare.table(float_w, rows, {}, {}, 2)


def test_engine_and_litert_int8_on_a_tiny_model(tmp_path):
    pytest.importorskip("mbv2_engine.quantize", reason="the quantizer is not in this mbv2_engine")
    pytest.importorskip("ai_edge_litert", reason="LiteRT is not installed")
    w = providers.make_workload(providers.Case(width=0.35, size=64, precision="int8"), tmp_path)
    assert w.calibration.shape == (32, 3, 64, 64)
    assert not np.array_equal(w.calibration[:1], w.x)  # calibrated on other inputs than the timed ones
    for name, isa in (("mbv2-engine-int8", None), ("litert-xnnpack-int8", "xnnpack")):
        # The bench's entry is for 224x224; the 64x64 model has its own, measured, in the same table.
        provider = dataclasses.replace(providers.PROVIDERS[name], tolerance="int8_vs_f32_small")
        runner = providers.ready(provider, w)
        assert isa is None or runner.isa == isa
        assert runner.accuracy["max_abs_error"] > 1e-3  # really int8, not the float model
        assert set(runner.accuracy) >= {"max_abs_error", "mean_abs_error", "top1_agreement"}
    files = [w.dir / "weights-int8.npz", w.dir / "model-int8.tflite"]
    stamps = [f.stat().st_mtime_ns for f in files]
    providers.PROVIDERS["litert-xnnpack-int8"].prepare(w)  # prepared once: the memory probe only loads
    assert [f.stat().st_mtime_ns for f in files] == stamps
