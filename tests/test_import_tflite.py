"""The TFLite importer (mbv2_engine/importers/tflite.py) against LiteRT running the same file.

bench/tflite_writer.py writes the .tflite files from random calibrated models,
in each shape a converted MobileNetV2 takes: torch-style PAD 1 + VALID, SAME at
stride 2 (TF-slim, Keras converted), Keras 3's ZeroPadding2D (PAD [0,1,0,1] +
VALID after a SAME stem), AVERAGE_POOL_2D + RESHAPE, hidden FULLY_CONNECTED
layers, TF-slim's 1x1-conv logits, SOFTMAX and LOGISTIC outputs. Each import is checked twice against LiteRT
(`ai_edge_litert.interpreter.Interpreter`): the imported arrays through a
float64 numpy forward pass written here (it knows fixed padding rules and
hidden layers), and the engine loading the written weight file. Quantized and
float16-weight files, unmapped operators and unreadable padding are refused
with messages the tests pin.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="the TFLite tests compare with LiteRT (ai-edge-litert)")
import flatbuffers  # noqa: E402  (after the skip: both come with ai-edge-litert)
from ai_edge_litert import schema_py_generated as tfl  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from mbv2_engine import Engine  # noqa: E402
from mbv2_engine import format as wformat  # noqa: E402
from mbv2_engine.arch import build_arch  # noqa: E402
from mbv2_engine.errors import InputError, ModelFileNotFoundError  # noqa: E402
from mbv2_engine.export import random_model, to_arrays  # noqa: E402
from mbv2_engine.importers import KERAS_PREPROCESS, ModelImportError  # noqa: E402
from mbv2_engine.importers.tflite import export_from_tflite, import_tflite  # noqa: E402
from tolerances import assert_close  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # as bench/providers.py imports it
from tflite_writer import tflite_model  # noqa: E402

KERAS3 = ["same", (0, 1, 0, 1), (0, 1, 0, 1), (0, 1, 0, 1), (0, 1, 0, 1)]  # keras.applications.MobileNetV2
BATCH = 2


@lru_cache(maxsize=None)
def _base(width: float, classes: int) -> dict:
    # BN calibrated on two small noise batches: the statistics need not come from the test's input size.
    return to_arrays(random_model(1, width, classes, (64, 64), calib_batches=2, progress=False))


@lru_cache(maxsize=None)
def _model(width: float, size: int, classes: int, hidden: tuple = ()) -> dict:
    """Folded arrays of a random calibrated model, plus `hidden.i.*` and a classifier after them."""
    arrays = dict(_base(width, classes))
    rng = np.random.default_rng(7)
    inputs = build_arch(width, classes).last
    for i, units in enumerate(hidden):
        arrays[f"hidden.{i}.weight"] = (rng.standard_normal((units, inputs)) * inputs ** -0.5).astype(np.float32)
        arrays[f"hidden.{i}.bias"] = (rng.standard_normal(units) * 0.1).astype(np.float32)
        inputs = units
    if hidden:
        arrays["classifier.weight"] = (rng.standard_normal((classes, inputs)) * inputs ** -0.5).astype(np.float32)
    return arrays


def _write(tmp_path, width, size, classes, hidden_units=(), name="m.tflite", **options) -> Path:
    arrays = _model(width, size, classes, tuple(hidden_units))
    h, w = (size, size) if isinstance(size, int) else size
    data = tflite_model(arrays, build_arch(width, classes), BATCH, h, w, **options)
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _litert(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


# ---- a float64 oracle that knows format version 2 --------------------------

def _relu6(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)


def _pads(n: int, stride: int, rule) -> tuple[int, int]:
    """(before, after) of one side: a fixed rule as it is; "same" as TF computes it."""
    if rule == "same":
        total = max((-(-n // stride) - 1) * stride + 3 - n, 0)
        return total // 2, total - total // 2
    return rule


def _conv3x3(x, taps, bias, stride, rule, depthwise):
    """x NHWC float64; taps[ky][kx] is (Cin, Cout) or (C,) for depthwise; rule "same" or [t, b, l, r]."""
    _, h, w, _ = x.shape
    (t, b) = _pads(h, stride, rule if rule == "same" else rule[:2])
    (left, right) = _pads(w, stride, rule if rule == "same" else rule[2:])
    xp = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)))
    ho, wo = (h + t + b - 3) // stride + 1, (w + left + right - 3) // stride + 1
    out = 0.0
    for ky in range(3):
        for kx in range(3):
            win = xp[:, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            out = out + (win * taps[ky][kx] if depthwise else win @ taps[ky][kx])
    return out + bias


def _oracle(im, x_nchw: np.ndarray) -> np.ndarray:
    """The imported model's values before its activation, in float64, from its arrays alone."""
    a = {k: np.asarray(v, np.float64) for k, v in im.arrays.items()}
    rules = iter([im.padding] * 5 if im.padding == "same" else
                 [[1, 1, 1, 1]] * 5 if im.padding == "torch" else im.padding)
    x = np.asarray(x_nchw, np.float64).transpose(0, 2, 3, 1)
    w = a["stem.weight"]
    x = _relu6(_conv3x3(x, [[w[:, :, ky, kx].T for kx in range(3)] for ky in range(3)], a["stem.bias"], 2,
                        next(rules), False))
    for i, spec in enumerate(im.arch.blocks):
        p, h = f"blocks.{i}.", x
        if spec.has_expand:
            h = _relu6(h @ a[p + "expand.weight"].T + a[p + "expand.bias"])
        dw = a[p + "depthwise.weight"]
        rule = next(rules) if spec.stride == 2 else [1, 1, 1, 1]
        h = _relu6(_conv3x3(h, [[dw[:, ky, kx] for kx in range(3)] for ky in range(3)], a[p + "depthwise.bias"],
                            spec.stride, rule, True))
        h = h @ a[p + "project.weight"].T + a[p + "project.bias"]
        x = h + x if spec.residual else h
    x = _relu6(x @ a["head.weight"].T + a["head.bias"]).mean(axis=(1, 2))
    for i, layer in enumerate(im.hidden):
        x = x @ a[f"hidden.{i}.weight"].T + a[f"hidden.{i}.bias"]
        x = {"relu": lambda v: np.maximum(v, 0.0), "relu6": _relu6, "none": lambda v: v}[layer["activation"]](x)
    return x @ a["classifier.weight"].T + a["classifier.bias"]


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


APPLY = {"none": lambda z: z, "softmax": _softmax, "sigmoid": _sigmoid}


# ---- the variants, against LiteRT -------------------------------------------

CASES = {
    # name: (width, size, classes, hidden units, writer options, padding, hidden, activation)
    "torch-pad1": (1.0, 96, 10, (), {}, "torch", [], "none"),
    "keras2-same": (0.35, 97, 7, (), {"stride2_padding": "same"}, "same", [], "none"),
    "keras3-softmax": (1.4, 96, 12, (), {"stride2_padding": KERAS3, "output": "softmax"},
                       ["same", [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]], [], "softmax"),
    "pad0101-avgpool": (1.0, 64, 10, (), {"stride2_padding": (0, 1, 0, 1), "pool": "avgpool"},
                        [[0, 1, 0, 1]] * 5, [], "none"),
    "valid-s2-stride1-pad": (0.35, 96, 7, (), {"stride2_padding": (0, 0, 0, 0), "stride1_padding": (1, 1, 1, 1),
                                               "pool": "mean_keepdims"}, [[0, 0, 0, 0]] * 5, [], "none"),
    "hidden-relu-softmax": (0.35, 64, 7, (32,), {"hidden": ("relu",), "output": "softmax"}, "torch",
                            [{"units": 32, "activation": "relu"}], "softmax"),
    "hidden-relu6-none-logistic": (1.0, 80, 10, (48, 16), {"hidden": ("relu6", "none"), "output": "logistic",
                                                          "stride2_padding": "same", "pool": "avgpool"},
                                   "same", [{"units": 48, "activation": "relu6"},
                                            {"units": 16, "activation": "none"}], "sigmoid"),
    "mixed-rules-nonsquare": (0.35, (72, 90), 7, (), {"stride2_padding": [(1, 0, 0, 1), "same", (0, 1, 1, 0),
                                                                         (1, 1, 0, 0), (0, 0, 1, 1)]},
                              [[1, 0, 0, 1], "same", [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], [], "none"),
    "slim-conv-logits": (0.35, 96, 7, (), {"stride2_padding": "same", "pool": "avgpool", "classifier": "conv1x1",
                                           "output": "softmax"}, "same", [], "softmax"),
    "keras3-224": (1.0, 224, 1000, (), {"stride2_padding": KERAS3, "output": "softmax",
                                        "pool": "mean_keepdims"},
                   ["same", [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]], [], "softmax"),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every case's .tflite, its import, a batch and LiteRT's output on it, made once."""
    cache = {}

    def get(name):
        if name not in cache:
            width, size, classes, units, options, *_ = CASES[name]
            tmp = tmp_path_factory.mktemp(name)
            path = _write(tmp, width, size, classes, units, **options)
            h, w = (size, size) if isinstance(size, int) else size
            x = np.random.default_rng(3).standard_normal((BATCH, 3, h, w)).astype(np.float32)
            cache[name] = (path, import_tflite(path), x, _litert(path, x))
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(CASES))
def test_import_reads_the_variant(written, name):
    width, size, classes, units, _, padding, hidden, activation = CASES[name]
    path, im, x, _ = written(name)
    assert (im.width_mult, im.num_classes, im.input_size) == (width, classes, (size, size) if isinstance(size, int)
                                                              else size)
    assert (im.padding, im.hidden, im.activation) == (padding, hidden, activation)
    assert im.preprocess == KERAS_PREPROCESS
    assert im.source == {"kind": "tflite", "file": "m.tflite"}
    # The NHWC layouts turned back into the file's: exactly the weights the writer was given.
    arrays = _model(width, size, classes, tuple(units))
    assert sorted(im.arrays) == sorted(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(im.arrays[key], value, err_msg=key)


@pytest.mark.parametrize("name", list(CASES))
def test_imported_arrays_match_litert(written, name):
    """The imported arrays and metadata, run in float64, give LiteRT's output on the same file."""
    _, im, x, expected = written(name)
    got = APPLY[im.activation](_oracle(im, x))
    assert_close(got, expected, "import_vs_framework")


@pytest.mark.parametrize("name", list(CASES))
def test_engine_matches_litert(written, tmp_path, name):
    """The written weight file in the engine: logits (or the activation applied to them) and top-1 as LiteRT's."""
    path, im, x, expected = written(name)
    out = export_from_tflite(path, tmp_path / "m.npz")
    engine = Engine.load(out, threads=1)
    logits = engine.run(x)
    assert_close(APPLY[im.activation](logits), expected, "import_vs_framework")
    assert np.array_equal(np.argmax(logits, axis=1), np.argmax(expected, axis=1))
    if im.activation in ("softmax", "sigmoid"):
        # classify applies the file's activation, so its probabilities are the source's outputs.
        top = engine.classify(x, top_k=3)
        for row, preds in zip(expected, top):
            assert [p.index for p in preds][0] == int(np.argmax(row))
            assert_close([p.probability for p in preds], row[[p.index for p in preds]], "import_vs_framework")


# ---- metadata and arguments -------------------------------------------------

def test_written_metadata_and_preprocess(written, tmp_path):
    path, *_ = written("keras3-softmax")
    labels = [f"c{i}" for i in range(12)]
    meta = wformat.load(export_from_tflite(path, tmp_path / "k.npz", labels=labels)).meta
    assert meta["preprocess"] == KERAS_PREPROCESS and meta["labels"] == labels
    assert meta["padding"] == ["same", [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]]
    assert meta["activation"] == "softmax" and meta["hidden"] == []
    assert meta["source"] == {"kind": "tflite", "file": "m.tflite"}
    meta = wformat.load(export_from_tflite(path, tmp_path / "t.npz", preprocess="torchvision")).meta
    assert meta["preprocess"] == wformat.TORCHVISION_PREPROCESS
    assert import_tflite(path, preprocess="keras").preprocess == KERAS_PREPROCESS
    with pytest.raises(InputError, match="preprocess must be None, 'keras' or 'torchvision', got 'caffe'"):
        import_tflite(path, preprocess="caffe")


def test_hidden_layers_are_written(written, tmp_path):
    path, *_ = written("hidden-relu6-none-logistic")
    arrays, meta, _ = wformat.load(export_from_tflite(path, tmp_path / "h.npz"))
    assert meta["hidden"] == [{"units": 48, "activation": "relu6"}, {"units": 16, "activation": "none"}]
    assert arrays["hidden.0.weight"].shape == (48, 1280) and arrays["hidden.1.bias"].shape == (16,)
    assert arrays["classifier.weight"].shape == (10, 16) and meta["activation"] == "sigmoid"


# ---- the graph is walked by tensor indices ----------------------------------

def _mutate(path: Path, change, out: Path | None = None) -> Path:
    """Rewrite a .tflite through the schema's object API, after `change(model)`."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    change(model)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = out or path.with_name("changed.tflite")
    out.write_bytes(bytes(builder.Output()))
    return out


def _ops(model, code):
    """(index, operator) of every operator with this builtin code."""
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [(i, op) for i, op in enumerate(model.subgraphs[0].operators) if codes[op.opcodeIndex] == code]


def test_names_and_operator_order_do_not_matter(written, tmp_path):
    path, im, *_ = written("keras3-softmax")

    def scramble(model):
        sub = model.subgraphs[0]
        for t in sub.tensors:
            t.name = "x"  # every tensor named alike
        sub.operators.reverse()
    again = import_tflite(_mutate(path, scramble, tmp_path / "scrambled.tflite"))
    assert (again.padding, again.hidden, again.activation) == (im.padding, im.hidden, im.activation)
    for key, value in im.arrays.items():
        np.testing.assert_array_equal(again.arrays[key], value, err_msg=key)


def test_tflite_package_and_litert_schema_read_alike(written, monkeypatch):
    """The `tflite` package is the schema reader; without it, LiteRT's generated module reads the same."""
    pytest.importorskip("tflite")
    path, im, *_ = written("hidden-relu-softmax")
    monkeypatch.setitem(sys.modules, "tflite", None)  # `import tflite` now raises ImportError
    again = import_tflite(path)
    assert (again.padding, again.hidden, again.activation) == (im.padding, im.hidden, im.activation)
    for key, value in im.arrays.items():
        np.testing.assert_array_equal(again.arrays[key], value, err_msg=key)


# ---- what is refused --------------------------------------------------------

def test_int8_weights_are_refused(tmp_path):
    path = _write(tmp_path, 0.35, 64, 7, weights="int8")
    with pytest.raises(ModelImportError, match=r"m.tflite is a quantized TFLite model \(tensor 3 is INT8 with "
                                               r"quantization parameters\): int8 \(and other quantized\) .tflite "
                                               r"files are not read yet"):
        import_tflite(path)


def test_float16_weights_are_refused(tmp_path):
    path = _write(tmp_path, 0.35, 64, 7, weights="float16")
    with pytest.raises(ModelImportError, match=r"m.tflite stores float16 weights \(tensor 3 is FLOAT16, "
                                               r"dequantized to float32 by operator 1\): fp16-weight .tflite "
                                               r"files are not read yet"):
        import_tflite(path)


def test_int8_activations_are_refused(written, tmp_path):
    path, *_ = written("torch-pad1")

    def int8_input(model):
        sub = model.subgraphs[0]
        sub.tensors[sub.inputs[0]].type = tfl.TensorType.INT8
    with pytest.raises(ModelImportError, match=r"quantized TFLite model \(tensor 0 is INT8\): int8"):
        import_tflite(_mutate(path, int8_input))


def _recode(path: Path, old: int, new: int, which: int = -1) -> Path:
    """The same file with one operator's builtin code changed (the last one with code `old` by default)."""
    def change(model):
        index, op = _ops(model, old)[which]
        model.operatorCodes.append(tfl.OperatorCodeT(builtinCode=new, deprecatedBuiltinCode=min(new, 127),
                                                     version=1))
        op.opcodeIndex = len(model.operatorCodes) - 1
    return _mutate(path, change)


def test_unmapped_operator_is_named(written):
    path, *_ = written("torch-pad1")
    mean = _ops(tfl.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0), tfl.BuiltinOperator.MEAN)[0][0]
    with pytest.raises(ModelImportError, match=rf"changed.tflite: operator {mean} \(SUM\) is not an operator the "
                                               rf"TFLite importer maps onto MobileNetV2 \(it reads CONV_2D, "
                                               rf"DEPTHWISE_CONV_2D, ADD, PAD, MEAN"):
        import_tflite(_recode(path, tfl.BuiltinOperator.MEAN, tfl.BuiltinOperator.SUM))
    # A code above 127 (only in builtin_code) is named too.
    with pytest.raises(ModelImportError, match=r"operator \d+ \(GELU\) is not an operator"):
        import_tflite(_recode(path, tfl.BuiltinOperator.MEAN, tfl.BuiltinOperator.GELU))


def _set_options(path: Path, code: int, which: int, **fields) -> Path:
    def change(model):
        _, op = _ops(model, code)[which]
        for k, v in fields.items():
            setattr(op.builtinOptions, k, v)
    return _mutate(path, change)


def test_stride1_valid_is_refused(written):
    path, *_ = written("torch-pad1")
    # Depthwise conv 1 is block 1's (stride 2, after its PAD); 2 is block 2's, stride 1 and SAME.
    with pytest.raises(ModelImportError, match=r"\(block 2's depthwise conv\) is a stride-1 3x3 conv padded VALID; "
                                               r"MobileNetV2 pads stride-1 3x3 convs by 1 on every side"):
        import_tflite(_set_options(path, tfl.BuiltinOperator.DEPTHWISE_CONV_2D, 2, padding=tfl.Padding.VALID))


def test_pad_then_same_is_refused(written):
    path, *_ = written("torch-pad1")
    with pytest.raises(ModelImportError, match=r"\(the stem\) is SAME after an explicit PAD \[1, 1, 1, 1\]"):
        import_tflite(_set_options(path, tfl.BuiltinOperator.CONV_2D, 0, padding=tfl.Padding.SAME))


def test_stride2_pad_of_two_is_refused(tmp_path):
    path = _write(tmp_path, 0.35, 64, 7, stride2_padding=(0, 2, 0, 2))
    with pytest.raises(ModelImportError, match=r"\(the stem\) is padded \[0, 2, 0, 2\] \(top, bottom, left, "
                                               r"right\); a stride-2 3x3 conv's padding is read only as SAME or 0 "
                                               r"or 1 on each side"):
        import_tflite(path)


def test_stride1_uneven_pad_is_refused(tmp_path):
    path = _write(tmp_path, 0.35, 64, 7, stride1_padding=(0, 1, 0, 1))
    with pytest.raises(ModelImportError, match=r"\(block 0's depthwise conv\) is a stride-1 3x3 conv padded "
                                               r"\[0, 1, 0, 1\] \(top, bottom, left, right\)"):
        import_tflite(path)


def test_relu_instead_of_relu6_is_refused(written):
    path, *_ = written("torch-pad1")
    with pytest.raises(ModelImportError, match=r"\(block 0's depthwise conv\) has fused activation RELU; "
                                               r"MobileNetV2 has RELU6 there"):
        import_tflite(_set_options(path, tfl.BuiltinOperator.DEPTHWISE_CONV_2D, 0,
                                   fusedActivationFunction=tfl.ActivationFunctionType.RELU))


def test_classifier_with_fused_activation_is_refused(written):
    path, *_ = written("torch-pad1")
    with pytest.raises(ModelImportError, match=r"the classifier \(operator \d+ \(FULLY_CONNECTED\)\) has fused "
                                               r"activation RELU"):
        import_tflite(_set_options(path, tfl.BuiltinOperator.FULLY_CONNECTED, -1,
                                   fusedActivationFunction=tfl.ActivationFunctionType.RELU))


def test_a_side_branch_is_refused(written):
    path, *_ = written("torch-pad1")

    def branch(model):
        sub = model.subgraphs[0]
        _, mean = _ops(model, tfl.BuiltinOperator.MEAN)[0]
        # A second MEAN of the head's output: a tensor that feeds two operators.
        sub.tensors.append(tfl.TensorT(shape=[BATCH, 1280], type=tfl.TensorType.FLOAT32, buffer=0, name="extra"))
        sub.operators.append(tfl.OperatorT(opcodeIndex=mean.opcodeIndex, inputs=list(mean.inputs),
                                           outputs=[len(sub.tensors) - 1], builtinOptionsType=mean.builtinOptionsType,
                                           builtinOptions=mean.builtinOptions))
    with pytest.raises(ModelImportError, match=r"feeds operator \d+ \(MEAN\), operator \d+ \(MEAN\); MobileNetV2 "
                                               r"is a chain whose only branches are the residual ADDs"):
        import_tflite(_mutate(path, branch))


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"PK\x03\x04 not a flatbuffer at all")
    with pytest.raises(ModelImportError, match=r"bad.tflite is not a TFLite model \(no 'TFL3' flatbuffer "
                                               r"identifier at byte 4\)"):
        import_tflite(bad)
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        import_tflite(tmp_path / "missing.tflite")


def test_refused_file_writes_nothing(tmp_path):
    path = _write(tmp_path, 0.35, 64, 7, weights="int8")
    with pytest.raises(ModelImportError):
        export_from_tflite(path, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_command_line_export_preprocess_and_refusal(tmp_path, capsys):
    """`mbv2-engine export --from-tflite`, with --preprocess; a refusal is one line on stderr and exit status 2."""
    from mbv2_engine.cli import main

    path = _write(tmp_path, 0.35, 64, 10)
    out = tmp_path / "cli.npz"
    assert main(["export", "--from-tflite", str(path), "-o", str(out), "--preprocess", "torchvision"]) == 0
    engine = Engine.load(out)
    assert engine.meta["preprocess"] == wformat.TORCHVISION_PREPROCESS and engine.meta["padding"] == "torch"
    assert main(["export", "--from-tflite", str(path), "-o", str(out)]) == 0
    assert Engine.load(out).meta["preprocess"] == KERAS_PREPROCESS
    quantized = _write(tmp_path, 0.35, 64, 10, name="q.tflite", weights="int8")
    capsys.readouterr()
    assert main(["export", "--from-tflite", str(quantized), "-o", str(tmp_path / "q.npz")]) == 2
    err = capsys.readouterr().err
    assert "mbv2-engine export: error:" in err and "int8 (and other quantized) .tflite files are not read yet" in err
