"""bf16 (`Engine.load(..., dtype="bf16")`), from the rounding up to the network.

1. `bf16::round` (ukernels/bf16-common.h, through `_test_hooks.bf16_round`) bit
   for bit against numpy's own reading of the rule: the nearer bf16 magnitude,
   ties to the even one; zeros and denormals to a zero of the same sign;
   infinities stay; NaNs stay NaN, made quiet. Edge classes plus random bits.
2. Each AVX512-BF16 kernel against its scalar twin, through the registry, on
   the edge classes of its tile (7x32): channels equal to the panel, a multiple,
   below, above, the half panel and 1; 1 to 113 rows (the tails of 7 and 14);
   k of 1, 2, 3 (odd k: the last pair is (a, 0)) up to 1280 (the classifier),
   and 16384, ukernels.h's most (one row per block); the projection from its
   four starts at an even k0 > 0; ReLU6 binding at both ends; strided a (its extra
   columns NaN: never read) and c (its extra columns must survive). Here the
   kernels equal their twins bit for bit (the same roundings in the same
   order) but for float32 denormals, which VDPBF16PS flushes (DAZ in, FTZ out)
   and the twins keep; the comparison is the tolerance entry
   `bf16_ukernel_vs_ref`, not equality: another vendor may add a pair's two
   products in another order or with one rounding.
   The AMX kernels too, on emulated tiles (ISA "amx-emulated", the Intel SDM's
   TDPBF16PS: even and odd products summed apart per tile step), where this
   CPU runs the avx512 kernels they fall back on, over their own edge classes:
   32-row and 32-channel blocks and their remainders, K below one tile step
   (31 k), at it, just over it (the last step stepping back), and past the
   2048-byte A rows (the fallback); the same tolerance entry.
3. The twins bit for bit against numpy's float32 reading of ukernels.h (bf16):
   a and w rounded to bf16, per pair of k the odd product added first, then
   the even one, from the bias (and the residual, or c).
4. The network: bf16 near the engine's float32 (`bf16_vs_f32`) on the small
   model and one random width-1.0 model at 224; the ref and avx512 (and amx,
   where the CPU has AMX) bf16 engines near each other; plan and precision name bf16 and its kernels; the
   bits depend on neither the thread count nor the batch.
5. What is refused, and how it is said.
ISAs this CPU lacks are skipped with the reason.
"""
import numpy as np
import pytest

from mbv2_engine import Engine, _core, _test_hooks
from mbv2_engine.errors import DeviceError, InputError
from mbv2_engine.export import export_random
from test_ukernels import assert_clamp_binds, channel_classes
from tolerances import assert_close

F32 = np.float32
EMULATED = [k for k in _test_hooks.amx_emulated_ukernels() if k["op"].startswith("bf16")]
KERNELS = [k for k in _core.ukernels() if k["op"].startswith("bf16")] + EMULATED
BF16_ISAS = _core.available_bf16_isas()
TWIN = {k["op"]: k for k in KERNELS if k["isa"] == "ref"}
STARTS = ["c", "bias+src", "bias", "zero"]


UKERNEL_TOL, ISA_TOL = "bf16_ukernel_vs_ref", "bf16_isa_vs_ref"


def needs(isa):
    """The emulated AMX kernels run where the avx512 ones do (their fallbacks and epilogues)."""
    cpu = "avx512" if isa == "amx-emulated" else isa
    what = "AMX-BF16 and AVX512_BF16: cpuid/xgetbv/arch_prctl" if isa == "amx" else "AVX512_BF16: cpuid/xgetbv"
    return pytest.mark.skipif(cpu not in BF16_ISAS, reason=f"this CPU cannot run the {cpu} bf16 kernels ({what})")


def simd_kernels(*ops):
    return [pytest.param(k, id=k["name"], marks=needs(k["isa"])) for k in KERNELS
            if k["op"] in ops and k["isa"] != "ref"]


ISAS = [pytest.param(isa, marks=needs(isa)) for isa in ("ref", "avx512", "amx")]


def float_isa(isa):
    """The float32 ISA whose depthwise and stem kernels a bf16 ISA takes."""
    return "avx512" if isa == "amx" else isa


def bits(*words):
    return np.array(words, np.uint32).view(F32)


def assert_same_bits(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype.itemsize == expected.dtype.itemsize, what
    same = actual.view(f"u{actual.dtype.itemsize}") == expected.view(f"u{expected.dtype.itemsize}")
    if not same.all():
        i = tuple(np.argwhere(~same)[0])
        raise AssertionError(f"{what}: {int((~same).sum())} of {same.size} differ; first at {list(i)}: "
                             f"{actual[i]!r} != {expected[i]!r}")


# ---- 1. the rounding ----

def _magnitude(h):
    """float64 value of the bf16 magnitude bits h (normal); h = 0x7f80 is 2^128, the first value past
    the largest finite as round to nearest sees it."""
    return np.ldexp(1.0 + (h & 0x7F) / 128.0, (h >> 7).astype(np.int64) - 127)


def bf16_round_numpy(x):
    """uint16 bits of x rounded to bf16 by the documented rule, without the kernels' bias trick: of the
    two bf16 magnitudes around |x| the nearer, a tie to the even one."""
    u = np.asarray(x, F32).view(np.uint32)
    sign, exponent, lo = (u >> 16) & 0x8000, (u >> 23) & 0xFF, (u >> 16) & 0x7FFF
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.abs(np.asarray(x, np.float64))
        below, above = v - _magnitude(lo), _magnitude(lo + 1) - v
        nearest = lo + ((below > above) | ((below == above) & ((lo & 1) == 1)))
    nan_quiet = np.where(u & 0x7FFFFF, 0x40, 0)
    magnitude = np.where(exponent == 0, 0, np.where(exponent == 0xFF, lo | nan_quiet, nearest))
    return (sign | magnitude).astype(np.uint16)


def widen(h):
    return (np.asarray(h, np.uint32) << 16).view(F32)


# (float32 bits, bf16 bits) per edge class
ROUNDING = {
    "exact": [(0x3F800000, 0x3F80), (0xC0200000, 0xC020), (0x7F7F0000, 0x7F7F), (0x00810000, 0x0081)],
    "tie to even, down": [(0x3F808000, 0x3F80), (0xBF808000, 0xBF80), (0x4B7E8000, 0x4B7E)],
    "tie to even, up": [(0x3F818000, 0x3F82), (0xBF818000, 0xBF82), (0x3FFF8000, 0x4000)],  # the last carries
    "just below a tie": [(0x3F807FFF, 0x3F80), (0x3F817FFF, 0x3F81), (0xBF817FFF, 0xBF81)],
    "just above a tie": [(0x3F808001, 0x3F81), (0x3F818001, 0x3F82), (0xBF808001, 0xBF81)],
    "largest finite": [(0x7F7F7FFF, 0x7F7F), (0x7F7F8000, 0x7F80), (0x7F7FFFFF, 0x7F80), (0xFF7FFFFF, 0xFF80)],
    "zeros": [(0x00000000, 0x0000), (0x80000000, 0x8000)],
    "denormals": [(0x00000001, 0x0000), (0x00400000, 0x0000), (0x007FFFFF, 0x0000), (0x80000001, 0x8000),
                  (0x807FFFFF, 0x8000)],
    "smallest normal": [(0x00800000, 0x0080), (0x80800000, 0x8080), (0x00808000, 0x0080), (0x00808001, 0x0081)],
    "infinities": [(0x7F800000, 0x7F80), (0xFF800000, 0xFF80)],
    "quiet NaNs": [(0x7FC00000, 0x7FC0), (0xFFC00000, 0xFFC0), (0x7FC12345, 0x7FC1), (0x7FFFFFFF, 0x7FFF)],
    "signalling NaNs": [(0x7F800001, 0x7FC0), (0x7F810000, 0x7FC1), (0xFF800001, 0xFFC0), (0x7FBFFFFF, 0x7FFF)],
}


@pytest.mark.parametrize("edge", ROUNDING)
def test_round_edge_classes(edge):
    x, want = bits(*(i for i, _ in ROUNDING[edge])), np.array([o for _, o in ROUNDING[edge]], np.uint16)
    assert_same_bits(bf16_round_numpy(x), want, "numpy's reading of the rule")
    assert_same_bits(_test_hooks.bf16_round(x), want, "bf16::round")


def test_round_random_bits():
    """10^5 random bit patterns (every exponent, NaNs and denormals included), a third of them pushed
    next to a tie (low half 0x7fff, 0x8000 or 0x8001)."""
    rng = np.random.default_rng(15)
    u = rng.integers(0, 2 ** 32, 100_000, dtype=np.uint64).astype(np.uint32)
    near = rng.random(u.size) < 1 / 3
    u[near] = (u[near] & 0xFFFF0000) | rng.choice(np.array([0x7FFF, 0x8000, 0x8001], np.uint32), near.sum())
    x = u.view(F32)
    assert_same_bits(_test_hooks.bf16_round(x), bf16_round_numpy(x), "bf16::round vs numpy")


# ---- the GEMM cases (2 and 3) ----

K0 = 16  # the projection's chunk starts at an even k0 > 0, as a later depthwise chunk does


def _f32(rng, shape, std, mean=0.0):
    return rng.normal(mean, std, shape).astype(F32)


def _padded(values, columns, fill):
    return np.concatenate([values, np.full((len(values), columns), fill, F32)], axis=1)


def gemm_case(op, m, nc, kc, seed, scale=1.0, k0=K0, tail=3):
    """Operands for a bf16 expand, project or head: a strided (its extra columns NaN, so a read past kc
    shows); expand and head ReLU6 binding at both ends; c and src wider than nc; the projection's chunk
    k0 .. k0 + kc of k0 + kc + tail weight columns. `scale` scales a and w (and scale ** 2 the bias, c
    and src): 2 ** -64 makes the products float32 denormals and the sums about 2^-126."""
    rng = np.random.default_rng([m, nc, kc, seed])
    a = _padded(_f32(rng, (m, kc), 1.5) * F32(scale), 3, np.nan)
    k = k0 + kc + tail if op == "project" else kc
    w = _f32(rng, (nc, k), (1.0 if op == "project" else 3.0) / np.sqrt(kc)) * F32(scale)
    b = _f32(rng, (nc,), 1.0 if op == "project" else 2.0, 0.0 if op == "project" else 1.0) * F32(scale ** 2)
    c = _f32(rng, (1, nc), 1.0) if op == "head" else _padded(_f32(rng, (m, nc), 2.0), 3, -7.0)
    src = _padded(_f32(rng, (m, nc), 2.0) * F32(scale ** 2), 3, 5.0)
    c[:, :nc] *= F32(scale ** 2)
    return dict(op=op, a=a, w=w, b=b, c=c, src=src, kc=kc, nc=nc, k0=k0 if op == "project" else 0)


def run_kernel(name, case, start="c"):
    if case["op"] == "project":
        return _test_hooks.ukernel_gemm(name, case["a"], case["w"], case["b"], case["c"], case["k0"], case["kc"],
                                        start=start, src=case["src"])
    return _test_hooks.ukernel_gemm(name, case["a"], case["w"], case["b"], case["c"], 0, case["kc"])


def check_against_twin(kernel, case, start="c"):
    """The kernel within UKERNEL_TOL of its twin; the columns past nc untouched. Returns the twin's output."""
    got, want = run_kernel(kernel["name"], case, start), run_kernel(TWIN[kernel["op"]]["name"], case, start)
    assert_close(got, want, UKERNEL_TOL)
    if case["op"] != "head":
        assert (got[:, case["nc"]:] == want[:, case["nc"]:]).all() and (got[:, case["nc"]:] == -7).all()
    return want


# ---- 2. the AVX512-BF16 kernels against their twins ----

M_ROWS = [1, 7, 13, 14, 15, 28, 29, 113]
KC = [1, 2, 3, 16, 24, 96, 320, 1280]
NC_CLASSES = ["equal", "multiple", "below", "above", "half", "one"]


@pytest.mark.parametrize("kc", KC)
@pytest.mark.parametrize("m", M_ROWS)
@pytest.mark.parametrize("nc_class", NC_CLASSES)
@pytest.mark.parametrize("kernel", simd_kernels("bf16expand", "bf16head"))
def test_expand_and_head(kernel, nc_class, m, kc):
    op = kernel["op"][4:]
    case = gemm_case(op, m, channel_classes(kernel["nr"])[nc_class], kc, seed=1)
    out = check_against_twin(kernel, case)
    nc, enough = case["nc"], m * case["nc"] >= 56 and kc >= 2  # (at k = 1, 7 x 29 draws missed 6)
    if op == "expand" and enough:
        assert_clamp_binds(out[:, :nc])
    if op == "head" and enough:
        pre = case["a"][:, :kc].astype(np.float64) @ case["w"].T.astype(np.float64) + case["b"]
        assert (pre < 0).any() and (pre > 6).any(), "inputs too tame: ReLU6 never clamps"


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("kc", KC)
@pytest.mark.parametrize("m", M_ROWS)
@pytest.mark.parametrize("nc_class", NC_CLASSES)
@pytest.mark.parametrize("kernel", simd_kernels("bf16project"))
def test_project_from_each_start(kernel, nc_class, m, kc, start):
    """Columns k0 = 16 .. 16 + kc of the weights (pair row 8 on) onto c, bias + residual, bias or zeros."""
    case = gemm_case("project", m, channel_classes(kernel["nr"])[nc_class], kc, seed=2)
    check_against_twin(kernel, case, start)


# The AMX kernels' edges: rows and channels below, at and past a 32 x 32 block; K (k) below one tile
# step of 16 pairs (1, 16, 24, 30: one step on tiles configured that narrow), at it (31, 32), just past
# it (33: the last step steps back by 15 pairs), ragged (50) and whole (96) steps, the largest A row
# (1024: 2048 bytes) and past it (1026, 1280: the fallback).
AMX_ROWS = [1, 31, 32, 33, 64, 113]
AMX_KC = [1, 16, 24, 30, 31, 32, 33, 50, 96, 1024, 1026]
# Columns: a last partial panel of 16 or more (16, 17, 29, 48) goes through the tiles, one of fewer
# (37: 5) to the AVX-512 kernel; whole panels (32, 96).
AMX_NC = [16, 17, 29, 32, 37, 48, 96]


def amx_kernels(*ops):
    return [pytest.param(k, id=k["name"], marks=needs(k["isa"])) for k in EMULATED if k["op"] in ops]


@pytest.mark.parametrize("kc", AMX_KC)
@pytest.mark.parametrize("m", AMX_ROWS)
@pytest.mark.parametrize("nc", AMX_NC)
@pytest.mark.parametrize("kernel", amx_kernels("bf16expand", "bf16head"))
def test_amx_expand_and_head(kernel, nc, m, kc):
    check_against_twin(kernel, gemm_case(kernel["op"][4:], m, nc, kc, seed=7))


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("kc", AMX_KC)
@pytest.mark.parametrize("m", [1, 31, 32, 33, 113])
@pytest.mark.parametrize("nc", AMX_NC)
@pytest.mark.parametrize("kernel", amx_kernels("bf16project"))
def test_amx_project_from_each_start(kernel, nc, m, kc, start):
    """c may be src (start "c"): the blocks and the fallback each read and write only their own outputs."""
    check_against_twin(kernel, gemm_case("project", m, nc, kc, seed=8), start)


@pytest.mark.parametrize("kernel", amx_kernels("bf16expand", "bf16project"))
def test_amx_rows_do_not_depend_on_where_the_call_cuts(kernel):
    """A row's bits are the same in a call of 113 rows and in one of any part of them: the rows of a last
    partial 32-row block go through the tiles too, never to the AVX-512 kernel, which adds in another
    order (on Emerald Rapids that made an image's logits depend on its batch)."""
    case = gemm_case(kernel["op"][4:], 113, 64, 96, seed=11)
    whole = run_kernel(kernel["name"], case, "bias+src")
    for begin, end in ((0, 1), (0, 31), (0, 33), (40, 113), (77, 113)):
        part = {**case, **{k: case[k][begin:end] for k in ("a", "c", "src")}}
        assert np.array_equal(run_kernel(kernel["name"], part, "bias+src"), whole[begin:end]), (begin, end)


@pytest.mark.parametrize("kernel", amx_kernels("bf16expand", "bf16project", "bf16head"))
def test_amx_blocks_go_through_the_tiles(kernel):
    """On 64 x 64 blocks the emulated TDPBF16PS (even and odd products summed apart) rounds differently
    from VDPBF16PS somewhere, so a kernel that sent all to its AVX-512 fallback would show here, at a K
    below one tile step (24) too; past 2048-byte A rows (k = 1280) it is that fallback, bit for bit."""
    avx512 = {k["op"]: k["name"] for k in KERNELS if k["isa"] == "avx512"}[kernel["op"]]
    for kc, tiles in ((24, True), (96, True), (1280, False)):
        case = gemm_case(kernel["op"][4:], 64, 64, kc, seed=10)
        assert np.array_equal(run_kernel(kernel["name"], case, "bias"), run_kernel(avx512, case, "bias")) != tiles


@pytest.mark.parametrize("kernel,start", [
    pytest.param(k, start, id=f"{k['name']}-{start}", marks=needs(k["isa"]))
    for k in KERNELS if k["isa"] != "ref" for start in (STARTS if k["op"] == "bf16project" else ["c"])])
def test_denormals_stay_within_tolerance(kernel, start):
    """Products and sums about 2^-126: VDPBF16PS reads denormal accumulators as zero and flushes denormal
    results (Intel SDM: 'daz in, ftz out'), the twins keep them; each of the kernel's kc + 1 additions
    (the start, then two per pair) loses less than 2^-126 that way, in each row the head sums."""
    m, kc = (40, 40) if kernel["isa"] == "amx-emulated" else (14, 24)  # AMX: a block of two tile steps
    case = gemm_case(kernel["op"][4:], m, 37, kc, seed=3, scale=2.0 ** -64)
    got, want = run_kernel(kernel["name"], case, start), run_kernel(TWIN[kernel["op"]]["name"], case, start)
    assert_close(got, want, UKERNEL_TOL)
    rows = len(case["a"]) if kernel["op"] == "bf16head" else 1
    steps = -(-(kc + 1) // 2 // 16)  # TDPBF16PS adds two partial sums per step, then the step to the output
    assert np.abs(got.astype(np.float64) - want).max() < rows * (kc + 2 + 2 * steps) * 2.0 ** -126


@pytest.mark.parametrize("kernel", simd_kernels("bf16project"))
def test_kc_limit(kernel):
    """kc = 16384, ukernels.h's most: 8192 pairs, one row per block of the kernel's 32 KB buffer; one
    more input per channel is refused when the weights are packed."""
    check_against_twin(kernel, gemm_case("project", 3, 40, 16384, seed=4, k0=0, tail=0), "bias")
    with pytest.raises(InputError, match="bf16 takes at most 16384"):
        run_kernel(kernel["name"], gemm_case("project", 1, 8, 16384, seed=4, k0=0, tail=1), "bias")


# ---- 3. the twins against numpy ----

def relu6(v):
    return np.minimum(np.maximum(v, F32(0)), F32(6))


def dot_pairs(acc, a, w, order="odd first"):
    """acc + a . w[:, :kc]^T as ukernels.h (bf16) computes it, in float32: a and w rounded to bf16; per
    pair of k the odd product added first, then the even one; an odd kc's last pair of a is (a, 0), times
    the packed pair, whose odd half is w's next column where w has one. `order`: what another CPU might
    do instead ("even first", or "one rounding" of the pair's sum)."""
    a = widen(bf16_round_numpy(np.pad(a, ((0, 0), (0, a.shape[1] % 2)))))
    w = widen(bf16_round_numpy(np.pad(w, ((0, 0), (0, 1)))[:, :a.shape[1]]))
    acc = np.array(acc, F32)
    for k in range(0, a.shape[1], 2):
        odd, even = a[:, k + 1, None] * w[None, :, k + 1], a[:, k, None] * w[None, :, k]  # exact
        if order == "one rounding":  # the float64 sum of three such float32 is exact here
            acc = (acc.astype(np.float64) + odd + even).astype(F32)
        else:
            acc = (acc + odd) + even if order == "odd first" else (acc + even) + odd
    return acc


def gemm_numpy(case, start="c", order="odd first"):
    a, w, b, nc, kc = case["a"][:, :case["kc"]], case["w"], case["b"], case["nc"], case["kc"]
    m = len(a)
    if case["op"] == "project":
        base = {"c": case["c"][:, :nc], "bias+src": b + case["src"][:, :nc], "bias": np.broadcast_to(b, (m, nc)),
                "zero": np.zeros((m, nc), F32)}[start]
        return _padded(dot_pairs(base, a, w[:, case["k0"]:], order), 3, -7.0)
    out = relu6(dot_pairs(np.broadcast_to(b, (m, nc)), a, w, order))
    if case["op"] == "expand":
        return _padded(out, 3, -7.0)
    total = case["c"][0].copy()
    for row in out:  # row by row, in order, as the twin adds to the pool's sum
        total = total + row
    return total[None]


TWIN_CASES = [(1, 8, 1), (7, 13, 5), (14, 29, 40), (5, 3, 2), (3, 17, 320)]


@pytest.mark.parametrize("m,nc,kc", TWIN_CASES)
@pytest.mark.parametrize("op,start", [("expand", "c"), ("head", "c")] + [("project", s) for s in STARTS])
def test_twin_is_the_documented_arithmetic(op, start, m, nc, kc):
    case = gemm_case(op, m, nc, kc, seed=5)
    assert_same_bits(run_kernel(TWIN["bf16" + op]["name"], case, start), gemm_numpy(case, start),
                     f"the {op} twin vs numpy")


def test_pairs_add_the_odd_product_first():
    """1 + 2^24 rounds back to 2^24 (a tie, to even), so the order of a pair's two products shows:
    odd first, 2^24 + 1 -> 2^24; even first it would be 2 + 2^24."""
    w = np.ones((8, 2), F32)
    for a, want in (([1.0, 2.0 ** 24], 2.0 ** 24), ([2.0 ** 24, 1.0], 2.0 ** 24 + 2)):
        case = dict(op="project", a=np.array([a], F32), w=np.pad(w, ((0, 0), (K0, 0))), b=np.ones(8, F32),
                    c=np.zeros((1, 8), F32), src=None, kc=2, nc=8, k0=K0)
        out = run_kernel(TWIN["bf16project"]["name"], case, "bias")
        assert (out == F32(want)).all(), (a, out)


@pytest.mark.parametrize("order", ["even first", "one rounding"])
def test_the_tolerance_allows_another_pair_order(order):
    """What UKERNEL_TOL must absorb where a CPU adds a pair's products another way: numpy's twin so
    changed against the twin on the largest projection of section 2 (seen: 6.2e-6 on values up to 7)."""
    case = gemm_case("project", 113, 96, 1280, seed=2)
    want, got = run_kernel(TWIN["bf16project"]["name"], case, "bias"), gemm_numpy(case, "bias", order)
    assert not np.array_equal(got, want), "the orders do not differ on these inputs"
    assert_close(got, want, UKERNEL_TOL)


# ---- 4. the network ----

def _images(seed, n, size):
    return np.random.default_rng(seed).standard_normal((n, 3, *size), dtype=F32)


@pytest.fixture(scope="session")
def wide_model_path(tmp_path_factory):
    """A random width-1.0 model at 224x224, 1000 classes (the entry bf16_vs_f32 was measured on)."""
    return export_random(tmp_path_factory.mktemp("bf16-wide") / "wide.npz", seed=15, progress=False,
                         width_mult=1.0, size=(224, 224), num_classes=1000)


@pytest.fixture(params=["small", "wide"])
def model(request):
    """(path, 3 images) for the small model and the wide one."""
    if request.param == "small":
        return request.getfixturevalue("small_model_path"), _images(21, 3, (64, 64))
    return request.getfixturevalue("wide_model_path"), _images(22, 3, (224, 224))


@pytest.mark.parametrize("isa", ISAS)
def test_bf16_is_near_float32(model, isa):
    path, x = model
    assert_close(Engine.load(path, threads=2, dtype="bf16", isa=isa).run(x),
                 Engine.load(path, threads=2, isa=_core.float_isa_for(isa)).run(x), "bf16_vs_f32")


@needs("avx512")
def test_ref_and_avx512_engines_agree(model):
    """Their bf16 kernels agree bit for bit; their float32 depthwise and stem kernels do not (FMA), and
    where such a last-bit difference moves an activation across a bf16 rounding boundary, the bf16
    network carries a 2^-8 step onwards (seen: 0.014 and 0.020 here; up to 0.073 over 96 images of three
    small models, on logits up to 1.6, where half the images agree bit for bit)."""
    path, x = model
    assert_close(Engine.load(path, threads=2, dtype="bf16", isa="avx512").run(x),
                 Engine.load(path, threads=2, dtype="bf16", isa="ref").run(x), ISA_TOL)


@needs("amx")
def test_amx_and_avx512_engines_agree(model):
    """Only on a CPU with AMX-BF16 (first run on an Emerald Rapids class Xeon, 2026-12-03). The same
    depthwise and stem kernels; the GEMMs differ in their order of additions (the tiles' partial sums),
    which can move an activation across a bf16 rounding boundary as between ref and avx512, so the same
    entry."""
    path, x = model
    assert_close(Engine.load(path, threads=2, dtype="bf16", isa="amx").run(x),
                 Engine.load(path, threads=2, dtype="bf16", isa="avx512").run(x), ISA_TOL)


@pytest.mark.parametrize("isa", ISAS)
def test_plan_names_bf16_and_its_kernels(small_model_path, isa):
    engine = Engine.load(small_model_path, threads=1, dtype="bf16", isa=isa)
    plan = engine.plan
    assert engine.precision == plan.precision == "bf16" and plan.isa == isa
    assert f"bf16 on ISA {isa}" in str(plan)
    gemm = {k["op"][4:]: k["name"] for k in KERNELS if k["isa"] == isa}
    f32 = {k["op"]: k["name"] for k in _core.ukernels()
           if k["isa"] == float_isa(isa) and not k["op"].startswith(("q", "bf16"))}
    layers = {layer["name"]: layer for layer in plan.layers}
    assert layers["stem"]["kernels"] == [f32["stem"]]
    assert layers["head"]["kernels"] == [gemm["head"]] and layers["classifier"]["kernels"] == [gemm["project"]]
    for layer in plan.layers:
        if layer["name"].startswith("block"):
            dw = f32[f"dwconv3x3s{layer['stride']}"]
            want = [gemm["expand"], dw, gemm["project"]] if layer["hidden"] != layer["cin"] else [dw, gemm["project"]]
            assert layer["kernels"] == want, layer["name"]


@pytest.mark.parametrize("isa", ISAS)
def test_bits_depend_on_neither_threads_nor_batch(model, isa):
    path, x = model
    one = Engine.load(path, threads=1, dtype="bf16", isa=isa).run(x)
    two = Engine.load(path, threads=2, dtype="bf16", isa=isa)
    assert_same_bits(two.run(x), one, "2 threads vs 1")
    assert_same_bits(two.run(x[1:2]), one[1:2], "an image alone vs in a batch of 3")


# ---- 5. refusals ----

def test_an_int8_file_refuses_bf16(int8_model_path):
    with pytest.raises(InputError, match="is an int8 model and runs in int8, not bf16"):
        Engine.load(int8_model_path, dtype="bf16")


def test_the_cpu_refuses_fp16(small_model_path):
    with pytest.raises(DeviceError, match=r"the CPU engine runs fp32 and bf16, got dtype='fp16'"):
        Engine.load(small_model_path, dtype="fp16")


@pytest.mark.parametrize("isa", ["avx2", "neon"])
def test_an_isa_without_bf16_kernels_is_refused_naming_what_bf16_needs(small_model_path, isa):
    with pytest.raises(DeviceError, match=rf"isa '{isa}' has no bf16 kernels: .*AVX512_BF16.*available here: auto, ref"):
        Engine.load(small_model_path, dtype="bf16", isa=isa)


def test_auto_takes_the_best_bf16_isa_or_says_what_bf16_needs(small_model_path):
    if "avx512" in BF16_ISAS:
        assert Engine.load(small_model_path, dtype="bf16").plan.isa == ("amx" if "amx" in BF16_ISAS else "avx512")
    else:
        with pytest.raises(DeviceError, match=r"bf16 needs .*AVX512_BF16.*isa 'ref'"):
            Engine.load(small_model_path, dtype="bf16")
    assert Engine.load(small_model_path, dtype="bf16", isa="ref").plan.isa == "ref"  # everywhere


def test_amx_is_refused_naming_what_it_needs(small_model_path):
    if "amx" in BF16_ISAS:
        pytest.skip("this CPU has AMX-BF16")
    with pytest.raises(DeviceError, match=r"isa 'amx' is not supported by this CPU \(bf16 needs an x86-64 CPU "
                                          r"with AMX-TILE, AMX-BF16 .*XCR0 bits 17, 18.*ARCH_REQ_XCOMP_PERM\); "
                                          r"this one lacks AMX-TILE, AMX-BF16.*\)"):
        Engine.load(small_model_path, dtype="bf16", isa="amx")


def test_peak_gflops():
    """The tiles' TDPBF16PS (16 x 16 x 32 multiply-adds each) do many times VDPBF16PS's work per cycle:
    at least 8x on one thread (Emerald Rapids: 3224 against 111 GFLOP/s)."""
    assert _core.bf16_peak_gflops("ref") == -1
    peak = _core.bf16_peak_gflops("avx512", iters=10_000, trials=2)
    assert peak > 0 if "avx512" in BF16_ISAS else peak == -1
    amx = _core.bf16_peak_gflops("amx", iters=10_000, trials=2)
    assert amx > 8 * peak if "amx" in BF16_ISAS else amx == -1


def test_the_hook_refuses_an_odd_k0():
    case = gemm_case("project", 1, 8, 4, seed=6)
    with pytest.raises(InputError, match="k0 must be even"):
        _test_hooks.ukernel_gemm(TWIN["bf16project"]["name"], case["a"], case["w"], case["b"], case["c"], K0 + 1, 4,
                                 start="c")
