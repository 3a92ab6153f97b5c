"""The whole network through `_core.Model` vs the float64 reference, its plan, its refusals (each status
as its mbv2_engine.errors class), and the network table and weight-file reader `_core` binds."""
import math
import threading

import numpy as np
import pytest

from mbv2_engine import _core, reference
from mbv2_engine.arch import Arch, BlockSpec, build_arch, layer_shapes
from mbv2_engine.errors import DeviceError, InputError, ModelFileNotFoundError, ModelFormatError
from tolerances import assert_close

NUM_CLASSES = 10


def network_arrays(arch, seed):
    """Random weights under the file's names, scaled so every layer's output stays O(1)."""
    rng = np.random.default_rng(seed)

    def conv(name, shape, fan_in, gain):
        arrays[name + ".weight"] = rng.normal(0, gain / np.sqrt(fan_in), shape).astype(np.float32)
        arrays[name + ".bias"] = rng.normal(0.3, 0.5, shape[0]).astype(np.float32)

    arrays = {}
    conv("stem", (arch.stem, 3, 3, 3), 27, 2.0)
    for i, b in enumerate(arch.blocks):
        if b.has_expand:
            conv(f"blocks.{i}.expand", (b.hidden, b.cin), b.cin, 2.0)
        conv(f"blocks.{i}.depthwise", (b.hidden, 3, 3), 9, 1.5)
        conv(f"blocks.{i}.project", (b.cout, b.hidden), b.hidden, 0.7)
    conv("head", (arch.last, arch.blocks[-1].cout), arch.blocks[-1].cout, 2.0)
    conv("classifier", (arch.num_classes, arch.last), arch.last, 1.0)
    return arrays


def make_model(arch, arrays, padding="torch", **kwargs):
    blocks = [(b.cin, b.t, b.cout, b.stride) for b in arch.blocks]
    return _core.Model(arrays, blocks, arch.stem, arch.last, arch.num_classes, padding, **kwargs)


_CACHE = {}


def network(width):
    """(arch, arrays, model) per width, built once: packing the weights is the slow part."""
    if width not in _CACHE:
        arch = build_arch(width, NUM_CLASSES)
        arrays = network_arrays(arch, seed=int(width * 100))
        _CACHE[width] = arch, arrays, make_model(arch, arrays, isa="ref")
    return _CACHE[width]


def batch(n, h, w, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, 3, h, w)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("h,w", [(32, 32), (64, 48), (97, 65)])
@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
def test_network_matches_reference(width, h, w, n):
    arch, arrays, model = network(width)
    x = batch(n, h, w, seed=h + w + n)
    expected = reference.forward(arrays, arch, x)
    assert np.abs(expected).max() > 0.1, "degenerate weights: logits vanished"
    assert_close(model.run(x), expected, "f32_network_vs_f64")


@pytest.mark.parametrize("blocks", [
    pytest.param((BlockSpec(12, 1, 7, 1),), id="one-block"),
    pytest.param((BlockSpec(12, 1, 7, 2), BlockSpec(7, 3, 7, 1), BlockSpec(7, 6, 9, 2)), id="odd-channels"),
])
def test_small_custom_network(blocks):
    """Any chain of blocks works, down to one block that is both stem-fed and head-fused."""
    arch = Arch(1.0, 5, 12, blocks, 20)
    arrays = network_arrays(arch, seed=len(blocks))
    x = batch(2, 37, 33)
    for padding in ("torch", "same"):
        assert_close(make_model(arch, arrays, padding).run(x), reference.forward(arrays, arch, x, padding),
                     "f32_network_vs_f64")


def test_network_same_padding_and_nhwc_layout():
    arch, arrays, _ = network(0.35)
    model = make_model(arch, arrays, padding="same", isa="ref")
    x = batch(2, 64, 45)
    expected = reference.forward(arrays, arch, x, padding="same")
    assert_close(model.run(x), expected, "f32_network_vs_f64")
    assert_close(model.run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), layout="nhwc"), expected,
                 "f32_network_vs_f64")


def assert_concurrent_runs_match(model, inputs, expected, repeats):
    """One host thread per input, each calling model.run `repeats` times at once with the others."""
    results = [[] for _ in inputs]

    def work(i):
        for _ in range(repeats):
            results[i].append(model.run(inputs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        for g in got:
            np.testing.assert_array_equal(g, want)


def test_concurrent_runs_share_one_model():
    """run() is re-entrant: threads calling one model at once get exactly the single-threaded answers."""
    _, _, model = network(0.35)
    inputs = [batch(1, 32 + 8 * i, 40, seed=i) for i in range(4)]
    assert_concurrent_runs_match(model, inputs, [model.run(x) for x in inputs], repeats=3)


@pytest.mark.parametrize("h", [97, 150])  # last block 4 rows: one head group; 5 rows: one group of 5
@pytest.mark.parametrize("n", [1, 2, 5])
def test_thread_counts_agree(n, h):
    """1, 2 and 3 threads (bands of rows for one image, whole images for a batch, both for 5 on 2 or 3)."""
    arch, arrays, _ = network(1.0)
    x = batch(n, h, 65, seed=n)
    one = make_model(arch, arrays, threads=1).run(x)
    for threads in (2, 3):
        assert_close(make_model(arch, arrays, threads=threads).run(x), one, "thread_count_change")


def test_concurrent_runs_share_one_threaded_model():
    """Callers that find the pool busy run alone: every caller still gets the one-thread answer, bit for bit."""
    arch, arrays, _ = network(0.35)
    inputs = [batch(1 + i % 2, 40, 36 + 4 * i, seed=i) for i in range(4)]
    expected = [make_model(arch, arrays, threads=1).run(x) for x in inputs]
    assert_concurrent_runs_match(make_model(arch, arrays, threads=2), inputs, expected, repeats=5)


def test_plan_matches_architecture():
    arch, _, model = network(1.0)
    plan = model.plan(97, 65)
    shapes = layer_shapes(arch, 97, 65)
    assert [layer["name"] for layer in plan["layers"]] == [s.name for s in shapes]
    for layer, shape in zip(plan["layers"], shapes):
        assert (layer["in_hw"], layer["out_hw"], layer["macs"]) == (shape.in_hw, shape.out_hw, shape.macs)
        assert (layer["cin"], layer["hidden"], layer["cout"], layer["residual"], layer["params"]) == \
               (shape.cin, shape.hidden, shape.cout, shape.residual, shape.params)
    names = {k["name"] for k in _core.ukernels() if k["isa"] == model.isa}
    assert all(set(layer["kernels"]) <= names and layer["kernels"] for layer in plan["layers"])
    assert all(layer["chunk"] > 0 for layer in plan["layers"] if layer["hidden"])


def test_plan_memory_at_224(capsys):
    """The fused engine's whole arena is smaller than the one expanded tensor an unfused engine stores."""
    _, _, model = network(1.0)
    plan = model.plan(224, 224)
    # docs/design.md, section 4: input 150,528 + largest block output 200,704 floats, plus small scratch.
    assert (150_528 + 200_704) * 4 <= plan["arena_bytes"] < 1.5e6
    assert plan["ring_bytes"] < 135e3  # the widest ring: about 130 KB (3 x 114 x 96 floats)
    assert plan["arena_bytes"] + plan["ring_bytes"] < plan["largest_expanded_bytes"] < plan["unfused_live_bytes"]
    arch, arrays, _ = network(1.0)
    # This CPU's own kernels: AVX-512 tiles the wide rows two at a time, whose
    # ring holds 5 x 114 x 96 floats; each thread has its own ring and tile.
    one, two = (make_model(arch, arrays, threads=t).plan(224, 224) for t in (1, 2))
    assert two["ring_bytes"] == 2 * one["ring_bytes"] <= 2 * 5 * 114 * 96 * 4
    assert two["arena_bytes"] + two["ring_bytes"] <= 2_000_000
    with capsys.disabled():
        print(f"\n224x224 plan: arena {plan['arena_bytes']:,} B, ring {plan['ring_bytes']:,} B, "
              f"largest expanded {plan['largest_expanded_bytes']:,} B, unfused live {plan['unfused_live_bytes']:,} B")


def test_isa_selection():
    arch, arrays, _ = network(0.35)
    assert _core.available_isas()[0] == "ref"
    assert make_model(arch, arrays).isa == _core.available_isas()[-1]
    with pytest.raises(DeviceError, match="isa 'avx9' is unknown"):
        make_model(arch, arrays, isa="avx9")
    for isa, float_isa in (("amx", "avx512"), ("avxvnni", "avx2"), ("neondot", "neon")):
        with pytest.raises(DeviceError, match=rf"isa '{isa}' has no float32 kernels .+ run on '{float_isa}'"):
            make_model(arch, arrays, isa=isa)
    missing = [isa for isa in ("avx2", "avx512", "neon") if isa not in _core.available_isas()]
    for isa in missing:
        with pytest.raises(DeviceError, match=rf"isa '{isa}' is not supported by this CPU \(it needs .+\); "
                                             r"available: auto, ref"):
            make_model(arch, arrays, isa=isa)


@pytest.mark.parametrize("x,kwargs,message", [
    (np.zeros((1, 3, 32, 32), np.float64), {}, "float32"),
    (np.zeros((3, 32, 32), np.float32), {}, r"expected \(N, 3, H, W\)"),
    (np.zeros((1, 4, 32, 32), np.float32), {}, r"expected \(N, 3, H, W\)"),
    (np.zeros((1, 32, 32, 3), np.float32), {}, r"expected \(N, 3, H, W\)"),
    (np.zeros((1, 3, 32, 32), np.float32), dict(layout="nhwc"), r"expected \(N, H, W, 3\)"),
    (np.zeros((1, 3, 31, 32), np.float32), {}, "between 32 and"),
    (np.zeros((0, 3, 32, 32), np.float32), {}, "N = 0"),
    (np.zeros((1, 3, 32, 32), np.float32), dict(layout="chw"), "layout"),
    ([[0.0]], {}, "numpy array"),
])
def test_run_rejects_bad_input(x, kwargs, message):
    _, _, model = network(0.35)
    with pytest.raises(InputError, match=message):
        model.run(x, **kwargs)


def test_run_rejects_non_finite_input():
    _, _, model = network(0.35)
    x = batch(2, 32, 32)
    x[1, 2, 5, 7], x[0, 0, 0, 0] = np.nan, -np.inf
    with pytest.raises(InputError, match="holds 2 NaN or infinite values"):
        model.run(x)


def _without(arrays, name):
    return {k: v for k, v in arrays.items() if k != name}


@pytest.mark.parametrize("edit,error,message", [
    (lambda a: _without(a, "blocks.3.project.bias"), ModelFormatError, "missing array 'blocks.3.project.bias'"),
    (lambda a: {**a, "blocks.0.expand.weight": a["stem.bias"]}, ModelFormatError,
     "unexpected array 'blocks.0.expand.weight'"),
    (lambda a: {**a, "head.weight": a["head.weight"][:, :-1]}, ModelFormatError,
     r"'head.weight' has shape \(1280, 319\), expected"),
    (lambda a: {**a, "stem.bias": a["stem.bias"].astype(np.float64)}, InputError, "'stem.bias' must be float32"),
])
def test_model_rejects_bad_arrays(edit, error, message):
    arch, arrays, _ = network(1.0)
    with pytest.raises(error, match=message):
        make_model(arch, edit(arrays))


@pytest.mark.parametrize("field,value,error,message", [
    ("padding", "valid", InputError, "padding"),
    ("threads", 0, InputError, "threads"),
    ("blocks", [(24, 1, 8, 1)], ModelFormatError, "cin 24, expected 16"),
    ("blocks", [(16, 6, 8, 1)], ModelFormatError, "block 0 must have t = 1"),
    ("blocks", [(16, 1, 16, 1)], ModelFormatError, "no residual"),
])
def test_model_rejects_bad_spec(field, value, error, message):
    arch, arrays, _ = network(0.35)
    args = dict(arrays=arrays, blocks=[(b.cin, b.t, b.cout, b.stride) for b in arch.blocks], stem=arch.stem,
                last=arch.last, num_classes=arch.num_classes, padding="torch", threads=1)
    with pytest.raises(error, match=message):
        _core.Model(**{**args, field: value})


def test_core_ships_without_test_hooks():
    hooks = {"irblock", "stem", "head", "ukernel_gemm", "ukernel_dwconv", "ukernel_stem"}
    assert not hooks & set(dir(_core))


def test_network_table():
    net = _core.network(1.0, 1000)
    assert (net["stem"], net["last"], len(net["blocks"])) == (32, 1280, 17)
    assert net["blocks"][0] == (32, 1, 16, 1) and net["blocks"][-1] == (160, 6, 320, 1)
    assert _core.network(0.35, 10)["stem"] == 16
    for width in (0.0, -1.0, math.nan, math.inf, _core.MAX_WIDTH_MULT * 2):
        with pytest.raises(InputError, match="width_mult"):
            _core.network(width, 10)


def test_conv_arithmetic():
    """(zero rows before, output size) of one axis: torch and SAME give ceil(n / 2), a fixed rule
    floor((n + top + bottom - 3) / 2) + 1; stride-1 convs pad 1 whatever the rule."""
    assert [_core.conv_axis(n, 2, "torch") for n in (1, 7, 8, 224)] == [(1, 1), (1, 4), (1, 4), (1, 112)]
    assert [_core.conv_axis(n, 2, "same") for n in (7, 8, 224)] == [(1, 4), (0, 4), (0, 112)]
    assert [_core.conv_axis(n, 2, [0, 1, 1, 1]) for n in (7, 8)] == [(0, 3), (0, 4)]  # rows: top, bottom
    assert _core.conv_axis(7, 2, [1, 1, 0, 0]) == (1, 4) and _core.conv_axis(7, 2, [0, 0, 0, 0]) == (0, 3)
    assert _core.conv_axis(7, 1, [0, 0, 0, 0]) == (1, 7)
    with pytest.raises(InputError, match="too short for a 3x3 conv padded by 0 and 1"):
        _core.conv_axis(1, 2, [0, 1, 0, 1])
    for bad, message in ((0, "stride"), (3, "stride")):
        with pytest.raises(InputError, match=message):
            _core.conv_axis(8, bad, "torch")
    for rule in ([0, 2, 0, 1], [0, 1, 0], "valid", [True, 0, 0, 1]):
        with pytest.raises(InputError, match="padding"):
            _core.conv_axis(8, 2, rule)


# A Keras-style transfer-learning head on a network with every kind of stride-2 padding rule.
V2_HIDDEN = [{"units": 24, "activation": "relu"}, {"units": 13, "activation": "relu6"},
             {"units": 9, "activation": "none"}]
V2_PADDING = ["same", [0, 1, 0, 1], [1, 1, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]]


def with_head(arch, arrays, hidden, seed=5):
    """`arrays` with random hidden layers before a classifier resized to match."""
    rng = np.random.default_rng(seed)
    arrays = {k: v for k, v in arrays.items() if not k.startswith("classifier.")}
    inputs = arch.last
    for j, layer in enumerate(hidden):
        arrays[f"hidden.{j}.weight"] = rng.normal(0, 1.5 / np.sqrt(inputs), (layer["units"], inputs)).astype(np.float32)
        arrays[f"hidden.{j}.bias"] = rng.normal(0.2, 0.5, layer["units"]).astype(np.float32)
        inputs = layer["units"]
    arrays["classifier.weight"] = rng.normal(0, 1 / np.sqrt(inputs), (arch.num_classes, inputs)).astype(np.float32)
    arrays["classifier.bias"] = rng.normal(0, 0.3, arch.num_classes).astype(np.float32)
    return arrays


@pytest.mark.parametrize("isa", _core.available_isas())
@pytest.mark.parametrize("h,w", [(48, 47), (65, 48), (97, 131), (224, 224)])
def test_hidden_layers_and_fixed_padding_match_reference(isa, h, w):
    """Format version 2's head and per-conv padding rules through every ISA's kernels, at odd and even sizes."""
    arch, arrays, _ = network(0.35)
    arrays = with_head(arch, arrays, V2_HIDDEN)
    hidden = [(layer["units"], layer["activation"]) for layer in V2_HIDDEN]
    model = make_model(arch, arrays, V2_PADDING, isa=isa, threads=2, hidden=hidden)
    x = batch(2, h, w, seed=h * w)
    expected = reference.forward(arrays, arch, x, V2_PADDING, V2_HIDDEN)
    assert np.abs(expected).max() > 0.1, "degenerate weights: logits vanished"
    assert_close(model.run(x), expected, "f32_network_vs_f64")
    shapes = {s.name: s for s in layer_shapes(arch, h, w, V2_PADDING, V2_HIDDEN)}
    assert shapes["stem"].pad == (_core.conv_axis(h, 2, "same")[0], _core.conv_axis(w, 2, "same")[0])
    assert shapes["block1"].out_hw == tuple(_core.conv_axis(n, 2, [0, 1, 0, 1])[1] for n in shapes["block1"].in_hw)
    assert [shapes[f"hidden{j}"].cout for j in range(3)] == [24, 13, 9] and shapes["classifier"].cin == 9


def test_an_input_too_small_for_fixed_padding_is_refused():
    """Fixed pads can shrink a map faster than SAME: at 32x33, block 13's input is 1 row, short of a window."""
    arch, arrays, _ = network(0.35)
    model = make_model(arch, arrays, V2_PADDING)
    with pytest.raises(InputError, match="input 32x33 is too small for this model's padding: at block 13, a side "
                                         "of 1 is too short for a 3x3 conv padded by 1 and 0"):
        model.run(batch(1, 32, 33))


def test_padding_rules_must_match_the_strided_convs():
    arch, arrays, _ = network(0.35)
    with pytest.raises(ModelFormatError, match="'padding' lists 4 rules; the network has 5 stride-2 3x3 convs"):
        make_model(arch, arrays, V2_PADDING[:4])
    with pytest.raises(InputError, match="activation must be 'relu', 'relu6' or 'none', got 'gelu'"):
        make_model(arch, with_head(arch, arrays, V2_HIDDEN[:1]), "torch", hidden=[(24, "gelu")])


def test_member_shapes_name_every_array():
    arch, arrays, _ = network(0.35)
    shapes = _core.member_shapes(*arch.core_spec())
    assert shapes == [(name, a.shape) for name, a in arrays.items()]


def _meta(arch, size=(40, 48)):
    return {"format": _core.FORMAT_NAME, "version": _core.FORMAT_VERSION, "width_mult": arch.width_mult,
            "num_classes": arch.num_classes, "input_size": list(size), "padding": "torch",
            "preprocess": {"crop_fraction": 0.875, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
            "labels": None, "hidden": [], "activation": "none", "quantization": None, "source": {"test": True}}


def test_read_weight_file_hands_over_the_arrays(tmp_path):
    """(meta, arrays) in member order, each array the reader's own storage (a capsule as its base, no copy)."""
    import io
    import json

    arch, arrays, _ = network(0.35)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(_meta(arch)).encode(), np.uint8), **arrays)
    path = tmp_path / "w.npz"
    path.write_bytes(buffer.getvalue())
    for meta, got in (_core.read_weight_file(str(path)), _core.read_weight_file_bytes(buffer.getvalue())):
        assert meta["width_mult"] == 0.35 and meta["input_size"] == [40, 48] and meta["source"] == {"test": True}
        assert list(got) == list(arrays)
        for name, a in got.items():
            assert a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.owndata
            assert type(a.base).__name__ == "PyCapsule"
            np.testing.assert_array_equal(a, arrays[name])
    with pytest.raises(ModelFileNotFoundError):
        _core.read_weight_file(str(tmp_path / "missing.npz"))
    with pytest.raises(ModelFormatError):
        _core.read_weight_file_bytes(b"not a zip file")
