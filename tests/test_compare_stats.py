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
