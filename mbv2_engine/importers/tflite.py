"""Import a float32 MobileNetV2 `.tflite` file, without TensorFlow or the LiteRT runtime.

The flatbuffer is read through the `tflite` package (PyPI `tflite`: the Python
classes flatc generates from TFLite's schema.fbs, nothing else; it needs only
`flatbuffers` and numpy). Where it is missing, the same generated classes that
`ai-edge-litert` ships (`ai_edge_litert.schema_py_generated`) are used instead.

The graph is walked from its one input by tensor indices (names are never
read): the stem, the 17 inverted-residual blocks (residuals are ADD ops), the
head conv, the pool (MEAN over H and W, or AVERAGE_POOL_2D over the whole
map, with RESHAPEs after it), hidden FULLY_CONNECTED layers, the classifier
(FULLY_CONNECTED, or a 1x1 CONV_2D on the pooled 1x1 map followed by RESHAPE,
as TF-slim's hosted mobilenet_v2_*.tflite files have it) and an optional
SOFTMAX or LOGISTIC. ReLU6 must be fused into the convs, as
the TFLite converter fuses it. Tensors are NHWC: CONV_2D filters are
(O, H, W, I), DEPTHWISE_CONV_2D (1, H, W, C), FULLY_CONNECTED (O, I); they are
turned into the weight file's layouts (docs/format.md). BatchNorm is already
folded into the convs by the converter.

Padding: a stride-2 3x3 conv that is SAME becomes the rule "same"; an explicit
PAD [[0,0],[t,b],[l,r],[0,0]] (each 0 or 1) followed by a VALID conv becomes
the fixed rule [t, b, l, r]. Stride-1 3x3 convs must pad 1 on every side (SAME,
or PAD 1 + VALID). Five rules of [1, 1, 1, 1] are written as "torch", five of
"same" as "same".

TFLite MobileNetV2 files come from Keras or TensorFlow, so the preprocessing
written by default is Keras's (pixels scaled to [-1, 1]); `preprocess=
"torchvision"` writes ImageNet mean/std instead (for a torch model converted to
TFLite).
"""
from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from .. import format as wformat
from ..arch import build_arch
from ..errors import InputError, ModelFileNotFoundError, ModelReadError
from . import KERAS_PREPROCESS, ImportedModel, ModelImportError, reading, width_from_stem, write_imported

__all__ = ["import_tflite", "export_from_tflite", "PREPROCESS"]

PREPROCESS = {"keras": KERAS_PREPROCESS, "torchvision": wformat.TORCHVISION_PREPROCESS}
READ_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD", "MEAN", "AVERAGE_POOL_2D", "RESHAPE",
            "FULLY_CONNECTED", "SOFTMAX", "LOGISTIC")
QUANTIZED_TYPES = ("INT8", "UINT8", "INT16", "INT4", "UINT16")
CONST_DTYPES = {"FLOAT32": "<f4", "INT32": "<i4", "INT64": "<i8"}
MAX_FILE_BYTES = 2 ** 31  # a flatbuffer cannot address more; MobileNetV2 at width 4 is ~0.3 GB


def _schema():
    """The flatc-generated TFLite schema classes: the `tflite` package, else LiteRT's copy."""
    try:
        import tflite as schema
    except ImportError:
        try:
            from ai_edge_litert import schema_py_generated as schema
        except ImportError:
            raise ImportError("reading .tflite files needs the `tflite` package (the TFLite flatbuffer "
                              "schema, no runtime): pip install tflite") from None
    return schema


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


class _Graph:
    """The first subgraph of a TFLite model: tensors, operators and who consumes each tensor."""

    def __init__(self, schema, data: bytes, name: str):
        self.s, self.data, self.name = schema, data, name
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelImportError(f"{name} is not a TFLite model (no 'TFL3' flatbuffer identifier at byte 4)")
        try:
            self.model = schema.Model.GetRootAs(data, 0)
            if self.model.SubgraphsLength() < 1:
                raise ModelImportError(f"{name} has no subgraph")
            self.sub = self.model.Subgraphs(0)
            self.tensors = [self.sub.Tensors(i) for i in range(self.sub.TensorsLength())]
            self.ops = [self.sub.Operators(i) for i in range(self.sub.OperatorsLength())]
            self.op_names = _names(schema.BuiltinOperator)
            self.type_names = _names(schema.TensorType)
            codes = [self.model.OperatorCodes(i) for i in range(self.model.OperatorCodesLength())]
            # Codes above 127 live only in builtin_code; older files only fill the deprecated byte.
            self.codes = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) for c in codes]
            self.custom = [c.CustomCode() for c in codes]
            self.inputs = [list(op.InputsAsNumpy()) if op.InputsLength() else [] for op in self.ops]
            self.outputs = [list(op.OutputsAsNumpy()) if op.OutputsLength() else [] for op in self.ops]
            self.graph_inputs = list(self.sub.InputsAsNumpy()) if self.sub.InputsLength() else []
            self.graph_outputs = list(self.sub.OutputsAsNumpy()) if self.sub.OutputsLength() else []
        except (IndexError, ValueError, TypeError, AssertionError) as e:  # flatbuffers reading past the end
            raise ModelImportError(f"{name} is not a readable TFLite flatbuffer: {e}") from None
        self.consumers = defaultdict(list)
        for i, ins in enumerate(self.inputs):
            if not 0 <= self.opcode_index(i) < len(self.codes):
                raise ModelImportError(f"{name}: operator {i} has opcode index {self.opcode_index(i)}, "
                                       f"but the model has {len(self.codes)} operator codes")
            for t in dict.fromkeys(ins):
                if t >= 0:
                    self.consumers[int(t)].append(i)

    def opcode_index(self, i: int) -> int:
        return self.ops[i].OpcodeIndex()

    def code(self, i: int) -> int:
        return self.codes[self.opcode_index(i)]

    def op_name(self, i: int) -> str:
        code = self.code(i)
        if code == self.s.BuiltinOperator.CUSTOM:
            custom = self.custom[self.opcode_index(i)]
            return f"CUSTOM {custom.decode('utf-8', 'replace') if custom else ''!r}"
        return self.op_names.get(code, f"builtin operator code {code}")

    def where(self, i: int) -> str:
        return f"operator {i} ({self.op_name(i)})"

    def type_name(self, t: int) -> str:
        return self.type_names.get(self.tensors[t].Type(), f"type {self.tensors[t].Type()}")

    def shape(self, t: int) -> tuple[int, ...]:
        tensor = self.tensors[t]
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def options(self, i: int, cls_name: str):
        """The operator's builtin options as the schema class `cls_name`, or None when it has none."""
        table = self.ops[i].BuiltinOptions()
        if table is None:
            return None
        expected = getattr(self.s.BuiltinOptions, cls_name)
        if self.ops[i].BuiltinOptionsType() != expected:
            raise ModelImportError(f"{self.name}: {self.where(i)} carries options of type "
                                   f"{self.ops[i].BuiltinOptionsType()}, not {cls_name}")
        opts = getattr(self.s, cls_name)()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def const(self, t: int, what: str, kind: str = "FLOAT32") -> np.ndarray:
        """A constant tensor's values, read from its buffer (in the flatbuffer, or after it).

        kind: "FLOAT32" for weights and biases, "INT" for paddings, axes and shapes (INT32 or INT64).
        """
        tensor = self.tensors[t]
        type_name = self.type_name(t)
        if not (type_name == kind or (kind == "INT" and type_name in ("INT32", "INT64"))):
            raise ModelImportError(f"{self.name}: {what} (tensor {t}) is {type_name}, expected "
                                   f"{'INT32 or INT64' if kind == 'INT' else kind}")
        dtype = CONST_DTYPES[type_name]
        index = tensor.Buffer()
        raw = b""
        if 0 < index < self.model.BuffersLength():
            buf = self.model.Buffers(index)
            if buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
            elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer, offsets from the file start
                raw = self.data[buf.Offset():buf.Offset() + buf.Size()]
        shape = self.shape(t)
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * np.dtype(dtype).itemsize:
            raise ModelImportError(f"{self.name}: {what} (tensor {t}, shape {list(shape)}) has "
                                   f"{len(raw)} bytes of constant data, expected {count * np.dtype(dtype).itemsize}"
                                   f"{' (it is computed, not a constant)' if not raw else ''}")
        return np.frombuffer(raw, dtype).reshape(shape)


def _check_float32(g: _Graph) -> None:
    """Refuse quantized and float16-weight files with a message that says so, before anything else."""
    for i in range(len(g.ops)):
        if g.op_name(i) == "DEQUANTIZE":
            t = g.inputs[i][0] if g.inputs[i] else -1
            kind = g.type_name(t) if t >= 0 else "?"
            if kind == "FLOAT16":
                raise ModelImportError(
                    f"{g.name} stores float16 weights (tensor {t} is FLOAT16, dequantized to float32 by operator "
                    f"{i}): fp16-weight .tflite files are not read yet; convert the model without float16 "
                    f"quantization (float32 weights)")
            raise ModelImportError(
                f"{g.name} is a quantized TFLite model (operator {i} is DEQUANTIZE of a {kind} tensor): int8 "
                f"(and other quantized) .tflite files are not read yet; convert the model to float32, "
                f"without optimizations")
    for t, tensor in enumerate(g.tensors):
        kind = g.type_name(t)
        q = tensor.Quantization()
        quantized = q is not None and (q.ScaleLength() > 0 or q.ZeroPointLength() > 0)
        if kind == "FLOAT16":
            raise ModelImportError(
                f"{g.name} stores float16 tensors (tensor {t} is FLOAT16): fp16-weight .tflite files are not "
                f"read yet; convert the model without float16 quantization (float32 weights)")
        if kind in QUANTIZED_TYPES or quantized:
            detail = f"{kind} with quantization parameters" if quantized else kind
            raise ModelImportError(
                f"{g.name} is a quantized TFLite model (tensor {t} is {detail}): int8 (and other quantized) "
                f".tflite files are not read yet; convert the model to float32, without optimizations")
        if kind not in CONST_DTYPES:
            raise ModelImportError(f"{g.name}: tensor {t} is {kind}; a float32 MobileNetV2 has only FLOAT32 "
                                   f"tensors (and INT32/INT64 shape constants)")
    for i in range(len(g.ops)):
        if g.op_name(i) not in READ_OPS:
            raise ModelImportError(
                f"{g.name}: {g.where(i)} is not an operator the TFLite importer maps onto MobileNetV2 (it reads "
                f"{', '.join(READ_OPS)}, with ReLU6 fused into the convs)")


def _chain(g: _Graph, x: int) -> list[tuple[int, int | None]]:
    """The operators from tensor x to the graph's output, in order, as (operator, skip tensor of an ADD).

    MobileNetV2 is a chain whose only branches are residuals: a block's input feeds
    its first conv and the ADD that ends the block.
    """
    chain, pending = [], {}  # pending: ADD operator -> the chain tensor it is waiting to add
    seen = set()
    while True:
        consumers = g.consumers.get(x, [])
        adds = [i for i in consumers if g.op_name(i) == "ADD"]
        others = [i for i in consumers if g.op_name(i) != "ADD"]
        if not consumers:
            if x not in g.graph_outputs:
                raise ModelImportError(f"{g.name}: tensor {x} ends the chain of operators but is not the "
                                       f"graph's output")
            return chain
        if len(others) > 1 or len(adds) > 1 or (adds and not others and adds[0] not in pending) \
                or (others and adds and adds[0] in pending):
            raise ModelImportError(
                f"{g.name}: tensor {x} feeds {', '.join(g.where(i) for i in consumers)}; MobileNetV2 is a chain "
                f"whose only branches are the residual ADDs")
        if others:
            if adds:
                pending[adds[0]] = x
            op, skip = others[0], None
        else:
            op = adds[0]
            skip = pending.pop(op)
            if sorted(int(t) for t in g.inputs[op]) != sorted((x, skip)):
                raise ModelImportError(f"{g.name}: {g.where(op)} adds tensors {g.inputs[op]}, "
                                       f"not the block's input {skip} and output {x}")
        if op in seen:
            raise ModelImportError(f"{g.name}: the graph has a cycle through {g.where(op)}")
        seen.add(op)
        if len(g.outputs[op]) != 1:
            raise ModelImportError(f"{g.name}: {g.where(op)} has {len(g.outputs[op])} outputs, expected 1")
        chain.append((op, skip))
        x = int(g.outputs[op][0])


class _Reader:
    """Turns the chain of operators into the weight file's arrays and metadata, layer by layer."""

    def __init__(self, g: _Graph, chain):
        self.g, self.chain, self.pos = g, chain, 0
        self.acts = _names(g.s.ActivationFunctionType)

    # ---- cursor ----------------------------------------------------------

    def peek(self) -> str | None:
        return self.g.op_name(self.chain[self.pos][0]) if self.pos < len(self.chain) else None

    def take(self) -> tuple[int, int | None]:
        item = self.chain[self.pos]
        self.pos += 1
        return item

    def fail(self, expected: str):
        if self.pos >= len(self.chain):
            raise ModelImportError(f"{self.g.name}: the graph ends where MobileNetV2 has {expected}")
        raise ModelImportError(f"{self.g.name}: {self.g.where(self.chain[self.pos][0])} is where MobileNetV2 "
                               f"has {expected}")

    def act(self, i: int, opts) -> str:
        return self.acts.get(opts.FusedActivationFunction(), "?") if opts is not None else "NONE"

    def operand(self, i: int, k: int, what: str) -> int:
        ins = self.g.inputs[i]
        if len(ins) <= k or ins[k] < 0:
            raise ModelImportError(f"{self.g.name}: {self.g.where(i)} has no {what} input")
        return int(ins[k])

    def bias(self, i: int, channels: int, what: str) -> np.ndarray:
        ins = self.g.inputs[i]
        if len(ins) < 3 or ins[2] < 0:
            return np.zeros(channels, np.float32)
        b = self.g.const(int(ins[2]), what + " bias")
        if b.shape != (channels,):
            raise ModelImportError(f"{self.g.name}: {self.g.where(i)} has a bias of shape {list(b.shape)}, "
                                   f"expected [{channels}]")
        return b

    # ---- layers ----------------------------------------------------------

    def conv(self, what: str, depthwise: bool, kernel: int) -> dict:
        """An optional PAD and a CONV_2D / DEPTHWISE_CONV_2D: weights in file layout, stride, padding, activation."""
        pad = None
        if self.peek() == "PAD":
            p, _ = self.take()
            pads = self.g.const(self.operand(p, 1, "paddings"), f"the paddings of {self.g.where(p)}", "INT")
            if pads.shape != (4, 2) or pads[0].any() or pads[3].any():
                raise ModelImportError(f"{self.g.name}: {self.g.where(p)} pads {pads.tolist()}; before "
                                       f"{what} only [[0,0],[top,bottom],[left,right],[0,0]] is read")
            pad = [int(v) for v in pads[1:3].reshape(-1)]
        name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        if self.peek() != name:
            self.fail(f"{what} ({name})")
        i, _ = self.take()
        g = self.g
        opts = g.options(i, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        if opts is None:
            raise ModelImportError(f"{g.name}: {g.where(i)} has no options (stride, padding)")
        if opts.DilationHFactor() not in (0, 1) or opts.DilationWFactor() not in (0, 1):
            raise ModelImportError(f"{g.name}: {g.where(i)} ({what}) is dilated; MobileNetV2 is not")
        if opts.StrideH() != opts.StrideW() or opts.StrideH() not in (1, 2):
            raise ModelImportError(f"{g.name}: {g.where(i)} ({what}) has strides "
                                   f"{opts.StrideH()}x{opts.StrideW()}; MobileNetV2 has 1x1 or 2x2")
        filt = g.const(self.operand(i, 1, "filter"), f"the filter of {what}")
        if filt.ndim != 4 or filt.shape[1:3] != (kernel, kernel) or (depthwise and filt.shape[0] != 1):
            layout = "(1, H, W, C)" if depthwise else "(O, H, W, I)"
            raise ModelImportError(f"{g.name}: {g.where(i)} ({what}) has a filter of shape {list(filt.shape)}, "
                                   f"expected a {kernel}x{kernel} filter {layout}")
        in_shape = g.shape(self.operand(i, 0, "input"))
        if depthwise:
            weight = filt[0].transpose(2, 0, 1)                    # (1, H, W, C) -> (C, H, W)
            if in_shape and in_shape[-1] != weight.shape[0]:
                raise ModelImportError(f"{g.name}: {g.where(i)} ({what}) has {weight.shape[0]} filters for "
                                       f"{in_shape[-1]} channels; MobileNetV2's depth multiplier is 1")
        elif kernel == 3:
            weight = filt.transpose(0, 3, 1, 2)                    # OHWI -> (O, I, H, W)
        else:
            weight = filt.reshape(filt.shape[0], filt.shape[3])    # (O, 1, 1, I) -> (O, I)
        padding = "SAME" if opts.Padding() == g.s.Padding.SAME else "VALID"
        return {"op": i, "weight": weight, "bias": self.bias(i, weight.shape[0], what),
                "stride": opts.StrideH(), "pad": pad, "padding": padding, "act": self.act(i, opts)}

    def check_act(self, layer: dict, what: str, act: str) -> None:
        if layer["act"] != act:
            raise ModelImportError(f"{self.g.name}: {self.g.where(layer['op'])} ({what}) has fused activation "
                                   f"{layer['act']}; MobileNetV2 has {act} there")

    def rule(self, layer: dict, what: str):
        """The padding rule of a 3x3 conv: "same" or [t, b, l, r] at stride 2; at stride 1 it must pad 1 all round."""
        pad, mode, where = layer["pad"], layer["padding"], f"{self.g.where(layer['op'])} ({what})"
        if pad is not None and mode == "SAME":
            raise ModelImportError(f"{self.g.name}: {where} is SAME after an explicit PAD {pad}; read are SAME "
                                   f"alone or PAD + VALID")
        if layer["stride"] == 1:
            if (pad is None and mode == "SAME") or pad == [1, 1, 1, 1]:
                return [1, 1, 1, 1]
            raise ModelImportError(f"{self.g.name}: {where} is a stride-1 3x3 conv padded "
                                   f"{'VALID' if pad is None else f'{pad} (top, bottom, left, right)'}; "
                                   f"MobileNetV2 pads stride-1 3x3 convs by 1 on every side (SAME, or "
                                   f"PAD 1 + VALID)")
        if pad is None:
            return "same" if mode == "SAME" else [0, 0, 0, 0]
        if any(v not in (0, 1) for v in pad):
            raise ModelImportError(f"{self.g.name}: {where} is padded {pad} (top, bottom, left, right); a "
                                   f"stride-2 3x3 conv's padding is read only as SAME or 0 or 1 on each side")
        return pad

    def pointwise(self, what: str, act: str) -> dict:
        layer = self.conv(what, depthwise=False, kernel=1)
        if layer["pad"] is not None:
            raise ModelImportError(f"{self.g.name}: a PAD before {self.g.where(layer['op'])} ({what}), a 1x1 conv")
        if layer["stride"] != 1:
            raise ModelImportError(f"{self.g.name}: {self.g.where(layer['op'])} ({what}) has stride "
                                   f"{layer['stride']}; MobileNetV2's 1x1 convs have stride 1")
        self.check_act(layer, what, act)
        return layer

    def pool(self, channels: int) -> None:
        """MEAN over H and W, or AVERAGE_POOL_2D over the whole map; RESHAPEs after it."""
        g, name = self.g, self.peek()
        if name == "MEAN":
            i, _ = self.take()
            axes = g.const(self.operand(i, 1, "axes"), f"the axes of {g.where(i)}", "INT").reshape(-1)
            if sorted(int(a) % 4 for a in axes) != [1, 2]:
                raise ModelImportError(f"{g.name}: {g.where(i)} averages over axes {axes.tolist()}; the global "
                                       f"average pool averages over H and W (axes [1, 2] of NHWC)")
        elif name == "AVERAGE_POOL_2D":
            i, _ = self.take()
            opts = g.options(i, "Pool2DOptions")
            in_shape = g.shape(self.operand(i, 0, "input"))
            if opts is None or len(in_shape) != 4 or (opts.FilterHeight(), opts.FilterWidth()) != in_shape[1:3] \
                    or opts.Padding() != g.s.Padding.VALID or self.act(i, opts) != "NONE":
                raise ModelImportError(
                    f"{g.name}: {g.where(i)} is not a global average pool (a VALID, unactivated "
                    f"{list(in_shape[1:3])} window over its input of shape {list(in_shape)})")
        else:
            self.fail("the global average pool (MEAN or AVERAGE_POOL_2D)")
        self.reshapes(channels)

    def reshapes(self, channels: int) -> None:
        """RESHAPEs of (N, C) features (after the pool or a dense layer) that keep C values an image."""
        g = self.g
        while self.peek() == "RESHAPE":
            r, _ = self.take()
            out = g.shape(int(g.outputs[r][0]))
            if not out or int(np.prod(out[1:])) != channels:
                raise ModelImportError(f"{g.name}: {g.where(r)} reshapes features of {channels} channels to "
                                       f"{list(out)}; only (N, {channels}) or (N, 1, 1, {channels}) is read")

    def fully_connected(self, inputs: int) -> tuple[np.ndarray, np.ndarray, str]:
        """A dense layer: FULLY_CONNECTED, or a 1x1 CONV_2D on the pooled 1x1 map (TF-slim's logits)."""
        g = self.g
        if self.peek() == "CONV_2D":
            layer = self.conv("a dense layer (a 1x1 conv on the pooled map)", depthwise=False, kernel=1)
            i = layer["op"]
            in_shape = g.shape(self.operand(i, 0, "input"))
            if layer["pad"] is not None or layer["stride"] != 1 or len(in_shape) != 4 or in_shape[1:3] != (1, 1):
                raise ModelImportError(f"{g.name}: {g.where(i)} after the pool is read as a dense layer only as "
                                       f"an unpadded stride-1 1x1 conv on a 1x1 map (its input: {list(in_shape)})")
            if layer["weight"].shape[1] != inputs:
                raise ModelImportError(f"{g.name}: {g.where(i)} has weights for {layer['weight'].shape[1]} "
                                       f"inputs, expected {inputs}")
            return layer["weight"], layer["bias"], layer["act"]
        i, _ = self.take()
        opts = g.options(i, "FullyConnectedOptions")
        if opts is not None and opts.WeightsFormat() != 0:
            raise ModelImportError(f"{g.name}: {g.where(i)} has shuffled weights (weights_format "
                                   f"{opts.WeightsFormat()}); only the default layout is read")
        w = g.const(self.operand(i, 1, "weights"), f"the weights of {g.where(i)}")
        if w.ndim != 2 or w.shape[1] != inputs:
            raise ModelImportError(f"{g.name}: {g.where(i)} has weights of shape {list(w.shape)}, expected "
                                   f"(units, {inputs})")
        return w, self.bias(i, w.shape[0], g.where(i)), self.act(i, opts)


def _read(g: _Graph) -> tuple[dict, float, tuple[int, int], object, list, str]:
    if len(g.graph_inputs) != 1 or len(g.graph_outputs) != 1:
        raise ModelImportError(f"{g.name} has {len(g.graph_inputs)} inputs and {len(g.graph_outputs)} outputs; "
                               f"MobileNetV2 has one of each")
    x = int(g.graph_inputs[0])
    shape = g.shape(x)
    if len(shape) != 4 or shape[3] != 3 or g.type_name(x) != "FLOAT32":
        raise ModelImportError(f"{g.name}: the input is {g.type_name(x)} of shape {list(shape)}; expected "
                               f"float32 NHWC (N, H, W, 3)")
    r = _Reader(g, _chain(g, x))
    arrays, rules = {}, []

    stem = r.conv("the stem", depthwise=False, kernel=3)
    r.check_act(stem, "the stem", "RELU6")
    if stem["stride"] != 2 or stem["weight"].shape[1] != 3:
        raise ModelImportError(f"{g.name}: {g.where(stem['op'])} is not MobileNetV2's stem (a 3x3 stride-2 "
                               f"conv of the 3 input channels)")
    rules.append(r.rule(stem, "the stem"))
    arrays["stem.weight"], arrays["stem.bias"] = stem["weight"], stem["bias"]

    # The blocks: [expand 1x1 RELU6], depthwise 3x3 RELU6, project 1x1 NONE, [ADD]; the head 1x1 RELU6 ends them.
    blocks = []
    while True:
        start = r.pos
        first = r.conv(f"block {len(blocks)}'s first conv, or the head", depthwise=False, kernel=1) \
            if r.peek() == "CONV_2D" else None
        if first is not None and r.peek() not in ("DEPTHWISE_CONV_2D", "PAD"):
            r.pos = start
            break  # a 1x1 conv not followed by a depthwise conv: the head
        what = f"block {len(blocks)}"
        expand = first
        dw = r.conv(f"{what}'s depthwise conv", depthwise=True, kernel=3)
        project = r.pointwise(f"{what}'s projection", "NONE")
        residual = r.peek() == "ADD" and r.chain[r.pos][1] is not None
        if residual:
            a, _ = r.take()
            opts = g.options(a, "AddOptions")
            if r.act(a, opts) != "NONE":
                raise ModelImportError(f"{g.name}: {g.where(a)} ({what}'s residual) has fused activation "
                                       f"{r.act(a, opts)}; MobileNetV2 adds without one")
        blocks.append((expand, dw, project, residual))
        if len(blocks) > 17:
            r.fail("the head conv after 17 blocks")
    if len(blocks) != 17:
        r.fail(f"block {len(blocks)} (MobileNetV2 has 17 blocks, this graph {len(blocks)} before the head)")
    width = width_from_stem(stem["weight"].shape[0], [b[2]["weight"].shape[0] for b in blocks])
    arch = build_arch(width, 1)
    for k, ((expand, dw, project, residual), spec) in enumerate(zip(blocks, arch.blocks)):
        p, what = f"blocks.{k}.", f"block {k}"
        if (expand is not None) != spec.has_expand or dw["stride"] != spec.stride or residual != spec.residual:
            raise ModelImportError(
                f"{g.name}: {what} (ending at {g.where(project['op'])}) has "
                f"{'an' if expand is not None else 'no'} expand conv, stride {dw['stride']} and "
                f"{'a' if residual else 'no'} residual ADD; MobileNetV2 at width {width} has "
                f"{'an' if spec.has_expand else 'no'} expand conv, stride {spec.stride} and "
                f"{'a' if spec.residual else 'no'} residual there")
        if expand is not None:
            r.check_act(expand, f"{what}'s expand conv", "RELU6")
            if expand["pad"] is not None:
                raise ModelImportError(f"{g.name}: a PAD before {g.where(expand['op'])} ({what}'s expand "
                                       f"conv), a 1x1 conv")
            if expand["stride"] != 1:
                raise ModelImportError(f"{g.name}: {g.where(expand['op'])} ({what}'s expand conv) has stride "
                                       f"{expand['stride']}; MobileNetV2's 1x1 convs have stride 1")
            arrays[p + "expand.weight"], arrays[p + "expand.bias"] = expand["weight"], expand["bias"]
        r.check_act(dw, f"{what}'s depthwise conv", "RELU6")
        rule = r.rule(dw, f"{what}'s depthwise conv")
        if spec.stride == 2:
            rules.append(rule)
        arrays[p + "depthwise.weight"], arrays[p + "depthwise.bias"] = dw["weight"], dw["bias"]
        arrays[p + "project.weight"], arrays[p + "project.bias"] = project["weight"], project["bias"]
    head = r.pointwise("the head conv", "RELU6")
    arrays["head.weight"], arrays["head.bias"] = head["weight"], head["bias"]
    units = head["weight"].shape[0]
    r.pool(units)

    dense = []
    while r.peek() in ("FULLY_CONNECTED", "CONV_2D"):
        w, b, act = r.fully_connected(units)
        dense.append((w, b, act))
        units = w.shape[0]
        r.reshapes(units)
    if not dense:
        r.fail("the classifier (FULLY_CONNECTED)")
    *hidden_layers, (cw, cb, cact) = dense
    if cact != "NONE":
        raise ModelImportError(f"{g.name}: the classifier ({g.where(r.chain[r.pos - 1][0])}) has fused activation "
                               f"{cact}; a classifier's activation is read only as a SOFTMAX or LOGISTIC after it")
    hidden = []
    for k, (w, b, act) in enumerate(hidden_layers):
        if act not in ("NONE", "RELU", "RELU6"):
            raise ModelImportError(f"{g.name}: hidden dense layer {k} has fused activation {act}; read are "
                                   f"NONE, RELU and RELU6")
        hidden.append({"units": int(w.shape[0]), "activation": act.lower()})
        arrays[f"hidden.{k}.weight"], arrays[f"hidden.{k}.bias"] = w, b
    arrays["classifier.weight"], arrays["classifier.bias"] = cw, cb

    activation = "none"
    if r.peek() == "SOFTMAX":
        i, _ = r.take()
        opts = g.options(i, "SoftmaxOptions")
        if opts is None or opts.Beta() != 1.0:
            raise ModelImportError(f"{g.name}: {g.where(i)} has beta {opts.Beta() if opts else None}; only "
                                   f"beta 1 is read")
        activation = "softmax"
    elif r.peek() == "LOGISTIC":
        r.take()
        activation = "sigmoid"
    if r.peek() is not None:
        r.fail("the end of the graph (after the classifier and its SOFTMAX or LOGISTIC)")
    on_chain = {i for i, _ in r.chain}
    off = [i for i in range(len(g.ops)) if i not in on_chain]
    if off:
        raise ModelImportError(f"{g.name}: {g.where(off[0])} (and {len(off) - 1} more) is off the chain from the "
                               f"input to the output; MobileNetV2 has no side branches")

    expected = wformat.expected_shapes(build_arch(width, cw.shape[0]))
    for name, want in expected.items():
        if name.startswith("classifier."):
            continue  # (K, last hidden units) with hidden layers; checked when the file is written
        if arrays[name].shape != want:
            raise ModelImportError(f"{g.name}: {name} has shape {list(arrays[name].shape)}, MobileNetV2 at width "
                                   f"{width} has {list(want)}")
    if all(rule == [1, 1, 1, 1] for rule in rules):
        padding = "torch"
    elif all(rule == "same" for rule in rules):
        padding = "same"
    else:
        padding = rules
    return arrays, width, (shape[1], shape[2]), padding, hidden, activation


def import_tflite(src, preprocess: str | None = None) -> ImportedModel:
    """Read a float32 MobileNetV2 `.tflite` file (a path) into an `ImportedModel`.

    preprocess: None or "keras" (pixels to [-1, 1], since TFLite MobileNetV2 files come
    from Keras/TensorFlow) or "torchvision" (ImageNet mean/std, for a converted torch model).
    """
    if preprocess is None:
        preprocess = "keras"
    if preprocess not in PREPROCESS:
        raise InputError(f"preprocess must be None, 'keras' or 'torchvision', got {preprocess!r}")
    path = os.fspath(src)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ModelFileNotFoundError(f"TFLite model {path!r} does not exist")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise ModelImportError(f"{path} is {os.path.getsize(path)} bytes, larger than any MobileNetV2 .tflite")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelReadError(f"cannot read {path}: {e}") from None
    schema = _schema()
    with reading(name, "TFLite"):  # flatbuffers reading past the end of a truncated or lying file
        g = _Graph(schema, data, name)
        _check_float32(g)
        arrays, width, size, padding, hidden, activation = _read(g)
    return ImportedModel(arrays=arrays, width_mult=width, num_classes=int(arrays["classifier.bias"].shape[0]),
                         input_size=size, padding=padding, preprocess=dict(PREPROCESS[preprocess]),
                         source={"kind": "tflite", "file": name}, hidden=hidden, activation=activation)


def export_from_tflite(src, out, labels=None, preprocess: str | None = None) -> str:
    """Write a weight file from a float32 MobileNetV2 `.tflite`; returns the path written."""
    return write_imported(import_tflite(src, preprocess), out, labels)
