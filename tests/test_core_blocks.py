"""One layer at a time through the C++ core (the network's own code path, bound in `_test_hooks`) vs the
float64 reference.

Shapes cover every block class: t = 1, expansion, stride 2, residual, odd and
non-square sizes, channel counts that are not multiples of the kernels' tiles,
both paddings. Weights are random with scales that keep activations O(1) while
the ReLU6 clamp still binds at both ends.
"""
import numpy as np
import pytest

from mbv2_engine import _core, _test_hooks, reference
from mbv2_engine.arch import BlockSpec
from mbv2_engine.errors import DeviceError, InputError, ModelFormatError
from tolerances import assert_close

ISAS = _core.available_isas()
PADDINGS = ["torch", "same"]


def _f32(rng, shape, std, mean=0.0):
    return rng.normal(mean, std, shape).astype(np.float32)


def block_arrays(rng, cin, hidden, cout, expand):
    """Arrays of one block under the file's member names (without the 'blocks.i.' prefix)."""
    arrays = {}
    if expand:
        arrays["expand.weight"] = _f32(rng, (hidden, cin), 3.0 / np.sqrt(cin))
        arrays["expand.bias"] = _f32(rng, (hidden,), 1.0, 0.5)
    arrays["depthwise.weight"] = _f32(rng, (hidden, 3, 3), 0.6)
    arrays["depthwise.bias"] = _f32(rng, (hidden,), 1.0, 0.5)
    arrays["project.weight"] = _f32(rng, (cout, hidden), 1.0 / np.sqrt(hidden))
    arrays["project.bias"] = _f32(rng, (cout,), 0.5)
    return arrays


def run_block(x, arrays, stride, padding, isa):
    return _test_hooks.irblock(x, arrays.get("expand.weight"), arrays.get("expand.bias"),
                               arrays["depthwise.weight"], arrays["depthwise.bias"],
                               arrays["project.weight"], arrays["project.bias"], stride, padding, isa)


def reference_block(x, arrays, spec, padding):
    prefixed = {f"blocks.0.{name}": a for name, a in arrays.items()}
    return reference.block(prefixed, 0, spec, x.astype(np.float64), padding)


# (cin, t, cout, stride, h, w): one row per block class.
BLOCKS = [
    pytest.param(16, 1, 8, 1, 15, 7, id="t1"),
    pytest.param(8, 1, 8, 1, 9, 10, id="t1-residual"),
    pytest.param(5, 6, 7, 1, 15, 7, id="odd-channels"),
    pytest.param(5, 6, 5, 1, 33, 17, id="odd-channels-residual"),
    pytest.param(24, 6, 24, 1, 14, 14, id="residual"),
    pytest.param(16, 6, 24, 2, 16, 12, id="stride2-even"),
    pytest.param(5, 6, 7, 2, 33, 17, id="stride2-odd"),
    pytest.param(8, 4, 12, 2, 1, 2, id="stride2-tiny"),
    pytest.param(32, 6, 16, 1, 3, 3, id="wide-hidden-3x3"),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("cin,t,cout,stride,h,w", BLOCKS)
def test_irblock_matches_reference(cin, t, cout, stride, h, w, padding, isa):
    rng = np.random.default_rng(cin * 1000 + t * 100 + cout + stride)
    spec = BlockSpec(cin, t, cout, stride)
    arrays = block_arrays(rng, cin, spec.hidden, cout, spec.has_expand)
    x = _f32(rng, (2, h, w, cin), 1.5)
    assert_close(run_block(x, arrays, stride, padding, isa), reference_block(x, arrays, spec, padding),
                 "f32_block_vs_f64")


def test_irblock_clamp_binds():
    """The random scales exercise both ends of ReLU6 in the expanded tensor (else the tests prove less)."""
    rng = np.random.default_rng(0)
    arrays = block_arrays(rng, 5, 30, 7, True)
    x = _f32(rng, (1, 15, 7, 5), 1.5)
    pre = x.astype(np.float64) @ arrays["expand.weight"].T + arrays["expand.bias"]
    assert (pre < 0).mean() > 0.05 and (pre > 6).mean() > 0.01


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("h,w,c0", [(32, 32, 16), (15, 7, 12), (33, 18, 5)])
def test_stem_matches_reference(h, w, c0, padding, isa):
    rng = np.random.default_rng(h * w + c0)
    arrays = {"stem.weight": _f32(rng, (c0, 3, 3, 3), 0.8), "stem.bias": _f32(rng, (c0,), 1.0, 0.5)}
    x = _f32(rng, (2, h, w, 3), 1.5)
    got = _test_hooks.stem(x, arrays["stem.weight"], arrays["stem.bias"], padding, isa)
    assert_close(got, reference.stem(arrays, x.astype(np.float64), padding), "f32_block_vs_f64")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("h,w,c,last", [(7, 7, 32, 40), (3, 5, 13, 17), (1, 1, 8, 8)])
def test_head_matches_reference(h, w, c, last, isa):
    rng = np.random.default_rng(h * w * c + last)
    arrays = {"head.weight": _f32(rng, (last, c), 3.0 / np.sqrt(c)), "head.bias": _f32(rng, (last,), 1.0, 0.5)}
    x = _f32(rng, (2, h, w, c), 1.5)
    got = _test_hooks.head(x, arrays["head.weight"], arrays["head.bias"], isa)
    assert_close(got, reference.head(arrays, x.astype(np.float64)), "f32_block_vs_f64")


def test_registry_has_every_op_for_every_isa():
    ops = {"expand", "dwconv3x3s1", "dwconv3x3s2", "project", "stem", "head", "load"}
    kernels = [k for k in _core.ukernels() if not k["op"].startswith(("q", "bf16"))]
    for isa in ISAS:
        mine = [k for k in kernels if k["isa"] == isa]
        assert {k["op"] for k in mine} == ops
        assert all(k["name"].startswith("mbv2_f32_") and k["name"].endswith("__" + isa) and k["nr"] > 0
                   for k in mine)
    bf16 = [k for k in _core.ukernels() if k["op"].startswith("bf16")]
    for isa in {k["isa"] for k in bf16}:  # the GEMMs only: depthwise and stem are the float32 ISA's
        mine = [k for k in bf16 if k["isa"] == isa]
        assert {k["op"] for k in mine} == {"bf16expand", "bf16project", "bf16head"}
        assert all(k["name"].startswith("mbv2_bf16_") and k["nr"] > 0 for k in mine)


@pytest.mark.parametrize("change,error,message", [
    (dict(dw_w=np.zeros((30, 3, 2), np.float32)), ModelFormatError,
     r"'depthwise.weight' has shape \(30, 3, 2\), expected \(30, 3, 3\)"),
    (dict(proj_b=np.zeros(8, np.float32)), ModelFormatError, r"'project.bias' has shape \(8,\), expected \(7,\)"),
    (dict(dw_w=np.zeros((30, 3, 3), np.float64)), InputError, "float32"),
    (dict(expand_b=None), InputError, "together"),
    (dict(x=np.zeros((15, 7, 5), np.float32)), InputError, r"expected \(N, H, W, C\)"),
    (dict(stride=3), InputError, "stride"),
    (dict(padding="valid"), InputError, "padding"),
    (dict(isa="sse9"), DeviceError, "isa 'sse9' is unknown"),
])
def test_irblock_rejects_bad_arguments(change, error, message):
    rng = np.random.default_rng(1)
    a = block_arrays(rng, 5, 30, 7, True)
    args = dict(x=_f32(rng, (1, 15, 7, 5), 1.0), expand_w=a["expand.weight"], expand_b=a["expand.bias"],
                dw_w=a["depthwise.weight"], dw_b=a["depthwise.bias"], proj_w=a["project.weight"],
                proj_b=a["project.bias"], stride=1, padding="torch", isa="ref")
    with pytest.raises(error, match=message):
        _test_hooks.irblock(**{**args, **change})
