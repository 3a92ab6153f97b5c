"""Every registered SIMD microkernel against its scalar twin, through the registry.

Each kernel is called alone by name (`_test_hooks.ukernel_*`, weights packed by
the engine's own packing for the kernel's nr) on the edge classes of its tile:
channels equal to the panel, a multiple of it, below it, above it, and at most
half of it (the half tile); odd row lengths and one-pixel rows; strided
inputs and outputs whose extra columns must survive; stride 2; the ReLU6 clamp
binding at both ends; and the projection onto each of its starts (c, bias +
residual, bias, zeros). ISAs this CPU lacks are skipped with the reason. The
whole network per ISA is checked against the float64 reference at the end.
"""
import numpy as np
import pytest

from mbv2_engine import _core, _test_hooks, reference
from mbv2_engine.arch import build_arch
from mbv2_engine.errors import InputError
from test_core_network import batch, make_model, network_arrays
from tolerances import assert_close

KERNELS = _core.ukernels()
AVAILABLE = set(_core.available_isas())
TWIN = {k["op"]: k for k in KERNELS if k["isa"] == "ref"}


def simd_kernels(*ops):
    return [pytest.param(k, id=k["name"], marks=pytest.mark.skipif(
                k["isa"] not in AVAILABLE, reason=f"this CPU cannot run {k['isa']} (cpuid/xgetbv)"))
            for k in KERNELS if k["op"] in ops and k["isa"] != "ref"]


def channel_classes(nr):
    """Channel counts around a panel of nr: equal, a multiple, below, above, the half tile."""
    return {"equal": nr, "multiple": 3 * nr, "below": nr - 3, "above": nr + 5, "half": nr // 2 + 1,
            "one": 1}


def _f32(rng, shape, std, mean=0.0):
    return rng.normal(mean, std, shape).astype(np.float32)


def assert_clamp_binds(out):
    assert (out == 0).mean() > 0.02 and (out == 6).mean() > 0.01, "inputs too tame: ReLU6 never clamps"


def assert_matches_twin(name, op, call):
    got, want = call(name), call(TWIN[op]["name"])
    assert_close(got, want, "f32_ukernel_vs_ref")
    return want


@pytest.mark.parametrize("m", [1, 7, 13, 56])
@pytest.mark.parametrize("nc_class", ["equal", "multiple", "below", "above", "half", "one"])
@pytest.mark.parametrize("kernel", simd_kernels("expand"))
def test_expand(kernel, nc_class, m):
    nc, kc = channel_classes(kernel["nr"])[nc_class], 24
    rng = np.random.default_rng(m * 100 + nc)
    a = _f32(rng, (m, kc + 3), 1.5)  # a_stride > kc: only the first kc columns are read
    w, b = _f32(rng, (nc, kc), 3.0 / np.sqrt(kc)), _f32(rng, (nc,), 2.0, 1.0)
    c = np.full((m, nc + 5), -7.0, np.float32)  # columns past nc must keep their -7
    out = assert_matches_twin(kernel["name"], "expand", lambda k: _test_hooks.ukernel_gemm(k, a, w, b, c, 0, kc))
    assert (out[:, nc:] == -7).all()
    if m * nc >= 56:
        assert_clamp_binds(out[:, :nc])


@pytest.mark.parametrize("start", ["c", "bias+src", "bias", "zero"])
@pytest.mark.parametrize("m", [1, 6, 7, 14, 49])
@pytest.mark.parametrize("nc_class", ["equal", "multiple", "below", "above", "half"])
@pytest.mark.parametrize("kernel", simd_kernels("project"))
def test_project_adds_chunk_onto_its_start(kernel, nc_class, m, start):
    """A chunk k0..k0+kc of the hidden channels, added onto c (a later chunk), bias + residual (a
    block's first chunk), bias (the classifier) or zeros (a second half's first chunk)."""
    nc, hidden, k0, kc = channel_classes(kernel["nr"])[nc_class], 96, 32, 40
    rng = np.random.default_rng(m * 100 + nc)
    a = _f32(rng, (m, kc + 8), 2.0)
    w, b = _f32(rng, (nc, hidden), 1.0 / np.sqrt(kc)), _f32(rng, (nc,), 1.0)
    c = np.concatenate([_f32(rng, (m, nc), 2.0), np.full((m, 3), -7.0, np.float32)], axis=1)
    residual = np.concatenate([_f32(rng, (m, nc), 2.0), np.full((m, 3), 5.0, np.float32)], axis=1)
    out = assert_matches_twin(kernel["name"], "project",
                              lambda k: _test_hooks.ukernel_gemm(k, a, w, b, c, k0, kc, start=start, src=residual))
    base = {"c": c[:, :nc], "bias+src": b + residual[:, :nc], "bias": np.broadcast_to(b, (m, nc)),
            "zero": np.zeros((m, nc), np.float32)}[start]
    assert_close(out[:, :nc], base + a[:, :kc].astype(np.float64) @ w[:, k0:k0 + kc].T, "f32_block_vs_f64")
    assert (out[:, nc:] == -7).all()


@pytest.mark.parametrize("m", [1, 7, 14])
@pytest.mark.parametrize("nc_class", ["equal", "multiple", "below", "above", "half"])
@pytest.mark.parametrize("kernel", simd_kernels("head"))
def test_head_rowsum(kernel, nc_class, m):
    nc, kc = channel_classes(kernel["nr"])[nc_class], 40
    rng = np.random.default_rng(m * 100 + nc)
    a = _f32(rng, (m, kc + 2), 1.5)
    w, b = _f32(rng, (nc, kc), 3.0 / np.sqrt(kc)), _f32(rng, (nc,), 2.0, 1.0)
    sums = _f32(rng, (1, nc), 1.0)  # the head adds to what the pool already holds
    assert_matches_twin(kernel["name"], "head", lambda k: _test_hooks.ukernel_gemm(k, a, w, b, sums, 0, kc))
    pre = a[:, :kc].astype(np.float64) @ w.T.astype(np.float64) + b
    assert (pre < 0).any() and (pre > 6).any(), "inputs too tame: ReLU6 never clamps"


@pytest.mark.parametrize("out_rows", [1, 2, 3])
@pytest.mark.parametrize("wo", [1, 4, 7, 8, 9, 14, 15, 16, 17, 31, 56])
@pytest.mark.parametrize("c_class", ["equal", "multiple", "below", "above", "half", "one"])
@pytest.mark.parametrize("kernel", simd_kernels("dwconv3x3s1", "dwconv3x3s2"))
def test_dwconv(kernel, c_class, wo, out_rows):
    """Reads a channel slice of a wider ring row (pixel stride > channels) and writes a strided tile.
    Rows around both pixel groups (8; 16 for AVX-512 on a lone row at stride 1): less than one,
    one, one and a pixel, one pixel short of two, and the network's 14 and 56. One, two and three
    output rows: AVX-512 computes rows in pairs, then the last one alone (KernelSet::dwconv_rows)."""
    channels, stride = channel_classes(kernel["nr"])[c_class], 1 if kernel["op"] == "dwconv3x3s1" else 2
    rng = np.random.default_rng(wo * 100 + channels + 10000 * (out_rows - 1))
    rows = _f32(rng, ((out_rows - 1) * stride + 3, (wo - 1) * stride + 3, channels + 4), 1.5, 1.0)
    w, b = _f32(rng, (channels, 3, 3), 0.8), _f32(rng, (channels,), 2.0, 1.0)
    out = np.full((out_rows, wo, channels + 2), -7.0, np.float32)
    got = assert_matches_twin(kernel["name"], kernel["op"],
                              lambda k: _test_hooks.ukernel_dwconv(k, rows, w, b, out, channels))
    assert (got[..., channels:] == -7).all()
    if wo * channels >= 56:
        assert_clamp_binds(got[..., :channels])


@pytest.mark.parametrize("wo", [1, 7, 8, 13, 112])
@pytest.mark.parametrize("nc_class", ["equal", "below", "above", "half"])
@pytest.mark.parametrize("kernel", simd_kernels("stem"))
def test_stem(kernel, nc_class, wo):
    nc = channel_classes(kernel["nr"])[nc_class]
    rng = np.random.default_rng(wo * 100 + nc)
    rows = _f32(rng, (3, (2 * wo + 1) * 3), 1.5)
    w, b = _f32(rng, (nc, 3, 3, 3), 0.8), _f32(rng, (nc,), 2.0, 1.0)
    out = np.full((wo, nc + 3), -7.0, np.float32)
    got = assert_matches_twin(kernel["name"], "stem", lambda k: _test_hooks.ukernel_stem(k, rows, w, b, out))
    assert (got[:, nc:] == -7).all()
    if wo * nc >= 56:
        assert_clamp_binds(got[:, :nc])


def all_kernels(op):
    """The twin too: it is checked against numpy where the SIMD kernels are checked against it."""
    return [pytest.param(TWIN[op], id=TWIN[op]["name"])] + simd_kernels(op)


@pytest.mark.parametrize("w", [1, 7, 8, 15, 16, 17, 33, 224])
@pytest.mark.parametrize("kernel", all_kernels("load"))
def test_load_copies_rows_exactly_and_finds_every_non_finite(kernel, w):
    """Planes wider than the row (the plane stride is not w), extremes that are finite
    (the largest float, a subnormal, -0), then NaN and both infinities in each plane at
    its first, middle and last value: each sets the flag, alone."""
    rng = np.random.default_rng(w)
    planes = _f32(rng, (3, w + 5), 2.0)
    planes[:, -5:] = np.nan  # past the row: never read
    planes[0, 0], planes[1, w // 2], planes[2, w - 1] = np.finfo(np.float32).max, 1e-42, -0.0
    out = np.full((w + 2) * 3, -7.0, np.float32)
    want = np.zeros((w + 2, 3), np.float32)
    want[1:-1] = planes[:, :w].T
    got, bad = _test_hooks.ukernel_load(kernel["name"], planes, w, out)
    np.testing.assert_array_equal(got.view(np.uint32), want.reshape(-1).view(np.uint32))
    assert bad == 0
    for value in (np.nan, np.inf, -np.inf):
        for c in range(3):
            for x in {0, w // 2, w - 1}:
                hit = planes.copy()
                hit[c, x] = value
                assert _test_hooks.ukernel_load(kernel["name"], hit, w, out)[1] == 1, (value, c, x)


def test_hooks_refuse_wrong_kernels():
    with pytest.raises(InputError, match="no registered microkernel"):
        _test_hooks.ukernel_stem("mbv2_nonexistent", np.zeros((3, 9), np.float32),
                                 np.zeros((1, 3, 3, 3), np.float32), np.zeros(1, np.float32),
                                 np.zeros((1, 1), np.float32))
    with pytest.raises(InputError, match="not the stem"):
        _test_hooks.ukernel_stem(TWIN["expand"]["name"], np.zeros((3, 9), np.float32),
                                 np.zeros((1, 3, 3, 3), np.float32), np.zeros(1, np.float32),
                                 np.zeros((1, 1), np.float32))


@pytest.mark.parametrize("isa", [pytest.param(i, marks=pytest.mark.skipif(i not in AVAILABLE, reason=f"no {i} here"))
                                 for i in ("ref", "avx2", "avx512")])
@pytest.mark.parametrize("width,h,w", [(1.0, 97, 65), (0.35, 64, 45)])
def test_network_per_isa(isa, width, h, w):
    arch = build_arch(width, 10)
    arrays = network_arrays(arch, seed=3)
    x = batch(2, h, w, seed=5)
    for padding in ("torch", "same"):
        model = make_model(arch, arrays, padding, isa=isa)
        kernels = [name for layer in model.plan(h, w)["layers"] for name in layer["kernels"]]
        assert model.isa == isa and all(name.endswith("__" + isa) for name in kernels)
        assert_close(model.run(x), reference.forward(arrays, arch, x, padding), "f32_network_vs_f64")


def test_engine_forces_each_isa_or_says_why(small_model_path):
    from mbv2_engine import Engine
    from mbv2_engine.errors import DeviceError

    for isa in ("ref", "avx2", "avx512", "neon"):
        if isa in AVAILABLE:
            engine = Engine.load(small_model_path, threads=1, isa=isa)
            assert engine.plan.isa == isa
            assert all(name.endswith("__" + isa) for layer in engine.plan.layers for name in layer["kernels"])
        else:
            with pytest.raises(DeviceError, match=rf"isa '{isa}' is not supported by this CPU \(it needs"):
                Engine.load(small_model_path, isa=isa)
