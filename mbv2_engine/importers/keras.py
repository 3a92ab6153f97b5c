"""Import a Keras MobileNetV2 (`.keras` or legacy `.h5`) without Keras: h5py and the standard library only.

Two file kinds:

- legacy HDF5 (`model.save("m.h5")`): the model's config is the JSON in the
  file's `model_config` attribute; the weights sit in `model_weights/<layer>`,
  named by the `weight_names` attribute of each top-level layer's group (a
  nested model's group holds its layers' weights as `<layer>/<weight>`).
- Keras 3 `.keras`: a zip of `config.json` and `model.weights.h5`, in which a
  layer's variables are `<path>/vars/0..n`, the path built the way Keras's
  saving_lib builds it: each model's layers, in the order its config lists
  them, are named by their class in snake case plus a per-class counter
  (`layers/conv2d`, `layers/conv2d_1`, ...), a nested model's layers under its
  own path (`layers/functional/layers/conv2d`).

The backbone is keras.applications' MobileNetV2, found by its layer names
(`Conv1`, `expanded_conv_*`, `block_N_*`, `Conv_1`, `out_relu`), either inlined
in the model or nested as a sub-model; every layer's class, settings and input
are checked against that graph. Both of its padding styles are read from the
saved config, never recomputed from the input size: Keras 3's SAME `Conv1`
and the older `Conv1_pad` ZeroPadding2D before a VALID `Conv1`, and the
`block_N_pad` ZeroPadding2D before each VALID stride-2 depthwise conv. The head
after `out_relu` must be GlobalAveragePooling2D, then Dense layers (Dropout
anywhere); it becomes the weight file's `hidden` layers, classifier and output
`activation`.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

try:
    import h5py
except ImportError:  # the importer's one dependency beyond numpy; the rest of the package runs without it
    h5py = None

from .. import format as wformat
from ..arch import build_arch
from ..errors import ModelFileNotFoundError
from . import KERAS_PREPROCESS, ImportedModel, ModelImportError, fold_bn, reading, width_from_stem, write_imported

CONTAINERS = ("Functional", "Model", "Sequential")
DEFAULT_SIZE = 224  # input_size where the model's input shape leaves a side unknown (None)
IDENTITY_AT_INFERENCE = ("Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise")
HEAD_HELP = ("the engine runs GlobalAveragePooling2D after the backbone's 'out_relu', then Dense layers "
             "(hidden ones with relu, relu6 or linear activation, the last with linear, softmax or sigmoid), "
             "with Dropout anywhere")
# The last of keras.applications' names in a block, by the block's index: block 0 is "expanded_conv".
BLOCK_PREFIX = ["expanded_conv_"] + [f"block_{i}_" for i in range(1, 17)]


# ---- the model's config as a graph -------------------------------------------

@dataclass(eq=False)
class Layer:
    cls: str
    name: str
    config: dict
    inbound: list[str]  # the layers feeding its (first) call
    calls: int
    parent: "Container | None"
    key: str  # .keras: the layer's path in model.weights.h5
    top: str  # legacy .h5: the top-level layer whose group in model_weights holds its weights
    inner: "Container | None" = None  # the model it is, when it is one


@dataclass(eq=False)
class Container:
    name: str
    cls: str
    layer: Layer | None  # this model as a layer of its parent; None for the file's model
    layers: dict[str, Layer] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def to_snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case, which names a layer's path in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique_name(name: str, used: dict) -> str:
    # keras.src.saving.saving_lib._get_unique_name: the first is `name`, then `name_1`, `name_2`, ...
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _history_names(obj, out: list) -> list:
    """The layer names in a node: Keras 3's `__keras_tensor__` dicts, or tf.keras 2's [name, node, tensor, kwargs]."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                _history_names(v, out)
    elif isinstance(obj, list):
        if len(obj) >= 3 and isinstance(obj[0], str) and all(isinstance(v, int) for v in obj[1:3]):
            out.append(obj[0])
        else:
            for v in obj:
                _history_names(v, out)
    return out


def _endpoints(spec) -> list[str]:
    """input_layers / output_layers: [name, node, tensor] or a list of those."""
    if not spec:
        return []
    if isinstance(spec[0], str):
        return [spec[0]]
    return [s[0] for s in spec]


def _input_layer(name: str, batch_shape, parent: Container) -> Layer:
    return Layer("InputLayer", name, {"name": name, "batch_shape": batch_shape}, [], 0, parent, "", "")


def _parse_container(entry: dict, layer: Layer | None, prefix: str, top: str | None) -> Container:
    cfg = entry.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ModelImportError(f"model {entry.get('class_name')!r} has no layer list in its config")
    c = Container(cfg.get("name", "model"), entry["class_name"], layer)
    sequential = c.cls == "Sequential"
    used: dict[str, int] = {}
    prev = None
    for i, e in enumerate(cfg["layers"]):
        cls = e.get("class_name")
        lcfg = e.get("config") if isinstance(e.get("config"), dict) else {}
        name = lcfg.get("name") or e.get("name")
        if not isinstance(cls, str) or not isinstance(name, str):
            raise ModelImportError(f"model {c.name!r}: layer {i} has no class name or no name in the config")
        # Sequential.layers, the list saving_lib walks, leaves out the InputLayer; its name counts nothing else.
        key = prefix + _unique_name(to_snake_case(cls), used)
        if sequential:
            if prev is None and cls != "InputLayer":  # tf.keras 2: the shape sits in the first layer or the model
                shape = cfg.get("build_input_shape") or lcfg.get("batch_input_shape")
                prev = f"{c.name}_input"
                c.layers[prev] = _input_layer(prev, shape, c)
                c.inputs = [prev]
            inbound, calls = ([prev] if prev else []), 1
        else:
            nodes = e.get("inbound_nodes") or []
            inbound, calls = (_history_names(nodes[0], []) if nodes else []), len(nodes)
        lay = Layer(cls, name, lcfg, inbound, calls, c, key, top or name)
        if cls in CONTAINERS:
            lay.inner = _parse_container(e, lay, key + "/layers/", top or name)
        if name in c.layers:
            raise ModelImportError(f"model {c.name!r}: two layers are named {name!r}")
        c.layers[name] = lay
        if sequential and cls == "InputLayer" and prev is None:
            c.inputs = [name]
        prev = name
    if sequential:
        c.outputs = [prev] if prev else []
    else:
        c.inputs, c.outputs = _endpoints(cfg.get("input_layers")), _endpoints(cfg.get("output_layers"))
    return c


# ---- the weights -------------------------------------------------------------

def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _roles(layer: Layer) -> list[str]:
    """The layer's variables in Keras's order (the order of a .keras file's vars/0..n)."""
    cfg = layer.config
    if layer.cls == "BatchNormalization":
        return (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else []) + \
            ["moving_mean", "moving_variance"]
    return ["kernel"] + (["bias"] if cfg.get("use_bias", True) else [])


class _KerasV3Weights:
    """model.weights.h5 of a .keras archive: `<path>/vars/<i>`."""

    def __init__(self, h5):
        self.h5 = h5

    def get(self, layer: Layer) -> dict[str, np.ndarray]:
        roles = _roles(layer)
        group = self.h5.get(layer.key + "/vars")
        found = len(group) if isinstance(group, h5py.Group) else 0
        if found != len(roles):
            raise ModelImportError(f"layer {layer.name!r} ({layer.cls}): model.weights.h5 holds {found} variables "
                                   f"at {layer.key}/vars, expected {len(roles)} ({', '.join(roles)})")
        return {role: np.asarray(group[str(i)]) for i, role in enumerate(roles)}


class _LegacyWeights:
    """model_weights/ of a legacy HDF5 file: each top-level layer's group names its weights in `weight_names`."""

    def __init__(self, group):
        self.group = group

    def get(self, layer: Layer) -> dict[str, np.ndarray]:
        roles = _roles(layer)
        group = self.group.get(layer.top)
        if not isinstance(group, h5py.Group):
            raise ModelImportError(f"layer {layer.name!r} ({layer.cls}): no group {layer.top!r} in model_weights")
        names = [_text(n) for n in group.attrs.get("weight_names", [])]
        if layer.top != layer.name:  # a nested model's layer: its weights are "<layer>/<weight>"
            names = [n for n in names if n.split("/")[-2:-1] == [layer.name]]
        found = {}
        for n in names:
            role = n.split("/")[-1].split(":")[0]  # tf.keras 2 writes "kernel:0"
            found["kernel" if role == "depthwise_kernel" else role] = n
        missing = [r for r in roles if r not in found]
        if missing or len(found) != len(roles):
            raise ModelImportError(f"layer {layer.name!r} ({layer.cls}): model_weights/{layer.top} holds weights "
                                   f"{sorted(found)}, expected {roles}")
        return {role: np.asarray(group[found[role]]) for role in roles}


# ---- reading the file --------------------------------------------------------

@dataclass
class _Source:
    root: Container
    weights: object
    info: dict


def _open(path: str, stack) -> _Source:
    """Parse the config and open the weights of a .keras archive or a legacy .h5 file."""
    name = os.path.basename(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
            if "config.json" not in members or "model.weights.h5" not in members:
                raise ModelImportError(f"{name}: a .keras archive holds config.json and model.weights.h5, "
                                       f"this one holds {sorted(members)}")
            config = json.loads(z.read("config.json"))
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in members else {}
            h5 = stack(h5py.File(io.BytesIO(z.read("model.weights.h5")), "r"))
        weights, kind, version = _KerasV3Weights(h5), "keras", meta.get("keras_version")
    elif h5py.is_hdf5(path):
        h5 = stack(h5py.File(path, "r"))
        if "model_config" not in h5.attrs:
            raise ModelImportError(f"{name}: the HDF5 file has no model_config attribute (a weights-only file, "
                                   f"from save_weights?); save the whole model with model.save")
        config = json.loads(_text(h5.attrs["model_config"]))
        group = h5.get("model_weights")
        if not isinstance(group, h5py.Group):
            raise ModelImportError(f"{name}: the HDF5 file has no model_weights group")
        weights, kind, version = _LegacyWeights(group), "h5", _text(h5.attrs.get("keras_version", "")) or None
    else:
        raise ModelImportError(f"{name} is neither a .keras archive (zip) nor a legacy Keras HDF5 file")
    if not isinstance(config, dict) or config.get("class_name") not in CONTAINERS:
        got = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ModelImportError(f"{name}: the saved model is a {got!r}; the importer reads Functional and "
                               f"Sequential models (a subclassed model has no graph in its config)")
    root = _parse_container(config, None, "layers/", None)
    return _Source(root, weights, {"kind": "keras", "file": name, "format": kind, "keras_version": version})


# ---- checks on single layers -------------------------------------------------

def _refuse(layer: Layer, why: str):
    raise ModelImportError(f"layer {layer.name!r} ({layer.cls}): {why}")


def _pair(value, name: str, layer: Layer) -> tuple:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    _refuse(layer, f"unexpected {name} {value!r}")


def _channels_last(layer: Layer) -> None:
    if layer.config.get("data_format") not in (None, "channels_last"):
        _refuse(layer, f"data_format {layer.config.get('data_format')!r}; the engine reads channels_last models")


def _check_conv(layer: Layer, kernel: int, stride: int, depthwise: bool) -> None:
    cls = "DepthwiseConv2D" if depthwise else "Conv2D"
    if layer.cls != cls:
        _refuse(layer, f"expected a {cls}")
    cfg = layer.config
    got = (_pair(cfg.get("kernel_size"), "kernel_size", layer), _pair(cfg.get("strides", 1), "strides", layer),
           _pair(cfg.get("dilation_rate", 1), "dilation_rate", layer))
    if got != ((kernel, kernel), (stride, stride), (1, 1)):
        _refuse(layer, f"kernel_size {list(got[0])}, strides {list(got[1])}, dilation_rate {list(got[2])}; "
                       f"MobileNetV2 has {kernel}x{kernel}, stride {stride}, no dilation here")
    if cfg.get("groups", 1) != 1 or cfg.get("depth_multiplier", 1) != 1:
        _refuse(layer, "grouped convs and depth_multiplier other than 1 are not MobileNetV2's")
    if cfg.get("activation", "linear") not in ("linear", None):
        _refuse(layer, f"activation {cfg.get('activation')!r} inside the conv; MobileNetV2's convs are linear")
    _channels_last(layer)


def _check_bn(layer: Layer) -> float:
    """A BatchNormalization over the channels; returns its epsilon."""
    if layer.cls != "BatchNormalization":
        _refuse(layer, "expected a BatchNormalization")
    axis = layer.config.get("axis", -1)
    if axis not in (-1, 3, [-1], [3]):
        _refuse(layer, f"normalises axis {axis!r}, not the channels (-1)")
    eps = layer.config.get("epsilon")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        _refuse(layer, f"epsilon {eps!r} is not a positive number")
    return float(eps)


def _relu_kind(layer: Layer) -> str | None:
    """'relu', 'relu6' or 'none' for a ReLU / Activation layer that is one of those, else None."""
    cfg = layer.config
    if layer.cls == "ReLU":
        if cfg.get("negative_slope") not in (0, 0.0, None) or cfg.get("threshold") not in (0, 0.0, None):
            return None
        return {None: "relu", 6: "relu6"}.get(cfg.get("max_value"))
    if layer.cls == "Activation":
        return {"relu": "relu", "relu6": "relu6", "linear": "none"}.get(cfg.get("activation"))
    return None


def _check_relu6(layer: Layer) -> None:
    if _relu_kind(layer) != "relu6":
        _refuse(layer, "expected ReLU6 (ReLU with max_value 6)")


def _zero_pad(layer: Layer) -> list[int]:
    """ZeroPadding2D's padding as [top, bottom, left, right]."""
    _channels_last(layer)
    p = layer.config.get("padding", 1)
    if isinstance(p, int):
        return [p] * 4
    if isinstance(p, (list, tuple)) and len(p) == 2:
        if all(isinstance(v, int) for v in p):
            return [p[0], p[0], p[1], p[1]]
        if all(isinstance(v, (list, tuple)) and len(v) == 2 for v in p):
            return [p[0][0], p[0][1], p[1][0], p[1][1]]
    _refuse(layer, f"unexpected padding {p!r}")


# ---- the backbone ------------------------------------------------------------

class _Backbone:
    """keras.applications' MobileNetV2 layers in one model, checked layer by layer against that graph."""

    def __init__(self, c: Container):
        self.c = c

    def take(self, name: str, inbound: str | None = None) -> Layer:
        layer = self.c.layers.get(name)
        if layer is None:
            raise ModelImportError(f"model {self.c.name!r} has no layer {name!r}: the importer reads "
                                   f"keras.applications' MobileNetV2 and its layer names")
        if inbound is not None and (layer.calls != 1 or layer.inbound != [inbound]):
            _refuse(layer, f"takes {layer.inbound} (called {layer.calls} times); MobileNetV2 feeds it {inbound!r}")
        return layer

    def pad_rule(self, conv: Layer, src: str, stride: int):
        """The conv's padding: its own ("same"/"valid") and a ZeroPadding2D between it and `src`, if any."""
        if conv.calls != 1 or len(conv.inbound) != 1:
            _refuse(conv, f"takes {conv.inbound}; MobileNetV2 feeds it one tensor")
        pad_layer, pad = None, None
        if conv.inbound[0] != src:
            pad_layer = self.c.layers.get(conv.inbound[0])
            if pad_layer is None or pad_layer.cls != "ZeroPadding2D":
                raise ModelImportError(f"layer {conv.name!r} ({conv.cls}) takes {conv.inbound[0]!r}; "
                                       f"MobileNetV2 feeds it {src!r} or a ZeroPadding2D of it")
            self.take(pad_layer.name, src)
            pad = _zero_pad(pad_layer)
        mode = str(conv.config.get("padding", "valid")).lower()
        if mode not in ("same", "valid"):
            _refuse(conv, f"padding {mode!r}")
        if stride == 1:
            if (pad is None and mode == "same") or (pad == [1, 1, 1, 1] and mode == "valid"):
                return None
            got = f"{mode} padding" + (f" after ZeroPadding2D {pad_layer.name!r} {pad}" if pad_layer else "")
            _refuse(conv, f"a stride-1 3x3 conv must pad 1 on each side (SAME), got {got}")
        if pad is None:
            return "same" if mode == "same" else [0, 0, 0, 0]
        if mode != "valid":
            _refuse(conv, f"SAME padding after ZeroPadding2D {pad_layer.name!r}: pad in one place")
        if any(v not in (0, 1) for v in pad):
            _refuse(pad_layer, f"pads [top, bottom, left, right] = {pad}; before a stride-2 3x3 conv the engine "
                               f"takes 0 or 1 on each side")
        return pad


def _find_backbone(root: Container) -> tuple[Container, list[Layer]]:
    """The model holding MobileNetV2's layers, and the head: the chain of layers after its 'out_relu'.

    Walks back from the model's output, into nested models through their
    outputs and out of them through their inputs, so the backbone and the head
    may be inlined or nested either way.
    """
    chain: list[Layer] = []
    c, stack, seen = root, [], set()
    name = _single_output(root)
    while True:
        if (id(c), name) in seen:  # a config whose inbound nodes loop
            raise ModelImportError(f"model {c.name!r}: layer {name!r} feeds itself through its inbound nodes")
        seen.add((id(c), name))
        layer = c.layers.get(name)
        if layer is None:
            raise ModelImportError(f"model {c.name!r}: its config names a layer {name!r} it does not have")
        if layer.inner is not None:
            stack.append(layer)
            c, name = layer.inner, _single_output(layer.inner)
            continue
        if layer.name == "out_relu" and "Conv1" in c.layers:
            return c, chain[::-1]
        if layer.cls == "InputLayer":
            if not stack:
                raise ModelImportError(f"no MobileNetV2 backbone before the output: walking back from "
                                       f"{_single_output(root)!r} reached the input {layer.name!r} without "
                                       f"meeting keras.applications' 'out_relu'")
            outer = stack.pop()
            if outer.calls != 1 or len(outer.inbound) != 1:
                _refuse(outer, f"takes {outer.inbound}; the head must be a chain of single-input layers")
            c, name = outer.parent, outer.inbound[0]
            continue
        if layer.calls != 1 or len(layer.inbound) != 1:
            _refuse(layer, f"takes {len(layer.inbound)} inputs (called {layer.calls} times); the head after "
                           f"'out_relu' must be a chain of single-input layers")
        chain.append(layer)
        name = layer.inbound[0]


def _single_output(c: Container) -> str:
    if len(c.outputs) != 1:
        raise ModelImportError(f"model {c.name!r} has {len(c.outputs)} outputs {c.outputs}; the engine has one")
    return c.outputs[0]


def _input_shape(c: Container) -> tuple | None:
    """(H, W) of the input (None where unknown), checking that the file's input feeds the backbone directly."""
    shapes = []
    while True:
        if len(c.inputs) != 1:
            raise ModelImportError(f"model {c.name!r} has {len(c.inputs)} inputs; MobileNetV2 has one")
        inp = c.layers[c.inputs[0]]
        shapes.append(_hw(inp.config.get("batch_shape") or inp.config.get("batch_input_shape"), inp))
        outer = c.layer
        if outer is None:
            break
        # Nested: the outer model must feed it its own input, unchanged.
        if outer.calls != 1 or len(outer.inbound) != 1:
            _refuse(outer, f"takes {outer.inbound} (called {outer.calls} times); the backbone takes one tensor")
        src = outer.parent.layers.get(outer.inbound[0])
        if src is None:
            _refuse(outer, f"takes {outer.inbound[0]!r}, which model {outer.parent.name!r} does not have")
        if src.cls != "InputLayer":
            _refuse(src, "comes before the MobileNetV2 backbone; the engine feeds the backbone's first conv "
                         "directly (inputs already scaled to [-1, 1])")
        c = outer.parent
    # Each side as the outermost model that fixes it gives it: Keras runs the outer model.
    sides = [[s[k] for s in shapes if s is not None and s[k] is not None] for k in (0, 1)]
    return tuple(side[-1] if side else None for side in sides)


def _hw(shape, inp: Layer) -> tuple:
    if shape is None:
        return None
    if not isinstance(shape, (list, tuple)) or len(shape) != 4 or shape[3] not in (3, None):
        _refuse(inp, f"input shape {shape}; MobileNetV2 takes (batch, height, width, 3) images")
    return tuple(shape[1:3])


# ---- folding -----------------------------------------------------------------

def _f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def _conv_bn(weights, conv: Layer, bn: Layer, depthwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """A conv (kernel in Keras's HWIO, or HW C 1 for depthwise) and the BN after it, folded, in the file's layout."""
    eps = _check_bn(bn)
    w = weights.get(conv)
    k = _f64(w["kernel"])
    if k.ndim != 4:
        _refuse(conv, f"kernel of shape {k.shape}")
    # (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, C, 1) -> (C, kh, kw).
    k = k[:, :, :, 0].transpose(2, 0, 1) if depthwise else k.transpose(3, 2, 0, 1)
    if k.ndim == 4 and k.shape[2:] == (1, 1):
        k = k[:, :, 0, 0]
    b = weights.get(bn)
    n = k.shape[0]
    gamma, beta = b.get("gamma", np.ones(n)), b.get("beta", np.zeros(n))
    for role, v in (("gamma", gamma), ("beta", beta), ("moving_mean", b["moving_mean"]),
                    ("moving_variance", b["moving_variance"])):
        if np.shape(v) != (n,):
            _refuse(bn, f"{role} of shape {np.shape(v)}, the conv before it has {n} channels")
    return fold_bn(k, gamma, beta, b["moving_mean"], b["moving_variance"], eps, w.get("bias"))


def _backbone_arrays(bb: _Backbone, weights) -> tuple[dict, list, dict]:
    """Folded backbone arrays, the five stride-2 padding rules, and the per-block residual flags seen."""
    c, arrays, rules, residual = bb.c, {}, [], {}
    ref = build_arch(1.0, 1)  # strides and expansions do not depend on the width
    src = c.inputs[0]
    conv = bb.take("Conv1")
    _check_conv(conv, 3, 2, False)
    rules.append(bb.pad_rule(conv, src, 2))
    bn = bb.take("bn_Conv1", "Conv1")
    _check_relu6(bb.take("Conv1_relu", "bn_Conv1"))
    arrays["stem.weight"], arrays["stem.bias"] = _conv_bn(weights, conv, bn, False)
    x = "Conv1_relu"
    for i, spec in enumerate(ref.blocks):
        p, f = BLOCK_PREFIX[i], f"blocks.{i}."
        h = x
        if spec.has_expand:
            conv = bb.take(p + "expand", h)
            _check_conv(conv, 1, 1, False)
            bn = bb.take(p + "expand_BN", conv.name)
            _check_relu6(bb.take(p + "expand_relu", bn.name))
            arrays[f + "expand.weight"], arrays[f + "expand.bias"] = _conv_bn(weights, conv, bn, False)
            h = p + "expand_relu"
        conv = bb.take(p + "depthwise")
        _check_conv(conv, 3, spec.stride, True)
        rule = bb.pad_rule(conv, h, spec.stride)
        if spec.stride == 2:
            rules.append(rule)
        bn = bb.take(p + "depthwise_BN", conv.name)
        _check_relu6(bb.take(p + "depthwise_relu", bn.name))
        arrays[f + "depthwise.weight"], arrays[f + "depthwise.bias"] = _conv_bn(weights, conv, bn, True)
        conv = bb.take(p + "project", p + "depthwise_relu")
        _check_conv(conv, 1, 1, False)
        bn = bb.take(p + "project_BN", conv.name)
        arrays[f + "project.weight"], arrays[f + "project.bias"] = _conv_bn(weights, conv, bn, False)
        add = c.layers.get(p + "add")
        residual[i] = add is not None
        if add is not None:
            if add.cls != "Add" or add.calls != 1 or sorted(add.inbound) != sorted([x, bn.name]):
                _refuse(add, f"takes {add.inbound}; MobileNetV2's residual adds {x!r} and {bn.name!r}")
            x = add.name
        else:
            x = bn.name
    conv = bb.take("Conv_1", x)
    _check_conv(conv, 1, 1, False)
    bn = bb.take("Conv_1_bn", "Conv_1")
    _check_relu6(bb.take("out_relu", "Conv_1_bn"))
    arrays["head.weight"], arrays["head.bias"] = _conv_bn(weights, conv, bn, False)
    return arrays, rules, residual


# ---- the head ----------------------------------------------------------------

def _dense_activation(layer: Layer) -> str:
    act = layer.config.get("activation", "linear")
    names = {"linear": "none", None: "none", "relu": "relu", "relu6": "relu6", "softmax": "softmax",
             "sigmoid": "sigmoid"}
    if not (act is None or isinstance(act, str)) or act not in names:
        _refuse(layer, f"activation {act!r}; {HEAD_HELP}")
    return names[act]


def _head(chain: list[Layer]) -> list[tuple[Layer, str]]:
    """[(Dense layer, activation)] of the head, in order; checks every layer of it."""
    pooled, dense = None, []
    for layer in chain:
        if layer.cls in IDENTITY_AT_INFERENCE:
            continue
        if pooled is None:
            if layer.cls != "GlobalAveragePooling2D" or layer.config.get("keepdims", False):
                _refuse(layer, f"right after the backbone; {HEAD_HELP}")
            _channels_last(layer)
            pooled = layer
            continue
        if layer.cls == "Dense":
            if layer.config.get("lora_rank"):
                _refuse(layer, "LoRA-enabled Dense layers are not supported; merge the LoRA weights first")
            dense.append([layer, _dense_activation(layer)])
            continue
        if dense and dense[-1][1] == "none":
            kind = _relu_kind(layer)
            if layer.cls == "Activation" and layer.config.get("activation") in ("softmax", "sigmoid"):
                kind = layer.config["activation"]
            elif layer.cls == "Softmax" and layer.config.get("axis", -1) in (-1, 1, [-1], [1]):
                kind = "softmax"
            if kind is not None:
                dense[-1][1] = kind
                continue
        _refuse(layer, f"in the head; {HEAD_HELP}")
    if not dense:
        last = chain[-1] if chain else None
        where = f"layer {last.name!r} ({last.cls})" if last else "the backbone's 'out_relu' (ReLU)"
        raise ModelImportError(f"the model ends at {where} without a Dense classifier: {HEAD_HELP}")
    for layer, act in dense[:-1]:
        if act not in ("relu", "relu6", "none"):
            _refuse(layer, f"a hidden Dense layer with activation {act!r}; {HEAD_HELP}")
    layer, act = dense[-1]
    if act not in ("none", "softmax", "sigmoid"):
        _refuse(layer, f"the classifier's activation {act!r}; {HEAD_HELP}")
    return [(layer, act) for layer, act in dense]


def _dense_arrays(dense: list[tuple[Layer, str]], weights, inputs: int) -> tuple[dict, list[dict]]:
    arrays, hidden = {}, []
    for i, (layer, act) in enumerate(dense):
        w = weights.get(layer)
        k = _f64(w["kernel"])
        if k.ndim != 2 or k.shape[0] != inputs:
            _refuse(layer, f"kernel of shape {k.shape}; it takes {inputs} features")
        units = k.shape[1]
        b = _f64(w["bias"]) if "bias" in w else np.zeros(units)
        if b.shape != (units,):
            _refuse(layer, f"bias of shape {b.shape} for {units} units")
        name = "classifier" if i == len(dense) - 1 else f"hidden.{i}"
        arrays[name + ".weight"], arrays[name + ".bias"] = k.T, b
        if name != "classifier":
            hidden.append({"units": int(units), "activation": act})
        inputs = units
    return arrays, hidden


# ---- the entry points --------------------------------------------------------

def import_keras(src) -> ImportedModel:
    """Read a Keras MobileNetV2 (`.keras` or legacy `.h5`) into the weight file's terms, BN folded."""
    if h5py is None:
        raise ImportError("the Keras importer reads HDF5 with h5py: pip install h5py (or mbv2-engine[keras])")
    path = os.fspath(src)
    if not os.path.isfile(path):
        raise ModelFileNotFoundError(f"Keras model {path!r} does not exist")
    files = []
    try:
        with reading(os.path.basename(path), "Keras"):
            source = _open(path, lambda f: files.append(f) or f)
            backbone, chain = _find_backbone(source.root)
            size = _input_shape(backbone)
            bb = _Backbone(backbone)
            arrays, rules, residual = _backbone_arrays(bb, source.weights)
            dense = _head(chain)
            head_arrays, hidden = _dense_arrays(dense, source.weights, arrays["head.weight"].shape[0])
    finally:
        for f in files:
            f.close()
    arrays.update(head_arrays)
    width = width_from_stem(arrays["stem.weight"].shape[0],
                            [arrays[f"blocks.{i}.project.weight"].shape[0] for i in range(17)])
    num_classes = arrays["classifier.weight"].shape[0]
    arch = build_arch(width, num_classes)
    for i, spec in enumerate(arch.blocks):
        if residual[i] != spec.residual:
            raise ModelImportError(f"block {BLOCK_PREFIX[i]!r}: {'a' if residual[i] else 'no'} residual Add, but "
                                   f"MobileNetV2 at width {width} has {'one' if spec.residual else 'none'}")
    expected = wformat.expected_shapes(arch)
    for name, shape in expected.items():
        if name == "classifier.weight" and hidden:
            continue  # (K, last hidden units), checked as the Dense chain was read
        if arrays[name].shape != shape:
            raise ModelImportError(f"{name}: shape {arrays[name].shape}, MobileNetV2 at width {width} has {shape}")
    hw = tuple(DEFAULT_SIZE if s is None else int(s) for s in size)
    return ImportedModel(arrays=arrays, width_mult=width, num_classes=int(num_classes), input_size=hw,
                         padding=rules, preprocess=dict(KERAS_PREPROCESS), source=source.info,
                         hidden=hidden, activation=dense[-1][1])


def export_from_keras(src, out, labels=None) -> str:
    """Write a weight file from a Keras MobileNetV2 file (`.keras` or legacy `.h5`); returns `out`."""
    return write_imported(import_keras(src), out, labels)
