"""Post-training int8 quantization (mbv2_engine/quantize.py) and the exact int8 simulation
(mbv2_engine/quant_reference.py), against docs/quantization.md. No test here loads a version-3
file into the engine: that is tests of the int8 engine's own."""
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from mbv2_engine import format as wformat
from mbv2_engine import quant_reference as R
from mbv2_engine import quantize as Q
from mbv2_engine import reference, shapes
from mbv2_engine.arch import build_arch, layer_rules
from mbv2_engine.cli import main
from mbv2_engine.demo import SHAPES_MODEL
from mbv2_engine.errors import ImageNotFoundError, InputError, ModelFileNotFoundError, ModelFormatError
from tolerances import assert_close

HELD_OUT = 1000  # 1% is 10 pictures: enough that one borderline picture does not decide the test
CALIBRATION = Q.DEFAULT_SAMPLES


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes_wf():
    return wformat.load(SHAPES_MODEL)


@pytest.fixture(scope="module")
def held_out():
    """The shipped model's held-out pictures (a seed the training never saw), NHWC, and their labels."""
    images, labels = shapes.make_dataset(HELD_OUT, shapes.HELD_OUT_SEED)
    return shapes.to_batch(images).transpose(0, 2, 3, 1), labels


@pytest.fixture(scope="module")
def held_out_float(shapes_wf, held_out):
    arrays, meta, arch = shapes_wf
    return Q.float_forward(arrays, arch, held_out[0])


@pytest.fixture(scope="module")
def shapes_observed(shapes_wf):
    """One calibration run on pictures of the training seed; every method's parameters come from it."""
    x = shapes.to_batch(shapes.make_dataset(CALIBRATION, shapes.TRAIN_SEED)[0])
    return Q.observe(shapes_wf, x, samples=CALIBRATION)


@pytest.fixture(scope="module")
def shapes_q(shapes_wf, shapes_observed):
    return Q.from_observers(shapes_wf, *shapes_observed, Q.DEFAULT_METHOD)


@pytest.fixture(scope="module")
def shapes_q_path(shapes_q, tmp_path_factory):
    return Q.save_quantized(tmp_path_factory.mktemp("q") / "shapes-int8.npz", shapes_q.arrays, shapes_q.meta)


@pytest.fixture(scope="module")
def picture_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibration")
    for i, img in enumerate(shapes.make_dataset(6, 5)[0]):
        Image.fromarray(img).save(d / f"{i}.png")
    return d


def noise(n, size=64, seed=0, layout="nchw"):
    shape = (n, 3, size, size) if layout == "nchw" else (n, size, size, 3)
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---- weights --------------------------------------------------------------------------------------

def test_weights_symmetric_per_channel_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (16, 24)) * rng.uniform(0.01, 3, (16, 1))  # channels of very different ranges
    w = w.astype(np.float32)
    b = rng.normal(0, 0.1, 16).astype(np.float32)
    s_w = Q.weight_scales(w, b, s_in=0.02)
    q = Q.quantize_weight(w, s_w)
    assert q.dtype == np.int8 and s_w.dtype == np.float32 and s_w.shape == (16,)
    assert np.allclose(s_w, np.abs(w).max(1) / 127, rtol=1e-6)
    assert (np.abs(q).max(1) == 127).all() and q.min() >= -127  # the full range, never -128
    err = np.abs(w - q.astype(np.float64) * s_w[:, None])
    assert (err <= s_w[:, None] / 2 * (1 + 1e-6)).all()


def test_a_weight_at_minus_max_is_minus_127_not_minus_128():
    w = np.array([[-2.54, 1.0, 0.02]], np.float32)  # s_w = 2.54 / 127 = 0.02
    s_w = Q.weight_scales(w, np.zeros(1, np.float32), 0.1)
    assert Q.quantize_weight(w, s_w).tolist() == [[-127, 50, 1]]


def test_depthwise_weights_scale_per_channel():
    w = np.random.default_rng(1).normal(0, 1, (8, 3, 3)).astype(np.float32)
    s_w = Q.weight_scales(w, np.zeros(8, np.float32), 0.05)
    assert s_w.shape == (8,) and np.allclose(s_w, np.abs(w).reshape(8, -1).max(1) / 127, rtol=1e-6)
    assert Q.quantize_weight(w, s_w).shape == (8, 3, 3)


def test_dead_channel_gets_the_smallest_scale_and_zero_codes():
    w = np.array([[0.0, 0.0], [1.0, -0.5]], np.float32)
    s_w = Q.weight_scales(w, np.zeros(2, np.float32), 0.05)
    smallest = np.nextafter(np.float32(1e-9), np.float32(1))  # float32(1e-9) itself is just below 1e-9
    assert s_w[0] == smallest and Q.quantize_weight(w, s_w)[0].tolist() == [0, 0]
    assert Q.uint8_params(0.0, 255 * 1e-9) == (float(smallest), 0)


def test_bias_too_large_for_tiny_weights_raises_the_scale_just_enough():
    s_in = np.float32(0.01)
    w = np.array([[1e-6, -1e-6], [0.0, 0.0], [0.5, 0.25]], np.float32)
    b = np.array([3.0, -2.0, 0.1], np.float32)  # channel 0 and 1 (dead) need more than max|w| / 127
    s_w = Q.weight_scales(w, b, s_in)
    bias_q = np.rint(b.astype(np.float64) / (np.float64(s_in) * s_w.astype(np.float64)))
    assert (np.abs(bias_q) <= 2 ** 30).all()
    assert np.abs(bias_q[:2]).min() > 2 ** 30 * (1 - 1e-6)  # raised just enough, not more
    assert s_w[2] == np.float32(0.5 / 127)  # an ordinary channel keeps max|w| / 127
    assert R.quantize_bias(b, s_in, s_w).dtype == np.int32


def test_weight_scale_beyond_the_format_limit_is_refused():
    with pytest.raises(ModelFormatError, match="above the format's limit"):
        Q.weight_scales(np.array([[1e12]], np.float32), np.zeros(1, np.float32), 0.1)


# ---- activation parameters ------------------------------------------------------------------------

def test_tensor_list_has_the_right_count_for_several_widths():
    for width in (0.35, 0.5, 0.75, 1.0, 1.4):
        arch = build_arch(width, 10)
        names = R.tensor_names(arch)
        assert len(names) == 1 + sum(3 if b.has_expand else 2 for b in arch.blocks) + 1 == 52
        assert names[:4] == ["stem", "blocks.0.depthwise", "blocks.0.out", "blocks.1.expand"]
        assert names[-1] == "head" and len(Q.quantized_convs(arch)) == 16 + 17 + 17 + 1  # expand, dw, project, head


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_quantize_other_widths(width):
    arch = build_arch(width, 3)
    rng = np.random.default_rng(0)
    arrays = {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in wformat.expected_shapes(arch).items()}
    meta = {"format": wformat.FORMAT_NAME, "version": 2, "width_mult": width, "num_classes": 3,
            "input_size": [32, 32], "padding": "torch", "preprocess": wformat.TORCHVISION_PREPROCESS,
            "labels": None, "hidden": [], "activation": "none", "source": {"kind": "test"}}
    q = Q.quantize_model(wformat.WeightFile(arrays, meta, arch), noise(2, 32), method="minmax")
    assert len(q.meta["quantization"]["tensors"]) == 52
    Q.check_quantized(q.arrays, q.meta)


def test_zero_points_and_scales_of_the_shapes_model(shapes_q):
    tensors = shapes_q.meta["quantization"]["tensors"]
    for name, (s, z) in zip(R.tensor_names(shapes_q.arch), tensors):
        assert type(z) is int and type(s) is float and float(np.float32(s)) == s and 1e-9 <= s <= 1e9
        if R.is_relu6(name):
            assert z == 0 and s <= 6 / 255 * (1 + 1e-6)
        else:
            assert 0 < z < 255  # block outputs are signed: the zero point lies inside
    Q.check_quantized(shapes_q.arrays, shapes_q.meta)


def test_uint8_params_cover_the_range_and_zero_exactly():
    s, z = Q.uint8_params(-1.0, 3.0)
    assert s == float(np.float32(4 / 255)) and z == 64
    assert Q.uint8_params(0.5, 2.0) == Q.uint8_params(0.0, 2.0)  # 0 is always inside the range
    s, z = Q.uint8_params(-2.0, -0.5)
    assert z == 255 and s == float(np.float32(2 / 255))
    assert Q.uint8_params(0.0, 0.0) == (float(np.float32(1 / 255)), 0)  # a tensor that is always 0
    assert Q.relu6_params(7.0) == Q.relu6_params(6.0) == (float(np.float32(6 / 255)), 0)


def test_observer_keeps_counts_exact_as_its_range_grows():
    rng = np.random.default_rng(0)
    obs = Q.Observer(signed=True, bins=64)
    parts = [rng.normal(0, 0.01, 1000), np.zeros(10), rng.normal(0, 1, 1000), rng.normal(0, 30, 100)]
    for p in parts:
        obs.add(p.astype(np.float32))
    x = np.concatenate(parts).astype(np.float32)
    assert obs.count == x.size == obs.counts.sum() and obs.min == x.min() and obs.max == x.max()
    width = obs.range / obs.bins
    edges = -obs.range + width * np.arange(2 * obs.bins + 1)
    assert (np.histogram(x, edges)[0] == obs.counts).all()
    for q in (0.9, 0.999, 0.01):
        assert abs(obs.percentile(q) - np.quantile(x, q)) <= width


def test_observer_of_all_zeros_then_values():
    obs = Q.Observer(signed=False)
    obs.add(np.zeros(100, np.float32))
    obs.add(np.array([0.0, 2.0, 3.0], np.float32))
    assert obs.counts.sum() == 103 and obs.counts[0] == 101 and obs.max == 3.0


def test_methods_on_a_heavy_tailed_tensor():
    rng = np.random.default_rng(0)
    x = rng.exponential(0.3, 200_000).astype(np.float32)  # max about 3.7; 99% below 1.4
    obs = Q.Observer(signed=False)
    obs.add(x)
    s_max = Q.activation_params(obs, "minmax", True)[0]
    s_pct = Q.activation_params(obs, "percentile-99", True)[0]
    s_mse = Q.activation_params(obs, "mse", True)[0]
    assert s_max == float(np.float32(x.max() / 255))
    assert abs(s_pct * 255 - np.quantile(x, 0.99)) <= 2 * obs.range / obs.bins
    assert s_mse < s_max  # the MSE search clips a heavy tail

    def mse(s):
        return np.mean((np.clip(np.rint(x / s), 0, R.relu6_hi(s)) * s - x) ** 2)

    assert mse(s_mse) < mse(s_max) and mse(s_mse) < mse(s_pct)


def test_unknown_method_is_refused():
    for bad in ("max", "percentile-40", "percentile-", "percentile-101", "MSE"):
        with pytest.raises(InputError, match="calibration method"):
            Q.parse_method(bad)
    assert Q.parse_method("percentile-99.99") == ("percentile", 99.99)


# ---- the float32 forward pass calibration observes ------------------------------------------------

def test_float_forward_matches_the_float64_reference(shapes_wf, head_model_path):
    x = noise(3)
    arrays, meta, arch = shapes_wf
    got = Q.float_forward(arrays, arch, x.transpose(0, 2, 3, 1), meta["padding"], meta["hidden"])
    assert_close(got, reference.forward(arrays, arch, x, meta["padding"], meta["hidden"]), "f32_network_vs_f64")
    arrays, meta, arch = wformat.load(head_model_path)  # hidden layers, fixed pads
    x = noise(2, 67)
    got = Q.float_forward(arrays, arch, x.transpose(0, 2, 3, 1), meta["padding"], meta["hidden"])
    assert_close(got, reference.forward(arrays, arch, x, meta["padding"], meta["hidden"]), "f32_network_vs_f64")


# ---- the int8 arithmetic, by hand -----------------------------------------------------------------

def test_pointwise_requantization_by_hand():
    """s_in 0.25, s_w 0.5, s_out 0.25: scale 0.5, so an odd accumulator is a rounding tie; the ReLU6
    output's top code is rint(6 / 0.25) = 24."""
    a = np.array([10, 20], np.uint8).reshape(1, 1, 1, 2)  # z_in 3: (7, 17)
    w = np.array([[1, -1], [1, 0], [3, 5], [-1, -1], [1, 1]], np.int8)
    s_w = np.full(5, 0.5, np.float32)
    b = np.array([15, 0, 0, 0, -2], np.float32) * np.float32(0.125)  # s_in * s_w = 0.125
    assert R.quantize_bias(b, 0.25, s_w).tolist() == [15, 0, 0, 0, -2]
    out = R.qconv("expand", a, (0.25, 3), (0.25, 0), w, s_w, b)
    # acc: -10 + 15 = 5 -> 2.5 -> 2 (tie to even); 7 -> 3.5 -> 4 (tie to even); 106 -> 53 -> 24 (the
    # ReLU6 clamp, not 255); -24 -> 0; 24 - 2 = 22 -> 11.
    assert out.ravel().tolist() == [2, 4, 24, 0, 11]


def test_projection_with_residual_by_hand():
    """Block output (0.25, 128): clamp to [-128, 127] before the zero point; the residual (0.5, 100)
    adds (r - 100) * float32(0.5 / 0.25)."""
    a = np.array([4, 6], np.uint8).reshape(1, 1, 1, 2)  # z_in 0 (a depthwise output)
    r = np.array([101, 100, 101, 100, 255], np.uint8).reshape(1, 1, 1, 5)
    w = np.array([[1, 0], [1, 0], [0, 0], [127, 127], [-127, -127]], np.int8)
    s_w = np.full(5, 0.5, np.float32)
    b = np.array([0, 0.125, 0.125, 0, 0], np.float32)  # bias_q 0, 1, 1, 0, 0
    out = R.qconv("project", a, (0.25, 0), (0.25, 128), w, s_w, b, residual=(r, 0.5, 100))
    # v = acc * 0.5 + (r - 100) * 2: 2 + 2 = 4; 2.5 + 0 = 2.5 -> 2; 0.5 + 2 = 2.5 -> 2; 635 -> 127;
    # -635 + 310 = -325 -> -128.
    assert out.ravel().tolist() == [132, 130, 130, 255, 0]


def test_requantize_is_float32_multiply_then_float32_add():
    rng = np.random.default_rng(0)
    acc = rng.integers(-2 ** 20, 2 ** 20, (1000, 4))
    scale = np.array([3.1e-5, 7.7e-4, 1.234e-3, 9.9e-6], np.float32)
    r = rng.integers(0, 256, (1000, 4)).astype(np.uint8)
    s_out, z_out, s_r, z_r = 0.0734, 121, 0.0581, 117
    got = R.requantize(acc, scale, s_out, z_out, False, (r, s_r, z_r))
    v = np.float32(acc.astype(np.int32).astype(np.float32) * scale)
    v = np.float32(v + np.float32((r.astype(np.int32) - z_r).astype(np.float32) * np.float32(s_r / s_out)))
    want = np.clip(np.rint(np.clip(v, -z_out, 255 - z_out)) + z_out, 0, 255)
    assert (got == want).all() and got.dtype == np.uint8


def test_the_residual_add_rounds_in_float32():
    """v = 2.0 + float32(0.5 + 2^-24) is 2.5 + 2^-24 exactly, but float32 has no such value: the
    float32 add gives 2.5, a tie, and rint gives 2 (float64 arithmetic would give 3)."""
    s_out = 0.25
    s_r = float(np.float32(0.125 + 2 ** -26))  # s_r / s_out = 0.5 + 2^-24, a float32 value
    assert np.float32(s_r / s_out) == np.float32(0.5 + 2 ** -24)
    r = np.array([[101]], np.uint8)
    got = R.requantize(np.array([[4]]), np.array([0.5], np.float32), s_out, 128, False, (r, s_r, 100))
    assert got.tolist() == [[130]]
    assert np.rint(4 * 0.5 + 1 * (s_r / s_out)) == 3


def test_stem_quantization_by_hand():
    x = np.array([0.0, 0.25, 0.75, 1.25, 6.0, 100.0], np.float32)  # s0 0.5: inv 2, top code rint(12)
    assert R.quantize_stem(x, 0.5).tolist() == [0, 0, 2, 2, 12, 12]
    x = np.array([5.99, 6.0], np.float32)
    assert R.quantize_stem(x, 0.02).tolist() == [255, 255]  # rint(6 / 0.02) = 300 > 255: the top is 255


def test_pool_by_hand():
    q = np.array([[[[1, 2], [3, 4]], [[5, 6], [255, 0]]]], np.uint8)  # (1, 2, 2, 2): channel sums 264, 12
    got = R.pool(q, 0.1)
    assert got.dtype == np.float32
    assert got.tolist() == [[np.float32(264) * np.float32(0.1 / 4), np.float32(12) * np.float32(0.1 / 4)]]


@pytest.mark.parametrize("stride,rule", [(1, "torch"), (2, "torch"), (2, "same"), (2, [0, 1, 0, 1]),
                                         (2, [1, 1, 0, 1])])
@pytest.mark.parametrize("size", [(7, 7), (8, 6)])
def test_depthwise_accumulators_pad_as_the_float_reference(stride, rule, size):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, *size, 5)).astype(np.uint8)
    w = rng.integers(-127, 128, (5, 3, 3)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 5).astype(np.int32)
    got = R.depthwise_acc(a, w, bias, stride, rule)
    want = reference.depthwise3x3(a.astype(np.float64), w.astype(np.float64), bias.astype(np.float64), stride, rule)
    assert got.dtype == np.int64 and (got == want).all()  # integers below 2^53: float64 is exact


def test_pointwise_accumulators_subtract_the_zero_point():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 3, 3, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, (4, 6)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 4).astype(np.int32)
    got = R.pointwise_acc(a, 77, w, bias)
    want = np.einsum("nhwk,ck->nhwc", a.astype(np.int64) - 77, w.astype(np.int64)) + bias
    assert (got == want).all()


# ---- the int8 network -----------------------------------------------------------------------------

def test_every_int8_layer_is_its_real_valued_conv_to_one_code(shapes_q, held_out):
    """Each traced uint8 tensor against the conv in float64 on the dequantized input codes with the
    dequantized weights, quantized once: the integer path may differ only where the float32 rounding
    of the requantization lands a value on the other side of a rounding boundary."""
    arrays, meta, arch = shapes_q
    params = dict(zip(R.tensor_names(arch), meta["quantization"]["tensors"]))
    rules = layer_rules(arch, meta["padding"])
    _, trace = R.forward_int8(arrays, meta, held_out[0][:8], trace=True)
    residual_of = {f"blocks.{i}.out": (f"blocks.{i - 1}.out" if i else "stem") for i, b in enumerate(arch.blocks)
                   if b.residual}
    differ = total = 0
    for prefix, src, dst in Q.quantized_convs(arch):
        x = R.dequantize(trace[src], *params[src])
        w = arrays[prefix + ".weight"].astype(np.float64)
        w = w * arrays[prefix + ".weight_scale"].astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
        b = arrays[prefix + ".bias"].astype(np.float64)
        if prefix.endswith("depthwise"):
            i = int(prefix.split(".")[1])
            y = reference.depthwise3x3(x, w, b, arch.blocks[i].stride, rules[i + 1])
        else:
            y = reference.pointwise(x, w, b)
        if dst in residual_of:
            y = y + R.dequantize(trace[residual_of[dst]], *params[residual_of[dst]])
        s, z = params[dst]
        top = R.relu6_hi(s) if R.is_relu6(dst) else 255 - z
        want = np.clip(np.rint(y / s), -z if not R.is_relu6(dst) else 0, top) + z
        diff = np.abs(trace[dst].astype(np.int64) - want)
        assert diff.max() <= 1, dst
        differ, total = differ + int((diff > 0).sum()), total + diff.size
    assert differ / total < 0.01


@pytest.mark.parametrize("method", ["minmax", "percentile-99.99", "mse"])
def test_int8_tracks_float_on_held_out_pictures(shapes_wf, shapes_observed, held_out, held_out_float, method):
    x, labels = held_out
    ref = held_out_float
    q = Q.from_observers(shapes_wf, *shapes_observed, method)
    got = R.forward_int8(q.arrays, q.meta, x)
    a = R.agreement(ref, got)
    assert a["top1_agreement"] >= 0.99, a
    assert a["mean_abs_error"] < 0.06 and a["max_abs_error"] < 1.0, a  # logits up to ~7
    assert (got.argmax(1) == labels).mean() >= 0.96  # the float model: 98%


def test_trace_lists_every_tensor_in_order(shapes_q, held_out):
    logits, trace = R.forward_int8(shapes_q.arrays, shapes_q.meta, held_out[0][:2], trace=True)
    assert list(trace)[:-1] == R.tensor_names(shapes_q.arch) and list(trace)[-1] == "pooled"
    assert all(t.dtype == np.uint8 for n, t in trace.items() if n != "pooled")
    assert trace["stem"].shape == (2, 32, 32, 16) and trace["head"].shape == (2, 2, 2, 1280)
    assert logits.dtype == np.float32 and logits.shape == (2, 10)
    stem = reference.stem(shapes_q.arrays, held_out[0][:2].astype(np.float64), "torch").astype(np.float32)
    assert np.array_equal(R.forward_int8(shapes_q.arrays, shapes_q.meta, held_out[0][:2], stem=stem), logits)


def test_hidden_layers_and_fixed_padding(head_model_path):
    x = noise(16, seed=3)
    q = Q.quantize_model(head_model_path, x, method="mse")
    assert q.meta["hidden"] == wformat.load(head_model_path).meta["hidden"]
    arrays, meta, arch = wformat.load(head_model_path)
    ref = Q.float_forward(arrays, arch, x[:4].transpose(0, 2, 3, 1), meta["padding"], meta["hidden"])
    got = R.forward_int8(q.arrays, q.meta, x[:4].transpose(0, 2, 3, 1))
    assert np.abs(got - ref).max() < 0.5 * np.abs(ref).max()  # random weights: little signal, but close


# ---- the file -------------------------------------------------------------------------------------

def test_the_written_file_follows_the_contract(shapes_q_path, shapes_wf):
    with zipfile.ZipFile(shapes_q_path) as z:
        names = z.namelist()
        meta = json.loads(np.load(io.BytesIO(z.read("__meta__.npy"))).tobytes())
    assert names[0] == "__meta__.npy"
    assert set(meta) == {"format", "version", "width_mult", "num_classes", "input_size", "padding", "preprocess",
                         "labels", "hidden", "activation", "quantization", "source"}
    assert meta["version"] == 3 and meta["source"] == shapes_wf.meta["source"]
    q = meta["quantization"]
    assert list(q) == ["weights", "activations", "layers", "calibration", "tensors"]
    assert q["weights"] == "int8-symmetric-per-channel" and q["activations"] == "uint8-asymmetric-per-tensor"
    assert q["layers"] == {"stem": "float32", "blocks": "int8", "head": "int8", "classifier": "float32"}
    assert q["calibration"] == {"method": Q.DEFAULT_METHOD, "samples": CALIBRATION}
    loaded = Q.load_quantized(shapes_q_path)
    with np.load(shapes_q_path) as z:
        for name in z.files:
            if name.endswith(".weight") and not name.startswith(("stem", "classifier")):
                assert z[name].dtype.str == "|i1"
            elif name != "__meta__":
                assert z[name].dtype.str == "<f4"
    for name, a in shapes_wf.arrays.items():
        b = loaded.arrays[name]
        if b.dtype == np.int8:
            assert a.shape == b.shape and loaded.arrays[name + "_scale"].shape == (a.shape[0],)
        else:
            assert np.array_equal(a, b)  # stem, biases, classifier: the float file's bits


def test_check_quantized_refuses_what_the_contract_forbids(shapes_q):
    arrays, meta, _ = shapes_q

    def refused(arrays=arrays, meta=meta, match=""):
        with pytest.raises(ModelFormatError, match=match):
            Q.check_quantized(arrays, meta)

    bad = dict(arrays)
    bad["head.weight"] = arrays["head.weight"].copy()
    bad["head.weight"][0, 0] = -128
    refused(bad, match="-128")
    q = json.loads(json.dumps(meta))
    q["quantization"]["tensors"][1][1] = 3
    refused(meta=q, match="blocks.0.depthwise: zero point 3")
    q = json.loads(json.dumps(meta))
    q["quantization"]["tensors"].pop()
    refused(meta=q, match="must list 52")
    q = json.loads(json.dumps(meta))
    q["quantization"]["tensors"][0][0] = 0.1  # not a float32 value
    refused(meta=q, match="float32 scale")
    bad = dict(arrays)
    bad["head.weight_scale"] = np.full_like(arrays["head.weight_scale"], 1e-12)
    refused(bad, match="weight_scale")
    bad = {k: v for k, v in arrays.items() if k != "blocks.3.project.weight_scale"}
    refused(bad, match="missing")


def test_quantize_writes_and_the_simulation_reads_it(tmp_path, shapes_wf, held_out):
    path = Q.quantize(SHAPES_MODEL, tmp_path / "q.npz", held_out[0][:8], method="minmax")
    q = Q.load_quantized(path)
    assert q.meta["quantization"]["calibration"] == {"method": "minmax", "samples": 8}
    assert R.forward_int8(q.arrays, q.meta, held_out[0][:2]).shape == (2, 10)


# ---- calibration inputs ---------------------------------------------------------------------------

def test_images_are_preprocessed_as_classify_does(picture_dir, shapes_wf):
    from mbv2_engine.preprocess import load_image

    paths = sorted(str(p) for p in picture_dir.iterdir())
    count, batches = Q.calibration_source([picture_dir], shapes_wf.meta, 4)
    x = np.concatenate(list(batches(3)))
    pp = shapes_wf.meta["preprocess"]
    want = np.stack([load_image(p, (64, 64), pp["crop_fraction"], pp["mean"], pp["std"]) for p in paths[:4]])
    assert count == 4 and np.array_equal(x, want.transpose(0, 2, 3, 1))


def test_both_layouts_give_the_same_parameters(shapes_wf):
    x = noise(4, seed=2)
    a = Q.quantize_model(shapes_wf, x).meta["quantization"]["tensors"]
    b = Q.quantize_model(shapes_wf, np.ascontiguousarray(x.transpose(0, 2, 3, 1))).meta["quantization"]["tensors"]
    assert a == b


def test_samples_bounds_the_inputs_used(shapes_wf):
    q = Q.quantize_model(shapes_wf, noise(10), samples=3)
    assert q.meta["quantization"]["calibration"]["samples"] == 3


@pytest.mark.parametrize("data,match", [
    (np.full((2, 3, 64, 64), np.nan, np.float32), "NaN or Inf"),
    (np.zeros((2, 4, 64, 64), np.float32), r"shape \(N, 3, H, W\) or \(N, H, W, 3\)"),
    (np.zeros((2, 3, 64), np.float32), r"shape \(N, 3, H, W\)"),
    (np.zeros((2, 3, 64, 64), np.float64), "float32"),
    (np.zeros((0, 3, 64, 64), np.float32), "no samples"),
    (np.zeros((1, 3, 16, 16), np.float32), "smaller than 32x32"),
    ([], "no calibration images"),
    ([1, 2], "image paths"),
])
def test_bad_calibration_data_is_refused(shapes_wf, data, match):
    with pytest.raises(InputError, match=match):
        Q.quantize_model(shapes_wf, data)


def test_zero_samples_is_refused(shapes_wf):
    for samples in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="samples must be an int >= 1"):
            Q.quantize_model(shapes_wf, noise(2), samples=samples)


def test_missing_image_and_model_files(tmp_path, shapes_wf, picture_dir):
    with pytest.raises(ImageNotFoundError, match="nope.png"):
        Q.quantize_model(shapes_wf, [picture_dir / "0.png", tmp_path / "nope.png"])
    with pytest.raises(ModelFileNotFoundError, match="none.npz"):
        Q.quantize_model(tmp_path / "none.npz", noise(1))
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    with pytest.raises(InputError, match="junk.png"):
        Q.quantize_model(shapes_wf, [tmp_path / "junk.png"])


def test_an_already_quantized_model_is_refused(shapes_q, shapes_q_path):
    with pytest.raises(InputError, match="already quantized"):
        Q.quantize_model(shapes_q_path, noise(1))
    with pytest.raises(InputError, match="already quantized"):
        Q.quantize_model(shapes_q, noise(1))


def test_the_destination_is_checked_before_calibrating(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Q.quantize(SHAPES_MODEL, tmp_path / "no" / "q.npz", noise(1))


# ---- the command line -----------------------------------------------------------------------------

def test_cli_quantize_from_images(tmp_path, picture_dir, capsys):
    out = tmp_path / "q.npz"
    assert main(["quantize", str(SHAPES_MODEL), "-o", str(out), "--calibration", str(picture_dir),
                 "--samples", "4", "--method", "minmax", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "minmax" in text and "4 samples" in text and f"wrote {out}" in text
    q = Q.load_quantized(out)
    assert q.meta["quantization"]["calibration"] == {"method": "minmax", "samples": 4}


def test_cli_quantize_from_npy(tmp_path, capsys):
    np.save(tmp_path / "x.npy", noise(5, layout="nhwc"))
    out = tmp_path / "q.npz"
    assert main(["quantize", str(SHAPES_MODEL), "-o", str(out), "--calibration-npy", str(tmp_path / "x.npy"),
                 "--quiet"]) == 0
    assert f"{Q.DEFAULT_METHOD}" in capsys.readouterr().out
    assert Q.load_quantized(out).meta["quantization"]["calibration"]["samples"] == 5


def test_cli_quantize_errors(tmp_path, shapes_q_path, picture_dir, capsys):
    def fails(*argv, match):
        assert main(["quantize", *argv, "-o", str(tmp_path / "o.npz"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "mbv2-engine quantize: error:" in err and match in err, err

    x = noise(2)
    x[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    fails(str(tmp_path / "none.npz"), "--calibration", str(picture_dir), match="none.npz")
    fails(str(SHAPES_MODEL), "--calibration-npy", str(tmp_path / "nan.npy"), match="1 NaN or Inf")
    fails(str(SHAPES_MODEL), "--calibration-npy", str(tmp_path / "nothing.npy"), match="nothing.npy")
    fails(str(shapes_q_path), "--calibration", str(picture_dir), match="already quantized")
    fails(str(SHAPES_MODEL), "--calibration", str(tmp_path / "missing.png"), match="missing.png")
    fails(str(SHAPES_MODEL), "--calibration", str(picture_dir), "--method", "median", match="calibration method")
    assert not (tmp_path / "o.npz").exists()
    with pytest.raises(SystemExit):
        main(["quantize", str(SHAPES_MODEL), "-o", str(tmp_path / "o.npz"), "--calibration", str(picture_dir),
              "--samples", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
