"""Every registered int8 microkernel bit-exact against its scalar twin, and the twins
bit-exact against numpy's reading of ukernels.h / quant-common.h.

Each kernel is called alone by name (`_test_hooks.qukernel_*`, weights packed by the
engine's own packer for the kernel's nr and kr) on the edge classes of its tiles:
channels equal to the panel, a multiple of it, below it, above it, the half panel
and 1; 1, 7, 13 and 56 rows (the tails of every MR); k of 1, 3, 4, 5, 24 and 960
(A rows padded to a multiple of 4 with bytes the kernel must ignore); stride 2 with
odd widths; outputs wider than nc whose extra bytes must survive; the clamp binding
at both ends, ReLU6 below 255; the residual with zero points 0 and 255; input zero
points 0 and 255; the sums that would saturate vpmaddubsw; scales from 1e-6 to 10.
The stem output's quantization over lengths around its vector, exact ties and both
ends of the clamp.
The AMX GEMM on emulated tiles (ISA "amx-emulated", TDPBUSD after the Intel SDM)
too, where this CPU runs the avx512 kernels it falls back on, bit-exact over its
own edges: 32-row and 32-channel blocks and their remainders, K below one tile
step of 64 (60: all on the fallback), at it, just past it (the last step stepping
back), ragged, and past the 2048-byte A rows (the fallback).
ISAs this CPU lacks are skipped with the reason.
"""
import platform

import numpy as np
import pytest

from mbv2_engine import _core, _test_hooks

EMULATED = [k for k in _test_hooks.amx_emulated_ukernels() if k["op"] == "qgemm"]
KERNELS = [k for k in _core.ukernels() if k["op"].startswith("q")]
INT8_ISAS = set(_test_hooks.int8_isas())
TWIN = {k["op"]: k for k in KERNELS if k["isa"] == "ref"}
F32, F64 = np.float32, np.float64


def cpu_runs(k):
    """The emulated AMX GEMM runs where the avx512 kernels do (its fallback and epilogue)."""
    isa = "avx512" if k["isa"] == "amx-emulated" else k["isa"]
    return pytest.mark.skipif(isa not in INT8_ISAS, reason=f"this CPU cannot run the {isa} int8 kernels "
                                                           "(cpuid/xgetbv, and arch_prctl for amx)")


def simd_kernels(*ops):
    return [pytest.param(k, id=k["name"], marks=cpu_runs(k))
            for k in KERNELS + EMULATED if k["op"] in ops and k["isa"] != "ref"]


def all_kernels(*ops):
    """The twin too: it is checked against numpy where the SIMD kernels are checked against it."""
    return [pytest.param(TWIN[op], id=TWIN[op]["name"]) for op in ops] + simd_kernels(*ops)


def channel_classes(nr):
    return {"equal": nr, "multiple": 3 * nr, "below": nr - 3, "above": nr + 5, "half": nr // 2 + 1, "one": 1}


# ---- numpy's reading of the contract ----

def packed_bias_scale(w, scale, bias, in_scale, in_zero, out_scale):
    """pack_qconv's int32 bias (the input zero point folded in) and float requantization scale."""
    acc_scale = F64(F32(in_scale)) * scale.astype(F64)
    bias_q = np.rint(bias.astype(F64) / acc_scale)
    assert (np.abs(bias_q) <= 2.0 ** 30).all()
    sums = w.reshape(len(w), -1).astype(np.int64).sum(axis=1).astype(F64)
    return (bias_q - F64(in_zero) * sums).astype(np.int64), (acc_scale / F64(F32(out_scale))).astype(F32)


def bounds(out_scale, out_zero, relu6):
    """requant_for: lo and hi with the output zero point subtracted."""
    hi = min(255.0, np.rint(6.0 / F64(F32(out_scale)))) if relu6 else 255.0 - out_zero
    return F32(-out_zero), F32(hi)


def requantize(acc, s, lo, hi, zero, residual=None, residual_scale=None, residual_zero=0, wrap=True):
    """quant-common.h's requantize in float32, operation for operation; the cast to uint8
    wraps (wrap=False: the int32 before it)."""
    assert np.abs(acc).max() < 2 ** 31
    v = acc.astype(F32) * s
    if residual is not None:
        v = v + (residual.astype(np.int32) - residual_zero).astype(F32) * residual_scale
    v = np.minimum(np.maximum(v, lo), hi)
    q = np.rint(v).astype(np.int32) + zero
    return (q & 0xFF).astype(np.uint8) if wrap else q


def kernel_residual_scale(residual_scale, out_scale):
    """The hook hands the kernel residual_scale / out_scale, rounded once to float."""
    return F32(F64(F32(residual_scale)) / F64(F32(out_scale)))


# ---- GEMM ----

def gemm_case(rng, m, nc, kc, in_zero=None, out_zero=None, relu6=False, spread=1.0, a=None, w=None):
    """Random operands whose requantized outputs cover the whole range: the scales are
    chosen from the actual sums so that the clamp binds at both ends. spread scales the
    requantization (1e-6 to 1e6 of the natural one: every output at the zero point, or clamped)."""
    k4 = (kc + 3) // 4 * 4
    if a is None:
        a = rng.integers(0, 256, (m, k4 + 4 * int(rng.integers(0, 2))), dtype=np.uint8)  # padding bytes are garbage
    if w is None:
        w = rng.integers(-128, 128, (nc, kc), dtype=np.int8)
    in_zero = int(rng.choice([0, 17, 128, 255])) if in_zero is None else in_zero
    out_zero = 0 if relu6 else (int(rng.choice([0, 100, 128, 155, 255])) if out_zero is None else out_zero)
    in_scale = F32(rng.choice([1e-6, 0.02, 10.0]))
    # Real outputs of about +-1.3 (ReLU6: +-4 around 1, past both 0 and 6) in every channel:
    # the bias cancels the sums' mean, (E[a] - zero) sum_k w, and the scale their spread.
    wide = w.astype(F64)
    typical = 74.0 * np.sqrt((wide ** 2).sum(axis=1)) + 1.0  # std of a uniform byte: 74
    target = 4.0 if relu6 else 1.3
    w_scale = (rng.uniform(0.5, 2.0, nc) * target / (in_scale * typical)).astype(F32)
    mean = (127.5 - in_zero) * wide.sum(axis=1) * in_scale * w_scale
    bias = (rng.normal(0.0, 0.3, nc) * target + (1.0 if relu6 else 0.0) - mean).astype(F32)
    # Steps of 1/150 (ReLU6: 6/180, so hi = 180 < 255), times spread.
    out_scale = F32(6.0 / 180 if relu6 else 1.0 / 150 / spread)
    return dict(a=a, w=w, scale=w_scale, bias=bias, in_scale=in_scale, in_zero=in_zero, out_scale=out_scale,
                out_zero=out_zero, relu6=relu6)


def gemm_numpy(case, residual=None, residual_scale=1.0, residual_zero=0, wrap=True):
    a, w = case["a"], case["w"]
    kc = w.shape[1]
    b, s = packed_bias_scale(w, case["scale"], case["bias"], case["in_scale"], case["in_zero"], case["out_scale"])
    acc = a[:, :kc].astype(np.int64) @ w.astype(np.int64).T + b
    lo, hi = bounds(case["out_scale"], case["out_zero"], case["relu6"])
    res = None if residual is None else residual[:, :w.shape[0]]
    return requantize(acc, s, lo, hi, case["out_zero"], res, kernel_residual_scale(residual_scale, case["out_scale"]),
                      residual_zero, wrap)


def check_gemm(kernel, case, residual=None, residual_scale=1.0, residual_zero=0, pad=5):
    """The kernel against its twin (bit-exact), the twin against numpy (bit-exact), the
    columns past nc untouched. Returns the kernel's nc columns."""
    m, nc = case["a"].shape[0], case["w"].shape[0]
    c = np.full((m, nc + pad), 77, np.uint8)
    extra = {} if residual is None else dict(residual=residual, residual_scale=residual_scale,
                                             residual_zero=residual_zero)

    def run(name):
        return _test_hooks.qukernel_gemm(name, case["a"], case["w"], case["scale"], case["bias"], case["in_scale"],
                                         case["in_zero"], case["out_scale"], case["out_zero"], case["relu6"], c,
                                         **extra)

    got, want = run(kernel["name"]), run(TWIN["qgemm"]["name"])
    np.testing.assert_array_equal(got, want, err_msg=f"{kernel['name']} differs from its twin")
    np.testing.assert_array_equal(want[:, :nc], gemm_numpy(case, residual, residual_scale, residual_zero),
                                  err_msg="the twin differs from numpy")
    assert (got[:, nc:] == 77).all(), "bytes past nc were written"
    return got[:, :nc]


def assert_clamps(out, lo, hi, share=0.02):
    assert (out == lo).mean() > share and (out == hi).mean() > share, \
        f"inputs too tame: {lo} {(out == lo).mean():.3f}, {hi} {(out == hi).mean():.3f}"
    assert ((out > lo) & (out < hi)).mean() > 0.2, "inputs too wild: almost everything clamps"


@pytest.mark.parametrize("kc", [1, 3, 4, 5, 24, 960])
@pytest.mark.parametrize("m", [1, 7, 13, 56])
@pytest.mark.parametrize("nc_class", ["equal", "multiple", "below", "above", "half", "one"])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm(kernel, nc_class, m, kc):
    nc = channel_classes(kernel["nr"])[nc_class]
    rng = np.random.default_rng([m, nc, kc])
    case = gemm_case(rng, m, nc, kc)
    out = check_gemm(kernel, case)
    if m * nc >= 56 and kc >= 3 and 0 < case["out_zero"] < 255:  # lo and hi are outputs 0 and 255
        assert_clamps(out, 0, 255, share=0.01)


@pytest.mark.parametrize("m,nc_class,kc", [(13, "above", 24), (56, "multiple", 5), (7, "half", 960)])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_relu6_clamps_below_255(kernel, m, nc_class, kc):
    nc = channel_classes(kernel["nr"])[nc_class]
    case = gemm_case(np.random.default_rng([m, nc, kc, 6]), m, nc, kc, relu6=True)
    hi = int(bounds(case["out_scale"], 0, True)[1])
    assert hi == 180
    assert_clamps(check_gemm(kernel, case), 0, hi)


@pytest.mark.parametrize("in_zero", [0, 255])
@pytest.mark.parametrize("m,nc_class,kc", [(7, "above", 3), (13, "multiple", 24), (56, "below", 96)])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_input_zero_points(kernel, m, nc_class, kc, in_zero):
    """The input zero point lives in the packed bias (sum_k (a - z) w): 255 shifts it the most."""
    nc = channel_classes(kernel["nr"])[nc_class]
    case = gemm_case(np.random.default_rng([m, nc, kc, in_zero]), m, nc, kc, in_zero=in_zero, out_zero=128)
    assert_clamps(check_gemm(kernel, case), 0, 255, share=0.01)


@pytest.mark.parametrize("residual_zero", [0, 255])
@pytest.mark.parametrize("residual_scale", ["small", "natural", "large"])
@pytest.mark.parametrize("m,nc_class,kc", [(1, "equal", 24), (13, "above", 5), (56, "half", 144)])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_residual(kernel, m, nc_class, kc, residual_scale, residual_zero):
    """The projection adds the block's input: float(r - zero) * scale, added after the multiply
    (two roundings, as the twin). The residual is strided like c, its extra columns garbage."""
    nc = channel_classes(kernel["nr"])[nc_class]
    rng = np.random.default_rng([m, nc, kc, residual_zero, len(residual_scale)])
    case = gemm_case(rng, m, nc, kc)
    scale = F32(case["out_scale"] * {"small": 1e-6, "natural": 0.7, "large": 10.0}[residual_scale])
    residual = rng.integers(0, 256, (m, nc + 3), dtype=np.uint8)
    with_residual = check_gemm(kernel, case, residual=residual, residual_scale=scale, residual_zero=residual_zero)
    if residual_scale != "small" and m * nc > 20:
        assert (with_residual != check_gemm(kernel, case)).mean() > 0.3, "the residual changed nothing"


def residual_rounding_case(sign):
    """A residual scale s and a residual step d (r - zero = sign * d) whose float32 product
    rounds to exactly 100.5 though the exact one lies a hair below it."""
    for d in range(255, 100, -1):
        s = F32(100.5 / d)
        while F64(d) * F64(s) >= 100.5:
            s = np.nextafter(s, F32(0))
        if F32(F64(d) * F64(s)) == F32(100.5):
            return d, s
    raise AssertionError("no such scale")


@pytest.mark.parametrize("residual_zero", [0, 255])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_residual_rounds_twice(kernel, residual_zero):
    """v = acc * scale, then + float(r - zero) * residual_scale: the product rounded to
    float32 first, as the twin does. Here the product rounds up to 100.5 and the sum
    -99 + 100.5 = 1.5 rounds to 2 (output 102); an FMA's single rounding would give 1.4999..
    and 1 (output 101), in every output."""
    sign = 1 if residual_zero == 0 else -1
    d, s = residual_rounding_case(sign)
    fused = F32(F64(-99 * sign) + F64(sign * d) * F64(s))
    assert np.rint(fused) != np.rint(F32(-99 * sign) + F32(sign * d) * s)
    m, nc, kc = 13, kernel["nr"] + 5, 8
    rng = np.random.default_rng(d)
    case = dict(a=rng.integers(0, 256, (m, kc), dtype=np.uint8), w=np.zeros((nc, kc), np.int8),
                scale=np.ones(nc, F32), bias=np.full(nc, -99.0 * sign, F32), in_scale=F32(1), in_zero=0,
                out_scale=F32(1), out_zero=100, relu6=False)
    residual = np.full((m, nc), residual_zero + sign * d, np.uint8)
    out = check_gemm(kernel, case, residual=residual, residual_scale=s, residual_zero=residual_zero)
    assert (out == 100 + 2 * sign).all()


@pytest.mark.parametrize("kc", [3, 24, 960])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_sums_that_saturate_int16_pairs(kernel, kc):
    """All activations 255, weights +-127 and -128: every pair of products sums past int16
    (255 * 127 * 2 > 32767), where vpmaddubsw would saturate; the int32 sums must not."""
    nc, m = channel_classes(kernel["nr"])["above"], 7
    a = np.full((m, (kc + 3) // 4 * 4), 255, np.uint8)
    w = np.array([[127] * kc, [-127] * kc, [-128] * kc, [127, -128] * (kc // 2) + [127] * (kc % 2)] * nc,
                 np.int8)[:nc]
    case = gemm_case(np.random.default_rng(kc), m, nc, kc, in_zero=0, out_zero=128, a=a, w=w)
    case.update(scale=np.full(nc, 1.0 / (255 * 127 * kc), F32), bias=np.zeros(nc, F32), in_scale=F32(1.0),
                out_scale=F32(1.0 / 120))  # the channel of +127s at +1.0: 120 steps above the zero point
    out = check_gemm(kernel, case)
    assert set(out[:, 0]) == {248} and set(out[:, 1]) == {8}  # 128 +- 120: no wrap, no saturation


@pytest.mark.parametrize("spread", [1e-6, 1e-3, 10.0, 1e6])
@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_extreme_scales(kernel, spread):
    """Requantization scales far from the natural one: every output at the zero point
    (1e-6), a few steps (1e-3), mostly clamped (10, 1e6)."""
    nc, m, kc = channel_classes(kernel["nr"])["above"], 13, 40
    case = gemm_case(np.random.default_rng(int(np.log10(spread)) + 10), m, nc, kc, out_zero=100, spread=spread)
    out = check_gemm(kernel, case)
    if spread == 1e-6:
        assert (out == 100).all()
    if spread == 1e6:
        assert ((out == 0) | (out == 255) | (out == 100)).all()


@pytest.mark.parametrize("kernel", all_kernels("qgemm"))
def test_qgemm_relu6_with_a_zero_point_wraps_as_the_twin(kernel):
    """A zero point on a ReLU6 output pushes rint(v) + zero past 255: the twin's cast to
    uint8 wraps, and so must every kernel (a truncating pack, not a saturating one)."""
    case = gemm_case(np.random.default_rng(5), 13, kernel["nr"] + 5, 24, relu6=True)
    case["out_zero"] = 200
    check_gemm(kernel, case)
    assert (gemm_numpy(case, wrap=False) > 255).mean() > 0.05


@pytest.mark.parametrize("kc", [3, 16, 24, 32, 60, 61, 64, 65, 100, 960, 2048, 2049])
@pytest.mark.parametrize("m", [1, 31, 32, 33, 64, 113])
@pytest.mark.parametrize("nc_class", ["equal", "multiple", "below", "above"])
@pytest.mark.parametrize("kernel", simd_kernels("qgemm"))
def test_qgemm_amx_edges(kernel, nc_class, m, kc):
    """The AMX tile edges, on every kernel: K below one step of 16 quads (3, the first blocks' 16, 24
    and 32 inputs, and 15 quads: 60, all on the AVX-512 kernel), 16 (61, 64), 17 (65: the last step
    steps back by 15 quads), ragged (100), whole steps (960), the largest A row (2048) and past it."""
    nc = channel_classes(kernel["nr"])[nc_class]
    check_gemm(kernel, gemm_case(np.random.default_rng([m, nc, kc, 9]), m, nc, kc))


@pytest.mark.parametrize("residual_zero", [0, 255])
@pytest.mark.parametrize("kc", [64, 100])
@pytest.mark.parametrize("kernel", simd_kernels("qgemm"))
def test_qgemm_amx_blocks_with_a_residual_and_relu6(kernel, kc, residual_zero):
    """A block and its row and column remainders (40 x 37) with the residual, and ReLU6."""
    m, nc = 40, 37
    rng = np.random.default_rng([kc, residual_zero])
    case = gemm_case(rng, m, nc, kc)
    residual = rng.integers(0, 256, (m, nc + 3), dtype=np.uint8)
    check_gemm(kernel, case, residual=residual, residual_scale=F32(case["out_scale"] * 0.7),
               residual_zero=residual_zero)
    assert_clamps(check_gemm(kernel, gemm_case(rng, m, nc, kc, relu6=True)), 0, 180)


@pytest.mark.parametrize("kc", [64, 960])
@pytest.mark.parametrize("kernel", simd_kernels("qgemm"))
def test_qgemm_amx_sums_that_saturate_int16_pairs(kernel, kc):
    """test_qgemm_sums_that_saturate_int16_pairs on 40 rows, so the tiles take a block."""
    nc, m = channel_classes(kernel["nr"])["above"], 40
    a = np.full((m, kc), 255, np.uint8)
    w = np.array([[127] * kc, [-127] * kc, [-128] * kc, [127, -128] * (kc // 2)] * nc, np.int8)[:nc]
    case = gemm_case(np.random.default_rng(kc), m, nc, kc, in_zero=0, out_zero=128, a=a, w=w)
    case.update(scale=np.full(nc, 1.0 / (255 * 127 * kc), F32), bias=np.zeros(nc, F32), in_scale=F32(1.0),
                out_scale=F32(1.0 / 120))
    out = check_gemm(kernel, case)
    assert set(out[:, 0]) == {248} and set(out[:, 1]) == {8}


def test_int8_peaks():
    """vpdpbusd's peak on zmm (avx512) and ymm (avxvnni), TDPBUSD's on the tiles (amx: 16 x 16 x 64
    multiply-adds each, at least 4x AVX-512's on one thread; Emerald Rapids: 6441 against 909 GOP/s);
    -1 where the CPU lacks one, and for every other ISA."""
    peaks = {isa: _core.int8_peak_gops(isa, iters=10_000, trials=2) for isa in ("ref", "avx2", "avxvnni", "avx512",
                                                                              "amx")}
    assert peaks["ref"] == -1 and peaks["avx2"] == -1
    for isa in ("avxvnni", "avx512", "amx"):
        assert peaks[isa] > 0 if isa in INT8_ISAS else peaks[isa] == -1, isa
    if "amx" in INT8_ISAS:
        assert peaks["amx"] > 4 * peaks["avx512"]


# ---- depthwise ----

def dw_case(rng, wo, channels, stride):
    rows = rng.integers(0, 256, (3, (wo - 1) * stride + 3, channels + 4), dtype=np.uint8)  # a channel slice
    w = rng.integers(-128, 128, (channels, 3, 3), dtype=np.int8)
    typical = 128.0 * np.sqrt((w.astype(F64) ** 2).sum(axis=(1, 2))) + 1.0
    in_scale = F32(0.03)
    w_scale = (rng.uniform(0.5, 2.0, channels) * 5.0 / (in_scale * typical)).astype(F32)  # sums of about +-3
    bias = (rng.normal(2.0, 2.0, channels) - 0.5 * w_scale * in_scale * w.sum(axis=(1, 2)) * 255).astype(F32)
    return dict(rows=rows, w=w, scale=w_scale, bias=bias, in_scale=in_scale, out_scale=F32(6.0 / 180))


def dw_numpy(case, wo, channels, stride):
    rows, w = case["rows"], case["w"]
    b, s = packed_bias_scale(w, case["scale"], case["bias"], case["in_scale"], 0, case["out_scale"])
    acc = np.broadcast_to(b[:channels], (wo, channels)).copy()
    for ky in range(3):
        for kx in range(3):
            x = rows[ky, kx:kx + (wo - 1) * stride + 1:stride, :channels].astype(np.int64)
            acc += x * w[:channels, ky, kx].astype(np.int64)
    lo, hi = bounds(case["out_scale"], 0, True)
    return requantize(acc, s[:channels], lo, hi, 0)


def run_dw(name, case, out, channels):
    return _test_hooks.qukernel_dwconv(name, case["rows"], case["w"], case["scale"], case["bias"], case["in_scale"],
                                       case["out_scale"], out, channels)


@pytest.mark.parametrize("wo", [1, 3, 7, 13, 14, 29, 56])
@pytest.mark.parametrize("c_class", ["equal", "multiple", "below", "above", "half", "one"])
@pytest.mark.parametrize("kernel", all_kernels("qdwconv3x3s1", "qdwconv3x3s2"))
def test_qdwconv(kernel, c_class, wo):
    """Reads a channel slice of wider rows (pixel stride > channels), writes a strided tile:
    the bytes past the channels must survive. ReLU6 clamps at 0 and at hi = 180 < 255."""
    channels, stride = channel_classes(kernel["nr"])[c_class], 1 if kernel["op"] == "qdwconv3x3s1" else 2
    case = dw_case(np.random.default_rng([wo, channels, stride]), wo, channels, stride)
    out = np.full((wo, channels + 3), 77, np.uint8)
    got = run_dw(kernel["name"], case, out, channels)
    want = run_dw(TWIN[kernel["op"]]["name"], case, out, channels)
    np.testing.assert_array_equal(got, want, err_msg=f"{kernel['name']} differs from its twin")
    np.testing.assert_array_equal(want[:, :channels], dw_numpy(case, wo, channels, stride),
                                  err_msg="the twin differs from numpy")
    assert (got[:, channels:] == 77).all(), "bytes past the channels were written"
    if wo * channels >= 56:
        assert_clamps(got[:, :channels], 0, 180)


# ---- the stem output's quantization ----

def quantize_case(rng, n, scale):
    """Stem outputs (ReLU6 applied, so 0..6, plus values past both ends the clamp must take)
    with every tenth an exact tie k + 0.5 of x * inv_scale, which rint takes to the even k."""
    inv = F32(1.0 / F64(scale))
    hi = bounds(scale, 0, True)[1]  # the ReLU6 top of every int8 conv's requantization
    x = rng.uniform(-0.5, 6.5, n).astype(F32)
    ties = np.arange(0, n, 10)
    x[ties] = ((rng.integers(0, 255, len(ties)) + F32(0.5)) / inv).astype(F32)
    return x, inv, hi


@pytest.mark.parametrize("scale", [F32(0.5), F32(6.0 / 180), F32(0.01)])  # ties exact; hi 12, 180 and 255
@pytest.mark.parametrize("n_class", ["one", "below", "equal", "above", "multiple", "row"])
@pytest.mark.parametrize("kernel", all_kernels("qquantize"))
def test_qquantize(kernel, n_class, scale):
    """Every length around the vector (the remainder goes through the twin's loop), a whole
    112-pixel stem row of 32 channels; the bytes past n must survive."""
    lanes = kernel["nr"]
    n = {"one": 1, "below": max(lanes - 1, 1), "equal": lanes, "above": lanes + 1, "multiple": 3 * lanes + 5,
         "row": 112 * 32}[n_class]
    x, inv, hi = quantize_case(np.random.default_rng([n, int(scale * 1000)]), n, scale)
    out = np.full(n + 7, 77, np.uint8)
    got = _test_hooks.qukernel_quantize(kernel["name"], x, inv, hi, out)
    want = _test_hooks.qukernel_quantize(TWIN["qquantize"]["name"], x, inv, hi, out)
    np.testing.assert_array_equal(got, want, err_msg=f"{kernel['name']} differs from its twin")
    numpy = np.rint(np.minimum(np.maximum(x * inv, F32(0)), hi)).astype(np.uint8)
    np.testing.assert_array_equal(want[:n], numpy, err_msg="the twin differs from numpy")
    assert (got[n:] == 77).all(), "bytes past n were written"
    if n >= 100:
        assert (got[:n] == 0).any() and (got[:n] == hi).any(), "the clamp never bound"


# ---- the registry ----

def test_every_int8_isa_lists_every_op_with_its_names():
    isas = {k["isa"] for k in KERNELS}
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert {"ref", "avx2", "avxvnni", "avx512"} <= isas
    for isa in isas:
        mine = [k for k in KERNELS if k["isa"] == isa]
        assert sorted(k["op"] for k in mine) == ["qdwconv3x3s1", "qdwconv3x3s2", "qgemm", "qquantize"], isa
        for k in mine:
            assert k["name"].startswith("mbv2_qu8_") and k["name"].endswith("__" + isa) and k["nr"] > 0, k["name"]
