"""The Keras importer (mbv2_engine/importers/keras.py) against Keras itself.

Models come from keras.applications.MobileNetV2(weights=None) on the torch
backend, with random kernels, BN statistics calibrated on noise and then
perturbed, and random BN affine parameters, so folding moves every channel.
Each is saved as `.keras` and/or legacy `.h5`, imported, loaded with
`Engine.load`, and compared with Keras's own `predict` on the same [-1, 1]
images (NCHW for the engine, NHWC for Keras): the same top-1 and probabilities
within "import_vs_keras_probs". The refusals are checked on real files too,
some of them edited after saving (the importer reads only the saved config).
"""
import copy
import io
import json
import os
import zipfile

# The backend is read once, when keras is first imported: set it before that (not setdefault).
os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

h5py = pytest.importorskip("h5py")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # keras was imported earlier in this process with another backend
    pytest.skip(f"keras runs on {keras.backend.backend()!r} here, the tests need the torch backend",
                allow_module_level=True)

from mbv2_engine import Engine  # noqa: E402
from mbv2_engine.importers import KERAS_PREPROCESS, ModelImportError  # noqa: E402
from mbv2_engine.importers.keras import export_from_keras, import_keras  # noqa: E402
from mbv2_engine.errors import ModelFileNotFoundError  # noqa: E402
from tolerances import assert_close  # noqa: E402

# Keras's torch backend turns variables into numpy with np.array(x), which numpy 2 answers with a
# DeprecationWarning (the variable's __array__ takes no `copy`); Keras's code, not ours, so ignored there only.
# (model.save("x.h5") also logs, through absl and not `warnings`, that HDF5 is legacy.)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning:keras")
EVEN = [0, 1, 0, 1]  # correct_pad at an even (or unknown) size: ((0, 1), (0, 1))
ODD = [1, 1, 1, 1]  # at an odd size: ((1, 1), (1, 1))


# ---- building models ---------------------------------------------------------

def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _randomize(model, size, seed):
    """BN statistics from a training-mode pass on noise, then perturbed; random BN affine and Dense weights."""
    rng = np.random.default_rng(seed)
    bns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in bns:
        bn.momentum = 0.0  # moving statistics := this batch's
    h, w = size
    model(rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32), training=True)
    for bn in bns:
        bn.momentum = 0.999
        mean, var = _value(bn.moving_mean), _value(bn.moving_variance)
        n = mean.shape[0]
        for v, new in ((bn.gamma, rng.uniform(0.5, 1.5, n)), (bn.beta, rng.normal(0, 0.2, n)),
                       (bn.moving_mean, mean + rng.normal(0, 0.1, n) * np.sqrt(var + 1e-3)),
                       (bn.moving_variance, var * rng.uniform(0.7, 1.4, n))):
            v.assign(new.astype(np.float32))
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Dense):
            fan_in, units = layer.kernel.shape
            layer.kernel.assign(rng.normal(0, fan_in ** -0.5, (fan_in, units)).astype(np.float32))
            layer.bias.assign(rng.normal(0, 0.1, units).astype(np.float32))
    return model


def _value(variable) -> np.ndarray:
    # Not Variable.numpy() / get_weights(): under numpy 2 they warn (DeprecationWarning, the copy keyword).
    return variable.value.detach().cpu().numpy()


def _base(alpha, size, include_top=False, **kw):
    shape = (None, None, 3) if size is None else (*size, 3)
    return keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, weights=None,
                                          include_top=include_top, **kw)


def _head(x, hidden=(), out=10, activation="softmax", dropout=None):
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    for units, act in hidden:
        x = keras.layers.Dense(units, activation=act)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.layers.Dense(out, activation=activation)(x)


def _nested(base, size, **head):
    inp = keras.Input((*size, 3) if size else (None, None, 3))
    return keras.Model(inp, _head(base(inp), **head))


def _inlined(base, **head):
    return keras.Model(base.input, _head(base.output, **head))


def _old_graph(base):
    """keras.applications' older graph: ZeroPadding2D 'Conv1_pad' (correct_pad) before a VALID 'Conv1'."""
    cfg = copy.deepcopy(base.get_config())
    layers = cfg["layers"]
    i = next(j for j, layer in enumerate(layers) if layer["config"]["name"] == "Conv1")
    conv = layers[i]
    shape = layers[0]["config"]["batch_shape"]
    adjust = [1 if s is None else 1 - s % 2 for s in shape[1:3]]
    pad = {"module": "keras.layers", "class_name": "ZeroPadding2D", "registered_name": None, "name": "Conv1_pad",
           "config": {"name": "Conv1_pad", "padding": [[1 - adjust[0], 1], [1 - adjust[1], 1]],
                      "data_format": "channels_last"},
           "inbound_nodes": copy.deepcopy(conv["inbound_nodes"])}
    conv["config"]["padding"] = "valid"
    conv["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "Conv1_pad"
    layers.insert(i, pad)
    return keras.Model.from_config(cfg)


# ---- running both ------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _keras_probs(model, x_nhwc, activation):
    out = np.asarray(model.predict(x_nhwc, verbose=0), np.float64)
    return _softmax(out) if activation == "none" else out


def _engine_probs(engine, x_nchw):
    """Probabilities from `classify` (which applies the file's activation), as an (N, K) array."""
    k = engine.num_classes
    probs = np.zeros((x_nchw.shape[0], k))
    for row, preds in zip(probs, engine.classify(x_nchw, top_k=k)):
        for p in preds:
            row[p.index] = p.probability
    return probs


def _compare(model, paths, tmp_path, sizes, seed=0, n=3):
    """Import each file of `model`, load it, and check classify against Keras's predict at each size."""
    rng = np.random.default_rng(seed)
    images = [rng.uniform(-1, 1, (n, h, w, 3)).astype(np.float32) for h, w in sizes]
    expected = [None] * len(sizes)  # Keras's answers, once per size for every file of the model
    results = []
    for path in paths:
        imported = import_keras(path)
        engine = Engine.load(export_from_keras(path, tmp_path / (os.path.basename(path) + ".npz")))
        for i, x in enumerate(images):
            if expected[i] is None:
                expected[i] = _keras_probs(model, x, imported.activation)
                # The comparison means something only if the model tells classes apart.
                spread = np.ptp(expected[i], axis=1) / expected[i].mean(axis=1)
                assert spread.min() > 0.05, f"degenerate model: every class nearly equally likely ({spread})"
            got = _engine_probs(engine, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            assert (got.argmax(1) == expected[i].argmax(1)).all(), (path, x.shape, got.argmax(1),
                                                                     expected[i].argmax(1))
            assert_close(got, expected[i], "import_vs_keras_probs")
        results.append((path, imported, engine))
    return results


def _save(model, tmp_path, name, kinds=("keras", "h5")):
    paths = []
    for kind in kinds:
        path = tmp_path / f"{name}.{kind}"
        model.save(path)
        paths.append(str(path))
    return paths


# ---- matching Keras ----------------------------------------------------------

def test_include_top_softmax_035_96(tmp_path):
    model = _randomize(_base(0.35, (96, 96), include_top=True, classes=10), (96, 96), 1)
    for path, m, engine in _compare(model, _save(model, tmp_path, "top"), tmp_path, [(96, 96)]):
        assert (m.width_mult, m.num_classes, m.input_size) == (0.35, 10, (96, 96))
        assert m.padding == ["same", EVEN, EVEN, EVEN, EVEN]
        assert (m.hidden, m.activation, m.preprocess) == ([], "softmax", KERAS_PREPROCESS)
        assert m.source["format"] == path.rsplit(".", 1)[1]
        assert engine.meta["padding"] == m.padding and engine.meta["activation"] == "softmax"
    names = [f"class-{i}" for i in range(10)]
    labelled = Engine.load(export_from_keras(path, tmp_path / "labelled.npz", labels=names))
    assert labelled.labels == names and labelled.meta["source"]["file"] == "top.h5"


def test_include_top_100_224(tmp_path):
    model = _randomize(_base(1.0, (224, 224), include_top=True, classes=1000), (224, 224), 2)
    ((_, m, _),) = _compare(model, _save(model, tmp_path, "top224", ("keras",)), tmp_path, [(224, 224)], n=2)
    assert (m.width_mult, m.num_classes, m.input_size) == (1.0, 1000, (224, 224))


def test_nested_hidden_relu_dropout_140_128(tmp_path):
    base = _base(1.4, (128, 128))
    model = _randomize(_nested(base, (128, 128), hidden=[(32, "relu")], out=7, dropout=0.3), (128, 128), 3)
    for _, m, engine in _compare(model, _save(model, tmp_path, "nested"), tmp_path, [(128, 128)]):
        assert (m.width_mult, m.num_classes, m.input_size) == (1.4, 7, (128, 128))
        assert m.hidden == [{"units": 32, "activation": "relu"}] and m.activation == "softmax"
        assert m.arrays["hidden.0.weight"].shape == (32, 1792) and m.arrays["classifier.weight"].shape == (7, 32)
        assert engine.meta["hidden"] == m.hidden


def test_inlined_two_hidden_sigmoid_odd_113(tmp_path):
    # Built at 113, correct_pad pads the odd maps (57, 29, 15) 1 on each side and the even one (8) 0/1.
    base = _base(0.35, (113, 113))
    model = _randomize(_inlined(base, hidden=[(24, "relu6"), (16, None)], out=4, activation="sigmoid"),
                       (113, 113), 4)
    for _, m, _ in _compare(model, _save(model, tmp_path, "odd"), tmp_path, [(113, 113)]):
        assert m.padding == ["same", ODD, ODD, ODD, EVEN]
        assert m.hidden == [{"units": 24, "activation": "relu6"}, {"units": 16, "activation": "none"}]
        assert m.activation == "sigmoid" and m.input_size == (113, 113)


def test_unknown_size_fixed_pads_run_at_odd_sizes(tmp_path):
    # input_shape (None, None, 3): every block_N_pad is ((0, 1), (0, 1)) whatever the size, unlike SAME at
    # odd sizes (1 each side), so running at 97 and 113 shows the fixed pads are honoured.
    base = _base(0.75, None)
    model = _randomize(_nested(base, None, out=5, activation=None), (96, 96), 5)
    ((_, m, _),) = _compare(model, _save(model, tmp_path, "anysize", ("keras",)), tmp_path,
                            [(97, 97), (113, 81)])
    assert m.input_size == (224, 224) and m.padding == ["same", EVEN, EVEN, EVEN, EVEN]
    assert m.activation == "none" and m.width_mult == 0.75


def test_old_graph_conv1_pad(tmp_path):
    # The older keras.applications graph; at unknown size Conv1_pad is ((0, 1), (0, 1)), where SAME at an
    # odd size pads 1 on each side: 97 tells the two apart in the stem too.
    model = _randomize(_old_graph(_inlined(_base(0.35, None), out=6)), (64, 64), 6)
    assert model.get_layer("Conv1").padding == "valid"
    for _, m, _ in _compare(model, _save(model, tmp_path, "old"), tmp_path, [(97, 97), (96, 96)]):
        assert m.padding == [EVEN] * 5


def test_old_graph_odd_size_and_sequential(tmp_path):
    base = _old_graph(_base(0.35, (97, 97)))
    model = keras.Sequential([keras.Input((97, 97, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax")])
    _randomize(model, (97, 97), 7)
    for _, m, _ in _compare(model, _save(model, tmp_path, "seq"), tmp_path, [(97, 97)]):
        # 97 -> 49 -> 25 -> 13 -> 7: all odd, so correct_pad pads 1 on each side everywhere.
        assert m.padding == [ODD] * 5 and m.input_size == (97, 97)


# ---- what the importer refuses -----------------------------------------------

@pytest.fixture(scope="module")
def small_base():
    return _base(0.35, (64, 64))


def _refused(path, match):
    with pytest.raises(ModelImportError, match=match):
        import_keras(path)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_refuses_batchnorm_in_head(small_base, tmp_path, kind):
    x = keras.layers.GlobalAveragePooling2D()(small_base.output)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    model = keras.Model(small_base.input, keras.layers.Dense(3)(x))
    (path,) = _save(model, tmp_path, "bnhead", (kind,))
    _refused(path, r"^layer 'head_bn' \(BatchNormalization\): in the head; the engine runs "
                   r"GlobalAveragePooling2D after the backbone's 'out_relu'")


def test_refuses_tanh_dense(small_base, tmp_path):
    x = keras.layers.GlobalAveragePooling2D()(small_base.output)
    x = keras.layers.Dense(8, activation="tanh", name="fc_tanh")(x)
    model = keras.Model(small_base.input, keras.layers.Dense(3)(x))
    (path,) = _save(model, tmp_path, "tanh", ("keras",))
    _refused(path, r"^layer 'fc_tanh' \(Dense\): activation 'tanh'; the engine runs")


def test_refuses_relu_classifier(small_base, tmp_path):
    x = keras.layers.GlobalAveragePooling2D()(small_base.output)
    model = keras.Model(small_base.input, keras.layers.Dense(3, activation="relu", name="out")(x))
    (path,) = _save(model, tmp_path, "reluout", ("keras",))
    _refused(path, r"^layer 'out' \(Dense\): the classifier's activation 'relu'")


def test_refuses_flatten_without_pooling(small_base, tmp_path):
    x = keras.layers.Flatten(name="flat")(small_base.output)
    model = keras.Model(small_base.input, keras.layers.Dense(3)(x))
    (path,) = _save(model, tmp_path, "flat", ("h5",))
    _refused(path, r"^layer 'flat' \(Flatten\): right after the backbone; the engine runs GlobalAveragePooling2D")


def test_refuses_bare_backbone(small_base, tmp_path):
    (path,) = _save(small_base, tmp_path, "bare", ("keras",))
    _refused(path, r"^the model ends at the backbone's 'out_relu' \(ReLU\) without a Dense classifier")
    pooled = _base(0.35, (64, 64), pooling="avg")
    (path,) = _save(pooled, tmp_path, "pooled", ("h5",))
    _refused(path, r"^the model ends at layer 'global_average_pooling2d\w*' \(GlobalAveragePooling2D\) without "
                   r"a Dense classifier")


def test_refuses_preprocessing_before_backbone(small_base, tmp_path):
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inp)
    model = keras.Model(inp, _head(small_base(x), out=3))
    (path,) = _save(model, tmp_path, "rescale", ("keras",))
    _refused(path, r"^layer 'scale' \(Rescaling\): comes before the MobileNetV2 backbone")


def _edit_config(path, edit):
    """Rewrite the saved config of a .keras or .h5 file with `edit(config)`; the weights stay as saved."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        cfg = json.loads(members["config.json"])
        edit(cfg)
        members["config.json"] = json.dumps(cfg).encode()
        with zipfile.ZipFile(path, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
    else:
        with h5py.File(path, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            edit(cfg)
            f.attrs["model_config"] = json.dumps(cfg)


def _layer_cfg(cfg, name):
    for layer in cfg["config"]["layers"]:
        if layer["config"].get("name") == name:
            return layer["config"]
        if "layers" in layer.get("config", {}):
            try:
                return _layer_cfg(layer, name)
            except KeyError:
                pass
    raise KeyError(name)


@pytest.fixture(scope="module")
def top_files(small_base, tmp_path_factory):
    model = _inlined(small_base, out=3)
    return _save(model, tmp_path_factory.mktemp("top"), "small")


@pytest.mark.parametrize("kind", [0, 1])
def test_refuses_stride1_conv_without_pad_1(top_files, tmp_path, kind):
    path = str(tmp_path / os.path.basename(top_files[kind]))
    with open(top_files[kind], "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    _edit_config(path, lambda cfg: _layer_cfg(cfg, "block_2_depthwise").update(padding="valid"))
    _refused(path, r"^layer 'block_2_depthwise' \(DepthwiseConv2D\): a stride-1 3x3 conv must pad 1 on each "
                   r"side \(SAME\), got valid padding$")


def test_refuses_pads_above_1_and_same_after_pad(top_files, tmp_path):
    path = str(tmp_path / "wide.keras")
    with open(top_files[0], "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    _edit_config(path, lambda cfg: _layer_cfg(cfg, "block_3_pad").update(padding=[[2, 2], [1, 1]]))
    _refused(path, r"^layer 'block_3_pad' \(ZeroPadding2D\): pads \[top, bottom, left, right\] = \[2, 2, 1, 1\]; "
                   r"before a stride-2 3x3 conv the engine takes 0 or 1 on each side$")
    _edit_config(path, lambda cfg: _layer_cfg(cfg, "block_3_pad").update(padding=[[0, 1], [0, 1]]))
    _edit_config(path, lambda cfg: _layer_cfg(cfg, "block_3_depthwise").update(padding="same"))
    _refused(path, r"^layer 'block_3_depthwise' \(DepthwiseConv2D\): SAME padding after ZeroPadding2D 'block_3_pad'")


def test_refuses_files_that_are_not_models(small_base, tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        import_keras(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("not a model")
    _refused(str(tmp_path / "notes.txt"), r"notes.txt is neither a \.keras archive \(zip\) nor a legacy Keras HDF5")
    weights_only = str(tmp_path / "only.weights.h5")
    small_base.save_weights(weights_only)
    _refused(weights_only, r"has no model_config attribute \(a weights-only file, from save_weights\?\)")


def test_keras_v3_paths_follow_class_counters(top_files):
    # The mapping by class counters, checked against the file itself: 'Conv1' is the first Conv2D and
    # 'block_16_project' the last Conv2D but 'Conv_1'; a wrong mapping would read another layer's kernel.
    with zipfile.ZipFile(top_files[0]) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
        stem = np.asarray(h5["layers/conv2d/vars/0"])
        n_conv = sum(1 for k in h5["layers"] if k.startswith("conv2d"))
        head = np.asarray(h5[f"layers/conv2d_{n_conv - 1}/vars/0"])
    m = import_keras(top_files[0])
    assert stem.shape == (3, 3, 3, 16) and head.shape == (1, 1, 112, 1280)
    assert m.arrays["stem.weight"].shape == (16, 3, 3, 3) and m.arrays["head.weight"].shape == (1280, 112)
    # Same weights from both files of one model: .keras counters and .h5 layer names agree.
    h5m = import_keras(top_files[1])
    assert sorted(m.arrays) == sorted(h5m.arrays)
    for name in m.arrays:
        np.testing.assert_array_equal(m.arrays[name], h5m.arrays[name], err_msg=name)


def test_command_line_export_and_refusal(small_base, tmp_path, capsys):
    """`mbv2-engine export --from-keras`, with labels; a refusal is one line on stderr and exit status 2."""
    from mbv2_engine.cli import main

    model = _randomize(_inlined(small_base, out=3), (64, 64), 4)
    (path,) = _save(model, tmp_path, "cli", ("keras",))
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    out = tmp_path / "cli.npz"
    assert main(["export", "--from-keras", path, "-o", str(out), "--labels", str(tmp_path / "names.txt")]) == 0
    engine = Engine.load(out)
    assert engine.labels == ["cat", "dog", "bird"] and engine.meta["source"]["kind"] == "keras"
    capsys.readouterr()
    assert main(["export", "--from-keras", path, "-o", str(out), "--preprocess", "torchvision"]) == 2
    assert "--preprocess applies to --from-onnx and --from-tflite" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    assert main(["export", "--from-keras", str(notes), "-o", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "mbv2-engine export: error:" in err and "neither a .keras archive" in err
    assert not (tmp_path / "x.npz").exists()
