"""Property-based tests (issue 18, item 6): hypothesis draws the shapes, strides, channel counts,
padding rules and batch sizes, and the fast path must match the float64 reference on every draw;
it draws corruptions of a valid weight file, and each must be refused with an Mbv2Error (never
another exception, never a crash) or, if it touched nothing the format checks, load as before."""
import io
import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mbv2_engine import _core, reference  # noqa: E402
from mbv2_engine import format as wformat  # noqa: E402
from mbv2_engine.arch import BlockSpec, build_arch  # noqa: E402
from mbv2_engine.errors import Mbv2Error  # noqa: E402
from test_core_blocks import block_arrays, reference_block, run_block  # noqa: E402
from test_core_network import make_model, network  # noqa: E402
from tolerances import assert_close  # noqa: E402

BEST_ISA = _core.available_isas()[-1]  # the fastest this CPU runs, as "auto" picks
# Each example runs C++ kernels and a float64 numpy pass: no per-example deadline, a bounded count.
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pad_rules = st.one_of(st.sampled_from(["torch", "same"]), st.lists(st.integers(0, 1), min_size=4, max_size=4))


@SETTINGS
@given(cin=st.integers(1, 40), t=st.sampled_from([1, 2, 3, 6]), cout=st.integers(1, 40), stride=st.sampled_from([1, 2]),
       h=st.integers(1, 24), w=st.integers(1, 24), n=st.integers(1, 2), rule=pad_rules,
       isa=st.sampled_from(_core.available_isas()), seed=st.integers(0, 2 ** 16))
def test_any_block_matches_the_reference(cin, t, cout, stride, h, w, n, rule, isa, seed):
    if stride == 1:
        rule = "torch"  # stride-1 convs pad 1 on each side whatever the rule
    elif not isinstance(rule, str) and (h + rule[0] + rule[1] < 3 or w + rule[2] + rule[3] < 3):
        return  # the window does not fit: refused, as test_core_network checks
    rng = np.random.default_rng(seed)
    arrays = block_arrays(rng, cin, cin * t, cout, expand=t != 1)
    x = rng.normal(0, 1, (n, h, w, cin)).astype(np.float32)
    spec = BlockSpec(cin, t, cout, stride)
    assert_close(run_block(x, arrays, stride, rule, isa), reference_block(x, arrays, spec, rule), "f32_block_vs_f64")


@SETTINGS
@given(width=st.sampled_from([0.35, 0.5, 1.0]), h=st.integers(32, 80), w=st.integers(32, 80), n=st.integers(1, 3),
       padding=st.sampled_from(["torch", "same"]), seed=st.integers(0, 2 ** 16))
def test_any_input_size_and_batch_matches_the_reference(width, h, w, n, padding, seed):
    arch, arrays, _ = network(width)
    x = np.random.default_rng(seed).normal(0, 1, (n, 3, h, w)).astype(np.float32)
    model = make_model(arch, arrays, padding, isa=BEST_ISA, threads=2)
    assert_close(model.run(x), reference.forward(arrays, arch, x, padding), "f32_network_vs_f64")


def small_file() -> bytes:
    """A valid width-0.35 weight file, as bytes."""
    arch = build_arch(0.35, 3)
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(s).astype(np.float32) for k, s in wformat.expected_shapes(arch).items()}
    meta = {"format": wformat.FORMAT_NAME, "version": wformat.FORMAT_VERSION, "width_mult": 0.35, "num_classes": 3,
            "input_size": [64, 64], "padding": "torch", "preprocess": wformat.TORCHVISION_PREPROCESS,
            "labels": None, "hidden": [], "activation": "none", "quantization": None,
            "source": {"kind": "test"}}
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    wformat.loads(buffer.getvalue())  # valid to start with
    return buffer.getvalue()


VALID = small_file()


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, len(VALID))))
def test_any_corruption_is_refused_cleanly(edits, cut):
    data = bytearray(VALID)
    for offset, value in edits:
        data[offset] = value
    data = bytes(data[:cut] if cut is not None else data)
    try:
        loaded = wformat.loads(data)
    except Mbv2Error:
        return  # refused, with the reader's own error
    # A change the format does not see (a byte of a zip field it ignores) must leave the arrays alone.
    expected = wformat.loads(VALID)
    assert all(np.array_equal(loaded.arrays[k], expected.arrays[k]) for k in expected.arrays)
