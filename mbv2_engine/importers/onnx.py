"""Import a MobileNetV2 from an ONNX file (`mbv2-engine export --from-onnx MODEL.onnx -o OUT.npz`).

The `onnx` package parses the file; the importer then walks the graph from its
input, following each tensor to the nodes that consume it (never by node
names), and matches what it meets to MobileNetV2's layers:

    [Transpose NHWC->NCHW]  stem: [Pad] Conv 3x3/2 [BatchNormalization] Clip(0, 6)
    17 blocks:  [Conv 1x1 [BN] Clip]  [Pad] Conv 3x3 depthwise [BN] Clip  Conv 1x1 [BN]  [Add]
    head:       Conv 1x1 [BN] Clip
    pooling:    GlobalAveragePool or ReduceMean over H, W, then Flatten, Reshape or Squeeze
                (nothing after a ReduceMean with keepdims=0)
    dense:      (Gemm | MatMul [Add]) [Relu | Clip(0, 6)] ... ending in the classifier
    output:     [Softmax | Sigmoid]

Identity and (inference) Dropout nodes are looked through. BatchNormalization
is folded with its own epsilon (`fold_bn`); Clip bounds may be attributes
(opset < 11), initializers or Constant nodes. Explicit Pad nodes and a conv's
own pads add up to each 3x3 conv's padding: a stride-1 3x3 conv must pad 1 on
every side, and the five stride-2 convs become the weight file's padding rules
("torch" when all five pad 1 on every side, "same" when all five are
auto_pad=SAME_UPPER, the list of five rules otherwise).

What the graph does with a node the walk does not expect, a shape other than
MobileNetV2's, or a node that nothing maps is refused with a `ModelImportError`
naming the node (its name, or its first output when it has none) and its op type.

Preprocessing (`preprocess=None`): an NCHW graph is taken to be a torchvision
model (ImageNet mean/std), an NHWC graph with a Transpose at its input (what
tf2onnx writes for Keras) a Keras one (inputs in [-1, 1]); "torchvision" or
"keras" says which explicitly.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .. import format as wformat
from ..arch import build_arch
from ..errors import InputError, ModelFileNotFoundError
from . import (KERAS_PREPROCESS, ImportedModel, ModelImportError, fold_bn, reading, width_from_stem,
               write_imported)

PREPROCESS = {"torchvision": wformat.TORCHVISION_PREPROCESS, "keras": KERAS_PREPROCESS}
DEFAULT_SIZE = (224, 224)  # the input size written when the graph's is dynamic
LOOKED_THROUGH = ("Identity", "Dropout")
TORCH_RULE = [1, 1, 1, 1]
# Ops that may compute a Reshape's target shape from the tensor's own shape (dynamic batch).
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Constant", "Identity")


def _onnx():
    import onnx  # imported here so that the package imports without onnx installed
    return onnx


def _label(node) -> str:
    return repr(node.name) if node.name else f"<unnamed, output {node.output[0]!r}>"


def _desc(node) -> str:
    return f"node {_label(node)} ({node.op_type})"


def _attrs(node) -> dict:
    helper = _onnx().helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@dataclass
class _Conv:
    node: object
    weight: np.ndarray  # (out, in / group, kh, kw), float64, BN folded
    bias: np.ndarray
    kernel: int
    stride: int
    group: int
    rule: object  # "same" or [top, bottom, left, right]
    out: str

    @property
    def depthwise(self) -> bool:
        return self.kernel == 3 and self.group > 1 and self.weight.shape[1] == 1 and self.group == self.weight.shape[0]


@dataclass
class _Block:
    expand: _Conv | None
    depthwise: _Conv
    project: _Conv
    residual: bool


class _Walker:
    """The graph as producer/consumer maps, with Identity and Dropout looked through."""

    def __init__(self, model):
        onnx = _onnx()
        self.numpy_helper = onnx.numpy_helper
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        self.nodes = list(g.node)
        self.init = {t.name: t for t in g.initializer}
        self.used: set[int] = set()
        self.alias: dict[str, str] = {}
        self.producer: dict[str, object] = {}
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
        for n in self.nodes:
            if n.op_type in LOOKED_THROUGH:
                self._check_passthrough(n)
                self.alias[n.output[0]] = n.input[0]
                self.used.add(id(n))
        self.consumers: dict[str, list] = defaultdict(list)
        for n in self.nodes:
            if id(n) in self.used:
                continue
            for i in n.input:
                if i:
                    self.consumers[self.resolve(i)].append(n)
        self.outputs = [self.resolve(o.name) for o in g.output]
        inputs = [i for i in g.input if i.name not in self.init]
        if len(inputs) != 1:
            raise ModelImportError(f"the graph has {len(inputs)} inputs {[i.name for i in inputs]}; "
                                   f"MobileNetV2 has one, the image batch")
        self.input = inputs[0]

    def _check_passthrough(self, n) -> None:
        if n.op_type == "Dropout":
            if len(n.output) > 1 and n.output[1] and any(n.output[1] in m.input for m in self.nodes):
                raise ModelImportError(f"{_desc(n)}: its mask output is used; only inference Dropout is read")
            if len(n.input) > 2 and n.input[2]:
                training = self.const(n.input[2], n)
                if training is None or bool(np.asarray(training).reshape(-1)[0]):
                    raise ModelImportError(f"{_desc(n)}: training_mode must be a constant false")
            # Before opset 7 a Dropout trains unless is_test=1.
            if self.opset is not None and self.opset < 7 and _attrs(n).get("is_test", 0) == 0:
                raise ModelImportError(f"{_desc(n)}: is_test=0 (training mode)")

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, name: str, node) -> np.ndarray | None:
        """The value of a constant input (initializer or Constant node), or None when it is computed."""
        name = self.resolve(name)
        if name in self.init:
            return self.numpy_helper.to_array(self.init[name])
        n = self.producer.get(name)
        if n is None or n.op_type != "Constant":
            return None
        self.used.add(id(n))
        a = _attrs(n)
        if "value" in a:
            return self.numpy_helper.to_array(a["value"])
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in a:
                return np.asarray(a[key])
        raise ModelImportError(f"{_desc(n)}: a Constant of a kind the importer does not read ({sorted(a)})")

    def need_const(self, name: str, node, what: str) -> np.ndarray:
        value = self.const(name, node)
        if value is None:
            src = self.producer.get(self.resolve(name))
            by = f" (computed by {_desc(src)})" if src is not None else ""
            raise ModelImportError(f"{_desc(node)}: its {what} {name!r} is not a constant{by}")
        return value

    def pending(self, t: str) -> list:
        return [n for n in self.consumers.get(t, []) if id(n) not in self.used]

    def take(self, n) -> None:
        self.used.add(id(n))

    def expect(self, t: str, ops: tuple, what: str, others: tuple = ()):
        """The one unused consumer of `t` whose op is in `ops`; consumers with ops in `others` may stay."""
        cons = self.pending(t)
        hits = [n for n in cons if n.op_type in ops]
        stray = [n for n in cons if n.op_type not in ops and n.op_type not in others]
        if stray:
            raise ModelImportError(f"{_desc(stray[0])} is not part of MobileNetV2: expected "
                                   f"{' or '.join(ops)} for {what}, reading tensor {t!r}")
        if not hits:
            ends = " (a graph output)" if t in self.outputs else ""
            raise ModelImportError(f"the graph stops at tensor {t!r}{ends}: expected {' or '.join(ops)} for {what}")
        if len(hits) > 1:
            raise ModelImportError(f"tensor {t!r} feeds {len(hits)} nodes ({', '.join(_desc(n) for n in hits)}); "
                                   f"MobileNetV2 has one {' or '.join(ops)} there ({what})")
        self.take(hits[0])
        return hits[0]

    # ---- layers -----------------------------------------------------------

    def pad_node(self, n) -> list[int]:
        """A Pad node's zero padding of H and W as [top, bottom, left, right]."""
        a = _attrs(n)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise ModelImportError(f"{_desc(n)}: mode {mode!r}; only constant (zero) padding maps to MobileNetV2")
        if "pads" in a:  # opset < 11
            pads, value, axes = list(a["pads"]), a.get("value", 0.0), None
        else:
            pads = self.need_const(n.input[1], n, "pads").astype(np.int64).reshape(-1).tolist()
            value = self.const(n.input[2], n) if len(n.input) > 2 and n.input[2] else 0.0
            if value is None:
                raise ModelImportError(f"{_desc(n)}: its constant_value is not a constant")
            axes = (self.need_const(n.input[3], n, "axes").astype(np.int64).reshape(-1).tolist()
                    if len(n.input) > 3 and n.input[3] else None)
        if np.any(np.asarray(value, np.float64) != 0):
            raise ModelImportError(f"{_desc(n)}: pads with {float(np.asarray(value).reshape(-1)[0])}, not zeros")
        axes = list(range(4)) if axes is None else [x % 4 for x in axes]
        if len(pads) != 2 * len(axes):
            raise ModelImportError(f"{_desc(n)}: {len(pads)} pads for {len(axes)} axes")
        per = {ax: (pads[i], pads[i + len(axes)]) for i, ax in enumerate(axes)}
        if any(per.get(ax, (0, 0)) != (0, 0) for ax in (0, 1)):
            raise ModelImportError(f"{_desc(n)}: pads {pads} pad the batch or channel axis of an NCHW tensor")
        (top, bottom), (left, right) = per.get(2, (0, 0)), per.get(3, (0, 0))
        return [top, bottom, left, right]

    def conv(self, t: str, what: str, others: tuple = ()) -> _Conv:
        """[Pad] Conv [BatchNormalization] reading `t`."""
        n = self.expect(t, ("Conv", "Pad"), what, others)
        extra = None
        if n.op_type == "Pad":
            if self.resolve(n.input[0]) != t:
                raise ModelImportError(f"{_desc(n)} ({what}): pads tensor {t!r} as something other than its data")
            extra = self.pad_node(n)
            t = n.output[0]
            n = self.expect(t, ("Conv",), what)
        if self.resolve(n.input[0]) != t:
            raise ModelImportError(f"{_desc(n)} ({what}): reads tensor {t!r} as its weight or bias, not its input")
        a = _attrs(n)
        w = self.need_const(n.input[1], n, "weight").astype(np.float64)
        b = (self.need_const(n.input[2], n, "bias").astype(np.float64)
             if len(n.input) > 2 and n.input[2] else None)
        if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[2] not in (1, 3):
            raise ModelImportError(f"{_desc(n)} ({what}): weight of shape {w.shape}; MobileNetV2 has 1x1 and 3x3 "
                                   f"convolutions only")
        k = w.shape[2]
        strides = list(a.get("strides", [1, 1]))
        if any(d != 1 for d in a.get("dilations", [1, 1])) or len(strides) != 2 or strides[0] != strides[1] \
                or strides[0] not in (1, 2):
            raise ModelImportError(f"{_desc(n)} ({what}): strides {strides}, dilations {a.get('dilations')}; "
                                   f"MobileNetV2 has equal strides of 1 or 2 and no dilation")
        stride, group = strides[0], int(a.get("group", 1))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if auto in ("SAME_UPPER", "SAME_LOWER") and stride == 1:
            own = [(k - 1) // 2] * 4  # odd kernel, stride 1: both SAMEs pad (k - 1) / 2 each side
        elif auto in ("NOTSET", "VALID"):
            own = [0, 0, 0, 0] if auto == "VALID" else [pads[0], pads[2], pads[1], pads[3]]
        elif auto == "SAME_UPPER" and extra is None:
            own = "same"
        else:
            raise ModelImportError(f"{_desc(n)} ({what}): auto_pad {auto} at stride {stride}"
                                   f"{' after a Pad node' if extra else ''} does not map to MobileNetV2's padding")
        rule = own if extra is None or own == "same" else [p + q for p, q in zip(own, extra)]
        if k == 1 and (rule != [0, 0, 0, 0] or stride != 1):
            raise ModelImportError(f"{_desc(n)} ({what}): a 1x1 conv with stride {stride} and padding {rule}; "
                                   f"MobileNetV2's 1x1 convs have stride 1 and no padding")
        if k == 3 and stride == 1 and rule != TORCH_RULE:
            raise ModelImportError(f"{_desc(n)} ({what}): a stride-1 3x3 conv padded {rule} "
                                   f"([top, bottom, left, right]); MobileNetV2 pads 1 on every side")
        if k == 3 and stride == 2 and rule != "same" and any(p not in (0, 1) for p in rule):
            raise ModelImportError(f"{_desc(n)} ({what}): a stride-2 3x3 conv padded {rule} "
                                   f"([top, bottom, left, right]); each side must pad 0 or 1")
        out = n.output[0]
        bns = [m for m in self.pending(out) if m.op_type == "BatchNormalization"]
        if bns and len(self.pending(out)) == 1:
            bn = bns[0]
            self.take(bn)
            ba = _attrs(bn)
            if ba.get("training_mode", 0) or any(o for o in bn.output[1:]):
                raise ModelImportError(f"{_desc(bn)}: a BatchNormalization in training mode")
            gamma, beta, mean, var = (self.need_const(bn.input[i], bn, name) for i, name in
                                      enumerate(("scale", "B", "input_mean", "input_var"), start=1))
            w, b = fold_bn(w, gamma, beta, mean, var, float(ba.get("epsilon", 1e-5)), bias=b)
            out = bn.output[0]
        elif b is None:
            b = np.zeros(w.shape[0])
        return _Conv(n, w, b, k, stride, group, rule, out)

    def relu6(self, t: str, what: str) -> str:
        n = self.expect(t, ("Clip",), what)
        lo, hi = self.clip_bounds(n)
        if lo != 0.0 or hi != 6.0:
            raise ModelImportError(f"{_desc(n)} ({what}): Clip({lo}, {hi}); MobileNetV2's activation is "
                                   f"ReLU6, Clip(0, 6)")
        return n.output[0]

    def clip_bounds(self, n) -> tuple[float, float]:
        a = _attrs(n)
        if "min" in a or "max" in a or len(n.input) == 1:  # opset < 11: attributes
            return float(a.get("min", -np.inf)), float(a.get("max", np.inf))
        bounds = []
        for i, default in ((1, -np.inf), (2, np.inf)):
            if len(n.input) > i and n.input[i]:
                bounds.append(float(np.asarray(self.need_const(n.input[i], n, ("min", "max")[i - 1])).reshape(-1)[0]))
            else:
                bounds.append(default)
        return bounds[0], bounds[1]

    def dense(self, t: str, what: str) -> tuple[object, np.ndarray, np.ndarray, str]:
        """Gemm, or MatMul [Add], reading `t`: (node, weight (out, in), bias (out,), output)."""
        n = self.expect(t, ("Gemm", "MatMul"), what)
        if self.resolve(n.input[0]) != t:
            raise ModelImportError(f"{_desc(n)} ({what}): reads the features as its second operand")
        w = np.asarray(self.need_const(n.input[1], n, "weight"), np.float64)
        if w.ndim != 2:
            raise ModelImportError(f"{_desc(n)} ({what}): a weight of shape {w.shape}, not a matrix")
        out = n.output[0]
        if n.op_type == "Gemm":
            a = _attrs(n)
            if a.get("transA", 0):
                raise ModelImportError(f"{_desc(n)} ({what}): transA=1 transposes the features")
            w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
            c = (np.asarray(self.need_const(n.input[2], n, "bias C"), np.float64) * float(a.get("beta", 1.0))
                 if len(n.input) > 2 and n.input[2] else np.zeros(1))
        else:
            w, c = w.T, np.zeros(1)
            adds = self.pending(out)
            if len(adds) == 1 and adds[0].op_type == "Add":
                add = adds[0]
                other = [i for i in add.input if self.resolve(i) != out]
                c = self.const(other[0], add) if len(other) == 1 else None
                if c is not None:
                    self.take(add)
                    c, out = np.asarray(c, np.float64), add.output[0]
        if c.size not in (1, w.shape[0]) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            raise ModelImportError(f"{_desc(n)} ({what}): a bias of shape {c.shape} for {w.shape[0]} outputs")
        return n, w, np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy(), out


# ---- the walk ---------------------------------------------------------------

def _input_layout(walker: _Walker) -> tuple[str, str, tuple[int, int]]:
    """(first NCHW tensor, "NCHW" or "NHWC", input size)."""
    dims = walker.input.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4:
        raise ModelImportError(f"graph input {walker.input.name!r} has {len(shape)} dimensions; "
                               f"MobileNetV2 reads a 4-D image batch")
    t = walker.input.name
    cons = walker.pending(t)
    layout = "NCHW"
    if len(cons) == 1 and cons[0].op_type == "Transpose":
        perm = list(_attrs(cons[0]).get("perm", []))
        if perm != [0, 3, 1, 2]:
            raise ModelImportError(f"{_desc(cons[0])}: perm {perm} at the input; only NHWC -> NCHW "
                                   f"([0, 3, 1, 2]) is read")
        walker.take(cons[0])
        t, layout = cons[0].output[0], "NHWC"
    channels, hw = (shape[1], shape[2:]) if layout == "NCHW" else (shape[3], shape[1:3])
    if channels not in (None, 3):
        raise ModelImportError(f"graph input {walker.input.name!r} of shape {shape} ({layout}) has {channels} "
                               f"channels; MobileNetV2 reads RGB")
    size = tuple(hw) if all(s is not None and s > 0 for s in hw) else DEFAULT_SIZE
    return t, layout, size


def _pool(walker: _Walker, t: str) -> str:
    """GlobalAveragePool or ReduceMean over H and W, then whatever makes it (N, C)."""
    n = walker.expect(t, ("GlobalAveragePool", "ReduceMean"), "the global average pooling after the head")
    keep = True
    if n.op_type == "ReduceMean":
        a = _attrs(n)
        axes = a.get("axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = walker.need_const(n.input[1], n, "axes").reshape(-1).tolist()
        if axes is None or sorted(int(x) % 4 for x in axes) != [2, 3]:
            raise ModelImportError(f"{_desc(n)}: averages over axes {axes}; the pooling averages H and W "
                                   f"(axes 2, 3 of NCHW)")
        keep = bool(a.get("keepdims", 1))
    t = n.output[0]
    if not keep:
        return t
    n = walker.expect(t, ("Flatten", "Reshape", "Squeeze"), "the flattening after the pooling")
    if n.op_type == "Flatten" and _attrs(n).get("axis", 1) != 1:
        raise ModelImportError(f"{_desc(n)}: axis {_attrs(n)['axis']}; flattening the pooled (N, C, 1, 1) "
                               f"into (N, C) takes axis 1")
    if n.op_type == "Reshape":
        shape = walker.const(n.input[1], n)
        if shape is None:
            _take_shape_graph(walker, n.input[1], n)
        elif shape.size != 2:
            raise ModelImportError(f"{_desc(n)}: reshapes the pooled features to {shape.tolist()}, not (N, C)")
    if n.op_type == "Squeeze":
        axes = _attrs(n).get("axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = walker.need_const(n.input[1], n, "axes").reshape(-1).tolist()
        if axes is None or sorted(int(x) % 4 for x in axes) != [2, 3]:
            raise ModelImportError(f"{_desc(n)}: squeezes axes {axes}, not 2 and 3")
    return n.output[0]


def _take_shape_graph(walker: _Walker, name: str, reshape) -> None:
    """Accept a Reshape target computed from tensor shapes (Shape, Gather, Concat, ...), marking it read."""
    todo, seen = [walker.resolve(name)], set()
    while todo:
        t = todo.pop()
        if t in seen or t in walker.init or t == walker.input.name:
            continue
        seen.add(t)
        n = walker.producer.get(t)
        if n is None:
            raise ModelImportError(f"{_desc(reshape)}: its shape comes from tensor {t!r}, which nothing computes")
        if n.op_type not in SHAPE_OPS:
            raise ModelImportError(f"{_desc(n)} computes the shape of {_desc(reshape)}; only shape arithmetic "
                                   f"({', '.join(SHAPE_OPS)}) may")
        walker.take(n)
        if n.op_type != "Shape":
            todo += [walker.resolve(i) for i in n.input if i]


def _walk(walker: _Walker):
    t, layout, size = _input_layout(walker)
    stem = walker.conv(t, "the stem")
    if stem.kernel != 3 or stem.group != 1 or stem.stride != 2 or stem.weight.shape[1] != 3:
        raise ModelImportError(f"{_desc(stem.node)}: the stem is a 3x3 stride-2 conv over 3 channels; this one "
                               f"has weight {stem.weight.shape}, group {stem.group}, stride {stem.stride}")
    t = walker.relu6(stem.out, "the stem's ReLU6")
    blocks, head = [], None
    while head is None:
        i = len(blocks)
        if i > 17:
            raise ModelImportError(f"more than 17 inverted-residual blocks before the head (at tensor {t!r})")
        x = t
        first = walker.conv(x, f"block {i}", others=("Add",))
        if first.depthwise:
            expand, dw = None, first
        elif first.kernel == 1 and first.group == 1:
            t1 = walker.relu6(first.out, f"block {i}'s expand ReLU6 (or the head's)")
            if not any(n.op_type in ("Conv", "Pad") for n in walker.pending(t1)):
                head, t = first, t1
                break
            expand, dw = first, walker.conv(t1, f"block {i}'s depthwise conv")
            if not dw.depthwise:
                raise ModelImportError(f"{_desc(dw.node)}: block {i}'s second conv must be a 3x3 depthwise conv; "
                                       f"it has weight {dw.weight.shape} and group {dw.group}")
        else:
            raise ModelImportError(f"{_desc(first.node)}: block {i} starts with a 1x1 expand conv or a 3x3 "
                                   f"depthwise conv; this one has weight {first.weight.shape}, group {first.group}")
        t = walker.relu6(dw.out, f"block {i}'s depthwise ReLU6")
        proj = walker.conv(t, f"block {i}'s projection")
        if proj.kernel != 1 or proj.group != 1:
            raise ModelImportError(f"{_desc(proj.node)}: block {i}'s projection must be a 1x1 conv; it has "
                                   f"weight {proj.weight.shape}, group {proj.group}")
        t = proj.out
        adds = [n for n in walker.pending(t) if n.op_type == "Add"
                and sorted(walker.resolve(j) for j in n.input) == sorted([x, t])]
        if adds:
            walker.take(adds[0])
            t = adds[0].output[0]
        blocks.append(_Block(expand, dw, proj, bool(adds)))
    t = _pool(walker, t)
    denses = []
    while True:
        node, w, b, t = walker.dense(t, "the classifier" if not denses else "the layer after a hidden layer")
        cons = walker.pending(t)
        act = None
        if len(cons) == 1 and cons[0].op_type == "Relu":
            walker.take(cons[0])
            act, t = "relu", cons[0].output[0]
        elif len(cons) == 1 and cons[0].op_type == "Clip" and walker.clip_bounds(cons[0]) == (0.0, 6.0):
            walker.take(cons[0])
            act, t = "relu6", cons[0].output[0]
        elif len(cons) == 1 and cons[0].op_type in ("Gemm", "MatMul"):
            act = "none"
        denses.append((node, w, b, act))
        if act is None:
            break
    activation = "none"
    cons = walker.pending(t)
    if len(cons) == 1 and cons[0].op_type in ("Softmax", "Sigmoid"):
        n = cons[0]
        default_axis = -1 if (walker.opset or 13) >= 13 else 1
        if n.op_type == "Softmax" and int(_attrs(n).get("axis", default_axis)) not in (1, -1):
            raise ModelImportError(f"{_desc(n)}: softmax over axis {_attrs(n)['axis']}, not the classes")
        walker.take(n)
        activation, t = n.op_type.lower(), n.output[0]
    stray = walker.pending(t)
    if stray:
        raise ModelImportError(f"{_desc(stray[0])} is not part of MobileNetV2: it reads the classifier's "
                               f"output {t!r}")
    if walker.outputs != [t]:
        raise ModelImportError(f"the graph's outputs are {walker.outputs}; MobileNetV2's one output is the "
                               f"classifier's {t!r}")
    return layout, size, stem, blocks, head, denses, activation


def _check_rest(walker: _Walker) -> None:
    for n in walker.nodes:
        if id(n) in walker.used:
            continue
        if n.op_type == "Constant" and not any(walker.consumers.get(o) for o in n.output):
            continue  # a dead constant computes nothing
        raise ModelImportError(f"{_desc(n)} is not part of MobileNetV2: no layer of the network maps it")


def _arrays(stem, blocks, head, denses) -> tuple[dict, list]:
    arrays = {"stem.weight": stem.weight, "stem.bias": stem.bias}
    for i, blk in enumerate(blocks):
        p = f"blocks.{i}."
        if blk.expand is not None:
            arrays[p + "expand.weight"], arrays[p + "expand.bias"] = blk.expand.weight[:, :, 0, 0], blk.expand.bias
        arrays[p + "depthwise.weight"], arrays[p + "depthwise.bias"] = blk.depthwise.weight[:, 0], blk.depthwise.bias
        arrays[p + "project.weight"], arrays[p + "project.bias"] = blk.project.weight[:, :, 0, 0], blk.project.bias
    arrays["head.weight"], arrays["head.bias"] = head.weight[:, :, 0, 0], head.bias
    hidden = []
    for j, (_, w, b, act) in enumerate(denses[:-1]):
        arrays[f"hidden.{j}.weight"], arrays[f"hidden.{j}.bias"] = w, b
        hidden.append({"units": int(w.shape[0]), "activation": act})
    arrays["classifier.weight"], arrays["classifier.bias"] = denses[-1][1], denses[-1][2]
    return arrays, hidden


def _check_shapes(arrays: dict, arch, hidden, stem, blocks, head, denses) -> None:
    """Every array against the table for the width the channel counts gave, naming the node on a mismatch."""
    inputs = arch.last
    for node, w, _, _ in denses:
        if w.shape[1] != inputs:
            raise ModelImportError(f"{_desc(node)}: a dense layer over {w.shape[1]} features where the layer "
                                   f"before it gives {inputs}")
        inputs = w.shape[0]
    expected = wformat.expected_shapes(arch, hidden)
    nodes = {"stem": stem.node, "head": head.node, "classifier": denses[-1][0]}
    nodes.update({f"hidden.{j}": d[0] for j, d in enumerate(denses[:-1])})
    for i, blk in enumerate(blocks):
        spec = arch.blocks[i]
        node = (blk.expand or blk.depthwise).node
        if (blk.expand is not None) != spec.has_expand:
            raise ModelImportError(
                f"{_desc(node)}: block {i} of MobileNetV2 {arch.width_mult} "
                f"{'has' if spec.has_expand else 'has no'} 1x1 expand conv (expansion {spec.t}); the graph's "
                f"{'lacks it' if spec.has_expand else 'has one'}")
        if blk.depthwise.stride != spec.stride:
            raise ModelImportError(f"{_desc(blk.depthwise.node)}: block {i}'s depthwise conv has stride "
                                   f"{blk.depthwise.stride}; MobileNetV2's has {spec.stride}")
        if blk.residual != spec.residual:
            raise ModelImportError(
                f"{_desc(blk.project.node)}: block {i} of MobileNetV2 {arch.width_mult} "
                + (f"adds its input to its output (stride 1, {spec.cin} -> {spec.cout} channels), but the graph "
                   f"has no residual Add after this projection" if spec.residual else
                   "has no residual connection, but the graph adds the block's input to its output"))
        for part in ("expand", "depthwise", "project"):
            if getattr(blk, part) is not None:
                nodes[f"blocks.{i}.{part}"] = getattr(blk, part).node
    for key, shape in expected.items():
        got = tuple(arrays[key].shape)
        if got != shape:
            node = nodes[key.rsplit(".", 1)[0]]
            raise ModelImportError(f"{_desc(node)}: {key} has shape {got}; MobileNetV2 {arch.width_mult} with "
                                   f"{arch.num_classes} classes has {shape}")


def _padding(stem, blocks):
    rules = [stem.rule] + [b.depthwise.rule for b in blocks if b.depthwise.stride == 2]
    if all(r == TORCH_RULE for r in rules):
        return "torch"
    if all(r == "same" for r in rules):
        return "same"
    return [r if r == "same" else [int(p) for p in r] for r in rules]


def _preprocess(preprocess, layout: str) -> dict:
    if preprocess is None:
        preprocess = "keras" if layout == "NHWC" else "torchvision"
    if preprocess not in PREPROCESS:
        raise InputError(f"preprocess must be None, 'torchvision' or 'keras', got {preprocess!r}")
    return dict(PREPROCESS[preprocess])


def _load(src):
    onnx = _onnx()
    if isinstance(src, onnx.ModelProto):
        return src, None
    path = os.fspath(src)
    if not os.path.isfile(path):
        raise ModelFileNotFoundError(f"ONNX model {path!r} does not exist")
    try:
        return onnx.load(path), os.path.basename(path)
    except Exception as e:  # protobuf's DecodeError and onnx's own errors share no base class
        raise ModelImportError(f"{path} is not an ONNX model that onnx.load reads: {type(e).__name__}: {e}") from None


def import_onnx(src, preprocess=None) -> ImportedModel:
    """Read a MobileNetV2 from an ONNX file (or `onnx.ModelProto`) into the weight file's terms.

    `preprocess`: None (torchvision's for an NCHW graph, Keras's [-1, 1] for an
    NHWC graph with a Transpose at its input), "torchvision" or "keras".
    """
    if preprocess is not None and preprocess not in PREPROCESS:
        raise InputError(f"preprocess must be None, 'torchvision' or 'keras', got {preprocess!r}")
    model, name = _load(src)
    with reading(name or "the ONNX model", "ONNX"):
        walker = _Walker(model)
        layout, size, stem, blocks, head, denses, activation = _walk(walker)
        _check_rest(walker)
        if len(blocks) != 17:
            raise ModelImportError(f"the graph has {len(blocks)} inverted-residual blocks before the head "
                                   f"({_desc(head.node)}); MobileNetV2 has 17")
        width = width_from_stem(stem.weight.shape[0], [b.project.weight.shape[0] for b in blocks])
        num_classes = int(denses[-1][1].shape[0])
        arch = build_arch(width, num_classes)
        arrays, hidden = _arrays(stem, blocks, head, denses)
        _check_shapes(arrays, arch, hidden, stem, blocks, head, denses)
    return ImportedModel(arrays=arrays, width_mult=width, num_classes=num_classes, input_size=size,
                         padding=_padding(stem, blocks), preprocess=_preprocess(preprocess, layout),
                         source={"kind": "onnx", "file": name}, hidden=hidden, activation=activation)


def export_from_onnx(src, out, labels=None, preprocess=None) -> str:
    """Write a weight file from an ONNX MobileNetV2 (see `import_onnx`); returns the path written."""
    return write_imported(import_onnx(src, preprocess), out, labels)
