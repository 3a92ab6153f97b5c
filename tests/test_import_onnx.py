"""The ONNX importer (mbv2_engine/importers/onnx.py) against ONNX Runtime running the same file.

Every variant is a `torch.onnx` export of a random calibrated model (TorchScript
exporter at opsets 11 to 18, the dynamo exporter), rewritten with `onnx.helper`
where no exporter writes the variant (Clip attributes of opset 10, ReduceMean,
MatMul+Add, a transposed Gemm weight, Softmax or Sigmoid, Dropout and Identity,
hidden Dense layers), or a tf2onnx-style NHWC graph built here from the same
random weights (Transpose at the input, Pad nodes before VALID stride-2 convs).
The engine's logits must match ONNX Runtime's ("import_vs_framework"), with the
same top-1, and graphs that are not MobileNetV2 must be refused by name.
"""
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mbv2_engine import Engine  # noqa: E402
from mbv2_engine import format as wformat  # noqa: E402
from mbv2_engine.errors import InputError, ModelFileNotFoundError  # noqa: E402
from mbv2_engine.export import random_model  # noqa: E402
from mbv2_engine.importers import KERAS_PREPROCESS, ModelImportError  # noqa: E402
from mbv2_engine.importers.onnx import export_from_onnx, import_onnx  # noqa: E402
from mbv2_engine.torch_model import MobileNetV2  # noqa: E402
from tolerances import assert_close  # noqa: E402

SIZE = 64
KERAS_RULES = [[0, 1, 0, 1]] * 5  # tf2onnx of keras.applications.MobileNetV2: ZeroPadding2D((0, 1), (0, 1))


# ---- helpers ----------------------------------------------------------------

def _torch_export(model, path, size=SIZE, batch=1, opset=17, dynamo=False, dynamic=False, bn=False):
    x = torch.randn(batch, 3, *((size, size) if isinstance(size, int) else size))
    kw = dict(input_names=["input"], output_names=["logits"], dynamo=dynamo,
              training=torch.onnx.TrainingMode.PRESERVE if bn else torch.onnx.TrainingMode.EVAL)
    if bn and not dynamo:
        kw["do_constant_folding"] = False  # torch warns that folding constants may alter BN in PRESERVE mode
    if dynamo:
        if dynamic:
            kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch")}}
    else:
        kw["opset_version"] = opset
        if dynamic:
            kw["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        # Only around the export: torch 2.13 deprecates the TorchScript exporter and functions it calls
        # (DeprecationWarning), and torch.export its own pytree LeafSpec check (FutureWarning); none
        # of them concerns the file written, which ONNX Runtime then checks.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, (x,), str(path), **kw)
    return str(path)


def _ort(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.float64)


def _imported_logits(path, x, tmp_path, **kw):
    """The engine's logits for the weight file the importer writes, and the file's metadata."""
    out = export_from_onnx(path, tmp_path / "imported.npz", **kw)
    engine = Engine.load(out, threads=1)
    return engine.run(x), engine


def _batch(n, size, seed=0):
    h, w = (size, size) if isinstance(size, int) else size
    return np.random.default_rng(seed).standard_normal((n, 3, h, w)).astype(np.float32)


def _check(path, tmp_path, batch=1, size=SIZE, nhwc=False, activation="none", **kw):
    """Engine vs ONNX Runtime on one file; returns the imported model for further checks."""
    x = _batch(batch, size)
    expected = _ort(path, np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if nhwc else x)
    got, engine = _imported_logits(path, x, tmp_path, **kw)
    got = np.asarray(got, np.float64)
    if activation == "softmax":
        got = np.exp(got - got.max(1, keepdims=True))
        got /= got.sum(1, keepdims=True)
    elif activation == "sigmoid":
        got = 1 / (1 + np.exp(-got))
    assert np.ptp(expected, axis=1).min() > 1e-3, "the model's outputs hardly differ between classes"
    assert_close(got, expected, "import_vs_framework")
    assert (got.argmax(1) == expected.argmax(1)).all()
    return engine


def _rewire(graph, old, new, skip=()):
    """Every node (but those in skip) and graph output reading tensor `old` reads `new` instead."""
    for n in graph.node:
        if any(n is s for s in skip):
            continue
        for i, name in enumerate(n.input):
            if name == old:
                n.input[i] = new
    for o in graph.output:
        if o.name == old:
            o.name = new


def _node(graph, op, index=0):
    return [n for n in graph.node if n.op_type == op][index]


def _replace(graph, node, new_nodes):
    i = list(graph.node).index(node)
    graph.node.remove(node)
    for j, n in enumerate(new_nodes):
        graph.node.insert(i + j, n)


def _init(graph, name, value):
    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def _init_value(graph, name):
    return numpy_helper.to_array(next(t for t in graph.initializer if t.name == name))


def _set_init(graph, name, value):
    t = next(t for t in graph.initializer if t.name == name)
    t.CopyFrom(numpy_helper.from_array(np.asarray(value), name))


def _set_opset(model, version):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version


def _clip_attrs(model):
    """Opset 10: every Clip's bounds as min/max attributes, the Constant nodes gone."""
    g = model.graph
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"}
    for n in g.node:
        if n.op_type == "Clip":
            lo, hi = (float(consts[i]) for i in n.input[1:3])
            del n.input[1:]
            n.attribute.extend([helper.make_attribute("min", lo), helper.make_attribute("max", hi)])
    for n in [n for n in g.node if n.op_type == "Constant"]:
        g.node.remove(n)
    _set_opset(model, 10)
    return model


# ---- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    return random_model(3, 0.35, 10, (SIZE, SIZE), calib_batches=2, progress=False)


@pytest.fixture(scope="module")
def small_ts(small, tmp_path_factory):
    """TorchScript export at opset 13, fixed batch 1: the base of the graph-surgery variants."""
    return _torch_export(small, tmp_path_factory.mktemp("onnx") / "small.onnx", opset=13)


def _load(path):
    return onnx.load(path)


# ---- exporters, opsets, BN, batch -------------------------------------------

@pytest.mark.parametrize("opset", range(11, 19))
def test_torchscript_opsets(small, opset, tmp_path):
    path = _torch_export(small, tmp_path / "m.onnx", opset=opset)
    engine = _check(path, tmp_path)
    assert engine.meta["padding"] == "torch" and engine.meta["activation"] == "none"
    assert engine.meta["preprocess"] == wformat.TORCHVISION_PREPROCESS
    assert engine.meta["source"] == {"kind": "onnx", "file": "m.onnx"}


@pytest.mark.parametrize("width, classes, size, dynamo, dynamic, bn, batch", [
    (0.35, 10, 64, False, True, True, 3),    # BatchNormalization nodes kept, dynamic batch
    (0.35, 7, 72, True, False, False, 2),    # dynamo exporter (ReduceMean with an axes input, Reshape)
    (1.4, 10, 80, False, False, False, 1),
    (1.0, 1000, 224, False, False, False, 1),
])
def test_torch_exports(width, classes, size, dynamo, dynamic, bn, batch, tmp_path):
    if dynamo:
        pytest.importorskip("onnxscript")  # the dynamo exporter writes the graph with it
    model = random_model(5, width, classes, (min(size, 96),) * 2, calib_batches=2, progress=False)
    path = _torch_export(model, tmp_path / "m.onnx", size=size, batch=batch, dynamo=dynamo, dynamic=dynamic, bn=bn)
    ops = {n.op_type for n in _load(path).graph.node}
    assert ("BatchNormalization" in ops) == bn
    engine = _check(path, tmp_path, batch=batch, size=size)
    imported = import_onnx(path)
    assert (imported.width_mult, imported.num_classes, imported.input_size) == (width, classes, (size, size))
    assert engine.meta["padding"] == "torch"


def test_arrays_match_reference_forward(small_ts):
    """The imported arrays through the float64 reference (no engine, no file) agree with ONNX Runtime."""
    from mbv2_engine import reference
    m = import_onnx(small_ts)
    x = _batch(1, SIZE, seed=4)
    assert_close(reference.forward(m.arrays, m.arch, x, m.padding), _ort(small_ts, x), "import_vs_framework")


def test_clip_attributes_opset10(small_ts, tmp_path):
    model = _clip_attrs(_load(small_ts))
    assert "min" in {a.name for a in _node(model.graph, "Clip").attribute}
    onnx.save(model, tmp_path / "clip10.onnx")
    _check(tmp_path / "clip10.onnx", tmp_path)


def test_clip_initializers_and_bn_graph_surgery(small, tmp_path):
    """Clip bounds as initializers; one BatchNormalization kept by hand with an epsilon of its own."""
    path = _torch_export(small, tmp_path / "bn.onnx", opset=13, bn=True)
    model = _load(path)
    g = model.graph
    consts = [n for n in g.node if n.op_type == "Constant"]
    for n in consts:
        _init(g, n.output[0], numpy_helper.to_array(n.attribute[0].t))
        g.node.remove(n)
    bn = _node(g, "BatchNormalization", 5)
    eps = [a for a in bn.attribute if a.name == "epsilon"]
    if eps:
        eps[0].f = 0.25  # large, so the wrong eps would show
    else:
        bn.attribute.append(helper.make_attribute("epsilon", 0.25))
    onnx.save(model, tmp_path / "bn2.onnx")
    _check(tmp_path / "bn2.onnx", tmp_path)


def _pool_variant(model, reduce_axes_input=False, keepdims=1, classifier="gemm"):
    g = model.graph
    gap, flat, gemm = _node(g, "GlobalAveragePool"), _node(g, "Flatten"), _node(g, "Gemm")
    if reduce_axes_input:
        rm = helper.make_node("ReduceMean", [gap.input[0], _init(g, "axes", np.array([-2, -1]))], gap.output,
                              name="pool", keepdims=keepdims)
        _set_opset(model, 18)
    else:
        rm = helper.make_node("ReduceMean", [gap.input[0]], gap.output, name="pool", axes=[2, 3], keepdims=keepdims)
    _replace(g, gap, [rm])
    if keepdims:
        _replace(g, flat, [helper.make_node("Reshape", [flat.input[0], _init(g, "shape", np.array([0, -1]))],
                                            flat.output, name="flat")])
    else:
        _rewire(g, flat.output[0], flat.input[0])
        g.node.remove(flat)
    w, b = _init_value(g, gemm.input[1]), _init_value(g, gemm.input[2])  # w: (K, L), transB=1
    if classifier == "transB0":
        _set_init(g, gemm.input[1], w.T.copy())
        for a in gemm.attribute:
            if a.name == "transB":
                a.i = 0
    elif classifier == "matmul":
        _replace(g, gemm, [helper.make_node("MatMul", [gemm.input[0], _init(g, "wt", w.T.copy())], ["mm"], name="mm"),
                           helper.make_node("Add", [_init(g, "bias", b.reshape(1, -1)), "mm"], gemm.output,
                                            name="add_bias")])
    return model


@pytest.mark.parametrize("axes_input, keepdims, classifier", [
    (False, 1, "transB0"),   # ReduceMean axes attribute, Reshape, Gemm with an (L, K) weight
    (True, 0, "matmul"),     # ReduceMean axes input (opset 18), no flattening, MatMul + Add
])
def test_pool_and_classifier_forms(small_ts, tmp_path, axes_input, keepdims, classifier):
    model = _pool_variant(_load(small_ts), axes_input, keepdims, classifier)
    onnx.save(model, tmp_path / "v.onnx")
    _check(tmp_path / "v.onnx", tmp_path)


@pytest.mark.parametrize("op", ["Softmax", "Sigmoid"])
def test_output_activation(small_ts, tmp_path, op):
    model = _load(small_ts)
    g = model.graph
    gemm = _node(g, "Gemm")
    gemm.output[0] = "pre"
    g.node.append(helper.make_node(op, ["pre"], ["logits"], name="out_act", **({"axis": 1} if op == "Softmax" else {})))
    onnx.save(model, tmp_path / "act.onnx")
    engine = _check(tmp_path / "act.onnx", tmp_path, activation=op.lower())
    assert engine.meta["activation"] == op.lower()
    if op == "Softmax":  # classify's probabilities are the source model's output
        x = _batch(1, SIZE)
        top = engine.classify(x, top_k=1)[0][0]
        probs = _ort(tmp_path / "act.onnx", x)[0]
        assert top.index == int(probs.argmax())
        assert_close(top.probability, probs.max(), "import_vs_framework")


def test_dropout_identity_and_hidden_layers(small_ts, tmp_path):
    """Identity after the stem, Dropout before the classifier, hidden Gemm+Relu, Gemm+Clip and a bare Gemm."""
    model = _load(small_ts)
    g = model.graph
    rng = np.random.default_rng(7)
    clip = _node(g, "Clip")
    ident = helper.make_node("Identity", [clip.output[0]], ["ident"], name="ident")
    _rewire(g, clip.output[0], "ident")
    g.node.insert(list(g.node).index(clip) + 1, ident)
    gemm = _node(g, "Gemm")
    last = _init_value(g, gemm.input[1]).shape[1]
    feats = gemm.input[0]
    nodes = [helper.make_node("Dropout", [feats, _init(g, "ratio", np.array(0.2, np.float32))], ["drop"], name="drop")]
    t, n_in = "drop", last
    for j, (units, act) in enumerate([(24, "Relu"), (16, "Clip"), (12, None)]):
        w = _init(g, f"h{j}.w", rng.normal(0, n_in ** -0.5, (units, n_in)).astype(np.float32))
        b = _init(g, f"h{j}.b", rng.normal(0, 0.1, units).astype(np.float32))
        nodes.append(helper.make_node("Gemm", [t, w, b], [f"h{j}"], name=f"hidden{j}", transB=1))
        t = f"h{j}"
        if act == "Relu":
            nodes.append(helper.make_node("Relu", [t], [t + "r"], name=f"relu{j}"))
            t += "r"
        elif act == "Clip":
            lo, hi = _init(g, "lo", np.array(0, np.float32)), _init(g, "hi", np.array(6, np.float32))
            nodes.append(helper.make_node("Clip", [t, lo, hi], [t + "c"], name=f"clip{j}"))
            t += "c"
        n_in = units
    classes = _init_value(g, gemm.input[1]).shape[0]
    w = _init(g, "cls.w", rng.normal(0, n_in ** -0.5, (n_in, classes)).astype(np.float32))  # (in, out): transB=0
    nodes.append(helper.make_node("Gemm", [t, w, _init(g, "cls.b", np.zeros(classes, np.float32))], gemm.output,
                                  name="cls"))
    _replace(g, gemm, nodes)
    onnx.save(model, tmp_path / "hidden.onnx")
    engine = _check(tmp_path / "hidden.onnx", tmp_path)
    assert engine.meta["hidden"] == [{"units": 24, "activation": "relu"}, {"units": 16, "activation": "relu6"},
                                     {"units": 12, "activation": "none"}]


# ---- the tf2onnx-style NHWC graph -------------------------------------------

def _nhwc_graph(model, size, rules, eps=1e-3, stem_same=False, all_same=False, batch=None):
    """A tf2onnx-style graph of a torch MobileNetV2's (unfolded) weights.

    NHWC input, Transpose to NCHW, BatchNormalization after every conv, explicit
    Pad nodes before VALID stride-2 convs (`rules`, [top, bottom, left, right]),
    stride-1 3x3 convs with pads 1, ReLU6 as Clip with initializer bounds,
    GlobalAveragePool, Squeeze, MatMul + Add, Softmax.
    """
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    arch = model.arch
    nodes, inits = [], []
    count = iter(range(10 ** 6))

    def init(value):
        name = f"const_{next(count)}"
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    lo, hi = init(0.0), init(6.0)

    def conv_bn(x, conv, bn, stride, group, rule=None, relu=True):
        w = sd[conv + ".weight"]
        k = w.shape[-1]
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], group=group)
        if k == 3 and (all_same or (stem_same and conv == "features.0.0")):
            attrs["auto_pad"] = "SAME_UPPER"
        elif k == 3 and stride == 2:
            top, bottom, left, right = rule
            pad_out = f"pad_{next(count)}"
            pads = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
            inits.append(numpy_helper.from_array(pads, pad_out + "_pads"))
            nodes.append(helper.make_node("Pad", [x, pad_out + "_pads"], [pad_out], mode="constant"))
            x, attrs["pads"] = pad_out, [0, 0, 0, 0]
        else:
            attrs["pads"] = [k // 2] * 4
        y = f"conv_{next(count)}"
        nodes.append(helper.make_node("Conv", [x, init(w)], [y], **attrs))
        z = f"bn_{next(count)}"
        nodes.append(helper.make_node("BatchNormalization", [y] + [init(sd[f"{bn}.{p}"]) for p in
                                                                   ("weight", "bias", "running_mean", "running_var")],
                                      [z], epsilon=eps))
        if not relu:
            return z
        r = f"relu6_{next(count)}"
        nodes.append(helper.make_node("Clip", [z, lo, hi], [r]))
        return r

    rule = iter(rules)
    nodes.append(helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2]))
    t = conv_bn("nchw", "features.0.0", "features.0.1", 2, 1, next(rule))
    for i, b in enumerate(arch.blocks):
        p = f"features.{i + 1}.conv."
        x, j = t, 0
        if b.has_expand:
            t = conv_bn(t, p + "0.0", p + "0.1", 1, 1)
            j = 1
        t = conv_bn(t, f"{p}{j}.0", f"{p}{j}.1", b.stride, b.hidden, next(rule) if b.stride == 2 else None)
        t = conv_bn(t, f"{p}{j + 1}", f"{p}{j + 2}", 1, 1, relu=False)
        if b.residual:
            nodes.append(helper.make_node("Add", [x, t], [f"add_{i}"]))
            t = f"add_{i}"
    n = len(arch.blocks) + 1
    t = conv_bn(t, f"features.{n}.0", f"features.{n}.1", 1, 1)
    nodes += [helper.make_node("GlobalAveragePool", [t], ["gap"]),
              helper.make_node("Squeeze", ["gap", "squeeze_axes"], ["feat"]),
              helper.make_node("MatMul", ["feat", init(sd["classifier.1.weight"].T)], ["mm"]),
              helper.make_node("Add", ["mm", init(sd["classifier.1.bias"])], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "squeeze_axes"))
    h, w = (size, size) if isinstance(size, int) else size
    graph = helper.make_graph(nodes, "mobilenetv2_nhwc", [helper.make_tensor_value_info(
        "input_1", TensorProto.FLOAT, [batch if batch else "unk__0", h, w, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch if batch else "unk__0", arch.num_classes])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def keras_like():
    return random_model(11, 1.0, 12, (SIZE, SIZE), calib_batches=2, progress=False)


@pytest.mark.parametrize("size, stem_same, all_same, padding", [
    (96, False, False, KERAS_RULES),
    ((80, 96), True, False, ["same"] + KERAS_RULES[1:]),  # Conv1 SAME, as Keras 3 builds it
    (72, False, True, "same"),                             # every 3x3 conv auto_pad SAME_UPPER
])
def test_nhwc_tf2onnx_style(keras_like, tmp_path, size, stem_same, all_same, padding):
    model = _nhwc_graph(keras_like, size, KERAS_RULES, stem_same=stem_same, all_same=all_same)
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "keras.onnx")
    engine = _check(tmp_path / "keras.onnx", tmp_path, batch=2, size=size, nhwc=True, activation="softmax")
    assert engine.meta["padding"] == padding
    assert engine.meta["preprocess"] == KERAS_PREPROCESS
    assert engine.meta["input_size"] == list((size, size) if isinstance(size, int) else size)
    assert import_onnx(tmp_path / "keras.onnx", preprocess="torchvision").preprocess == wformat.TORCHVISION_PREPROCESS


def test_nhwc_mixed_rules_width_035(tmp_path):
    rules = [[1, 1, 1, 1], [0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1]]
    model = _nhwc_graph(random_model(2, 0.35, 5, (SIZE, SIZE), calib_batches=2, progress=False), 96, rules, batch=1)
    onnx.save(model, tmp_path / "mixed.onnx")
    engine = _check(tmp_path / "mixed.onnx", tmp_path, size=96, nhwc=True, activation="softmax")
    assert engine.meta["padding"] == rules
    assert engine.meta["activation"] == "softmax" and engine.meta["num_classes"] == 5


def test_nhwc_all_torch_rules_are_torch(keras_like):
    model = _nhwc_graph(keras_like, 64, [[1, 1, 1, 1]] * 5)
    assert import_onnx(model).padding == "torch"


# ---- refusals ---------------------------------------------------------------

def _refused(model, match):
    with pytest.raises(ModelImportError, match=match):
        import_onnx(model)


def test_refuses_unmapped_node(small_ts):
    model = _load(small_ts)
    g = model.graph
    clip = _node(g, "Clip", 3)
    _rewire(g, clip.output[0], "scaled")
    g.node.insert(list(g.node).index(clip) + 1, helper.make_node(
        "Mul", [clip.output[0], _init(g, "two", np.array(2, np.float32))], ["scaled"], name="sneaky_scale"))
    _refused(model, r"node 'sneaky_scale' \(Mul\) is not part of MobileNetV2")


def test_refuses_stray_branch(small_ts):
    model = _load(small_ts)
    g = model.graph
    g.node.append(helper.make_node("Sigmoid", [_node(g, "Clip", 5).output[0]], ["unused"], name="side_branch"))
    _refused(model, r"node 'side_branch' \(Sigmoid\) is not part of MobileNetV2")


def test_refuses_wrong_activation(small_ts):
    model = _load(small_ts)
    clip = _node(model.graph, "Clip", 2)
    clip.op_type = "Relu"
    del clip.input[1:]
    _refused(model, r"\(Relu\) is not part of MobileNetV2: expected Clip for block 1's expand ReLU6")


def test_refuses_missing_residual_add(small_ts):
    model = _load(small_ts)
    g = model.graph
    add = _node(g, "Add", 1)
    order = {out: k for k, n in enumerate(g.node) for out in n.output}
    project = max(add.input, key=order.get)  # the block's projection, computed after its input
    _rewire(g, add.output[0], project)
    g.node.remove(add)
    _refused(model, r"block 4 of MobileNetV2 0\.35 adds its input to its output .* no residual Add")


def test_refuses_stride1_conv_without_padding(small_ts):
    model = _load(small_ts)
    dw = [n for n in model.graph.node if n.op_type == "Conv" and helper.get_attribute_value(
        next(a for a in n.attribute if a.name == "group")) > 1][0]
    next(a for a in dw.attribute if a.name == "pads").ints[:] = [0, 0, 0, 0]
    _refused(model, r"a stride-1 3x3 conv padded \[0, 0, 0, 0\] .* MobileNetV2 pads 1 on every side")


def test_refuses_stride2_padding_of_two(keras_like):
    model = _nhwc_graph(keras_like, 64, [[0, 2, 0, 1]] + KERAS_RULES[1:])
    _refused(model, r"a stride-2 3x3 conv padded \[0, 2, 0, 1\] .* each side must pad 0 or 1")


def test_refuses_nonstandard_width(tmp_path):
    model = MobileNetV2(0.6, 10).eval()  # channel counts between the standard widths'
    path = _torch_export(model, tmp_path / "w06.onnx", opset=13)
    _refused(path, r"a stem of 24 channels .* fits none of MobileNetV2's standard widths")


def test_refuses_files_that_are_not_onnx(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xffnot a protobuf" * 10)
    _refused(tmp_path / "junk.onnx", r"junk\.onnx is not an ONNX model that onnx\.load reads")


def test_refuses_unknown_preprocess(small_ts):
    with pytest.raises(InputError, match="preprocess must be None, 'torchvision' or 'keras'"):
        import_onnx(small_ts, preprocess="caffe")


def test_command_line_export_and_refusal(small_ts, tmp_path, capsys):
    """`mbv2-engine export --from-onnx`: torchvision's preprocessing for an NCHW graph unless --preprocess
    says otherwise; a refusal is one line on stderr and exit status 2."""
    from mbv2_engine.cli import main

    out = tmp_path / "cli.npz"
    assert main(["export", "--from-onnx", str(small_ts), "-o", str(out)]) == 0
    assert Engine.load(out).meta["preprocess"] == wformat.TORCHVISION_PREPROCESS
    assert main(["export", "--from-onnx", str(small_ts), "-o", str(out), "--preprocess", "keras"]) == 0
    assert Engine.load(out).meta["preprocess"] == KERAS_PREPROCESS
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xff not protobuf")
    capsys.readouterr()
    assert main(["export", "--from-onnx", str(junk), "-o", str(tmp_path / "j.npz")]) == 2
    err = capsys.readouterr().err
    assert "mbv2-engine export: error:" in err and "is not an ONNX model that onnx.load reads" in err
