"""The int8 engine (format version 3) against the exact numpy simulation of its arithmetic.

`mbv2_engine.quant_reference.forward_int8` computes the int8 network as
docs/format.md defines it, in plain numpy. The engine must give the same
numbers on every int8 ISA this CPU has, at every thread count and batch size,
for every padding rule and odd input size: the only differences allowed are
the float32 stem's and classifier's summation orders (`int8_engine_vs_sim`).
Between thread counts, batches and layouts the bits must be identical.
"""
import numpy as np
import pytest

from mbv2_engine import Engine, _core, _test_hooks, quant_reference
from mbv2_engine import format as wformat
from mbv2_engine.errors import DeviceError
from mbv2_engine.export import export_random
from mbv2_engine.quantize import quantize
from tolerances import assert_close

INT8_ISAS = _core.available_int8_isas()


def _inputs(seed, n, h, w):
    return np.random.default_rng(seed).standard_normal((n, 3, h, w), dtype=np.float32)


def _quantized(tmp_path_factory, name, width, size, padding="torch"):
    folder = tmp_path_factory.mktemp(name)
    src = export_random(folder / "float.npz", seed=5, width_mult=width, size=size, num_classes=12, progress=False)
    if padding != "torch":
        arrays, meta, _ = wformat.load(src)
        src = wformat.save(folder / "float-padded.npz", arrays, {**meta, "padding": padding})
    return src, quantize(src, folder / "int8.npz", _inputs(1, 16, *size), samples=16)


@pytest.fixture(scope="module")
def small_int8(tmp_path_factory):
    return _quantized(tmp_path_factory, "int8-small", 0.35, (64, 64))


@pytest.fixture(scope="module")
def same_int8(tmp_path_factory):
    return _quantized(tmp_path_factory, "int8-same", 0.5, (72, 72), padding="same")


def simulate(path, x, isa):
    """The simulation, from the engine's own float32 stem for `isa` (see forward_int8's `stem`)."""
    arrays, meta, _ = wformat.load(path)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    stem_isa = _core.float_isa_for(isa)
    stem = _test_hooks.stem(nhwc, arrays["stem.weight"], arrays["stem.bias"], meta["padding"] if isinstance(
        meta["padding"], str) else meta["padding"][0], stem_isa)
    return quant_reference.forward_int8(arrays, meta, nhwc, stem=np.minimum(np.maximum(stem, 0), 6))


@pytest.mark.parametrize("isa", INT8_ISAS)
@pytest.mark.parametrize("size", [(64, 64), (97, 131), (33, 40)])
def test_engine_matches_the_simulation(small_int8, isa, size):
    _, path = small_int8
    x = _inputs(2, 2, *size)
    assert_close(Engine.load(path, threads=1, isa=isa).run(x), simulate(path, x, isa), "int8_engine_vs_sim")


@pytest.mark.parametrize("isa", INT8_ISAS)
@pytest.mark.parametrize("size", [(72, 72), (71, 65)])
def test_same_padding_matches_the_simulation(same_int8, isa, size):
    _, path = same_int8
    x = _inputs(3, 2, *size)
    assert_close(Engine.load(path, threads=2, isa=isa).run(x), simulate(path, x, isa), "int8_engine_vs_sim")


def test_every_split_gives_the_same_bits(small_int8):
    _, path = small_int8
    x = _inputs(4, 5, 96, 80)
    one = Engine.load(path, threads=1).run(x)
    for threads in (2, 3, 7):
        assert np.array_equal(Engine.load(path, threads=threads).run(x), one), threads
    alone = np.stack([Engine.load(path, threads=2).run(x[i:i + 1])[0] for i in range(len(x))])
    assert np.array_equal(alone, one)
    nhwc = Engine.load(path, threads=1)._backend.run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "nhwc")
    assert np.array_equal(nhwc, one)


def test_plan_and_info_name_the_precision_and_kernels(small_int8):
    _, path = small_int8
    engine = Engine.load(path, threads=1)
    plan = engine.plan
    assert engine.precision == plan.precision == "int8" and plan.isa == INT8_ISAS[-1]
    blocks = [layer for layer in plan.layers if layer["name"].startswith("block")]
    assert all(k.startswith("mbv2_qu8_") and k.endswith("__" + plan.isa) for b in blocks for k in b["kernels"])
    # the stem stays float32, as the file says, and its output is quantized for block 0
    assert plan.layers[0]["kernels"][0].startswith("mbv2_f32_stem")
    stem_out = plan.layers[0]["kernels"][1]
    assert stem_out.startswith("mbv2_qu8_quantize_") and stem_out.endswith("__" + plan.isa)
    assert plan.layers[-1]["kernels"][0].startswith("mbv2_f32_project")
    assert "int8 on ISA" in str(plan)
    # an int8 arena holds bytes between blocks, and only the float32 image beside them
    float_plan = Engine.load(small_int8[0], threads=1).plan
    assert plan.arena_bytes + plan.ring_bytes < float_plan.arena_bytes + float_plan.ring_bytes
    assert plan.largest_expanded_bytes * 4 == float_plan.largest_expanded_bytes


def test_an_isa_without_int8_kernels_is_refused(small_int8):
    _, path = small_int8
    with pytest.raises(DeviceError, match="int8"):
        Engine.load(path, isa="neondot" if "neondot" not in INT8_ISAS else "avx512")


def test_amx_without_amx_is_refused_naming_what_it_needs(small_int8):
    if "amx" in INT8_ISAS:
        pytest.skip("this CPU has AMX-INT8")
    with pytest.raises(DeviceError, match=r"isa 'amx' is not supported by this CPU \(int8 needs an x86-64 CPU "
                                          r"with AMX-TILE, AMX-INT8 .*XCR0 bits 17, 18.*ARCH_REQ_XCOMP_PERM\); "
                                          r"this one lacks AMX-TILE, AMX-INT8.*\)"):
        Engine.load(small_int8[1], isa="amx")


def test_the_gpu_path_refuses_int8(small_int8):
    with pytest.raises(DeviceError, match="int8 model"):
        Engine.load(small_int8[1], device="cuda", dtype="fp16")


def test_a_bias_too_large_for_its_scales_is_refused(small_int8, tmp_path):
    from mbv2_engine.errors import ModelFormatError
    arrays, meta, _ = wformat.load(small_int8[1])
    arrays = dict(arrays)
    arrays["blocks.3.project.bias"] = arrays["blocks.3.project.bias"] + np.float32(1e6)
    path = wformat.save(tmp_path / "big-bias.npz", arrays, meta)
    with pytest.raises(ModelFormatError, match=r"blocks.3.project.bias.*exceeds 2\^30"):
        Engine.load(path)
