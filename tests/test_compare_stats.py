"""bench/compare.py's comparison with the best peer: the ratio of medians, the
median of per-repetition ratios and the share of repetitions won."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
compare = pytest.importorskip("compare", reason="bench/compare.py needs the bench extra (tqdm, torch)")


def test_paired_ratios_compare_each_repetition_not_the_medians():
    # The engine is slow in the one repetition the peer was fast, and fast in the others.
    samples = {"mbv2-engine": [1.0, 3.0, 3.2], "litert-xnnpack": [2.0, 2.5, 4.0], "onnxruntime": [9.0, 9.0, 9.0]}
    runners = {name: SimpleNamespace(isa="x") for name in samples}
    w = SimpleNamespace(case=SimpleNamespace(batch=1), gflops=lambda seconds: 1.0 / seconds)
    rows = compare.summarize(w, runners, samples)
    engine = rows["mbv2-engine"]
    assert engine["vs_best_peer"] == pytest.approx(3.0 / 2.5)  # litert's median is the best peer's
    assert engine["paired_vs_best_peer"] == pytest.approx(0.8)  # median of 0.5, 1.2, 0.8
    assert engine["won_vs_best_peer"] == pytest.approx(2 / 3)
    assert rows["litert-xnnpack"]["paired_vs_best_peer"] == pytest.approx(1.0)
    assert rows["litert-xnnpack"]["won_vs_best_peer"] == 0.0
    assert rows["onnxruntime"]["vs_best_peer"] == pytest.approx(9.0 / 2.5)


def test_no_peer_no_comparison():
    samples = {"mbv2-engine": [1.0, 2.0], "mbv2-engine-ref": [5.0, 6.0]}
    runners = {name: SimpleNamespace(isa="x") for name in samples}
    w = SimpleNamespace(case=SimpleNamespace(batch=8), gflops=lambda seconds: 1.0)
    rows = compare.summarize(w, runners, samples)
    assert rows["mbv2-engine"]["vs_best_peer"] is None
    assert rows["mbv2-engine"]["paired_vs_best_peer"] is None
    assert rows["mbv2-engine"]["images_per_s"] == pytest.approx(8 / 1.5)


def test_each_result_is_a_share_of_the_measured_peak(monkeypatch):
    monkeypatch.setattr(compare, "core_peak", lambda precision: {"float32": (100.0, "avx512")}.get(precision))
    case = compare.CASES["w1.0-224-b1-t2"]
    w = SimpleNamespace(case=case, macs_per_image=300_000_000, gflops=lambda seconds: 50.0 / seconds)
    rows = compare.summarize(w, {"mbv2-engine": SimpleNamespace(isa="x")}, {"mbv2-engine": [0.5, 0.5]})
    assert rows["mbv2-engine"]["share_of_peak"] == pytest.approx(100.0 / (2 * 100.0))  # 2 threads
    text = compare.table(w, rows, {}, {}, 2)
    assert "peak: 2 x 100.0 GFLOP/s (avx512 FMA, measured)" in text and " 50%" in text
    bf16 = SimpleNamespace(case=compare.CASES["bf16-w1.0-224-b1-t1"], macs_per_image=1, gflops=lambda s: 1.0)
    rows = compare.summarize(bf16, {"mbv2-engine-bf16": SimpleNamespace(isa="x")}, {"mbv2-engine-bf16": [1.0]})
    assert rows["mbv2-engine-bf16"]["share_of_peak"] is None
    assert "peak: no bf16 peak on this CPU" in compare.table(bf16, rows, {}, {}, 1)
    monkeypatch.setattr(compare, "core_peak", lambda precision: (3000.0, "amx"))
    assert "peak: 1 x 3000.0 GFLOP/s (amx tdpbf16ps, measured)" in compare.table(bf16, rows, {}, {}, 1)


def test_the_core_peak_is_the_best_isa_this_cpu_has():
    from mbv2_engine import _core

    peak = compare.core_peak("float32")
    x86 = {"avx2", "avx512"} & set(_core.available_isas())
    assert (peak is None) == (not x86)
    if peak:
        assert peak[1] in x86 and peak[0] > 0
