"""Write a MobileNetV2 `.tflite` from the project's folded weights, without TensorFlow.

The flatbuffer is built with the schema module that `ai-edge-litert` ships, so
LiteRT (and its XNNPACK delegate) runs exactly the weights the engine runs. The
graph is NHWC and by default mirrors what the TFLite converter emits for a
torch model: stride-2 3x3 convs get an explicit PAD (1 on every side, as torch
pads; TFLite SAME would pad 0 before and 1 after on even sizes), stride-1 3x3
convs use SAME (1 on every side for them), ReLU6 is fused into each conv,
residuals are ADD, the pool is MEAN over H and W, the classifier
FULLY_CONNECTED. bench/ uses that default; its bytes never change.

The keyword options write the other shapes a converted MobileNetV2 takes, for
the TFLite importer's tests (tests/test_import_tflite.py): SAME at stride 2
(what the converter emits for Keras 2's MobileNetV2), PAD [0,1,0,1] + VALID
(Keras 3's ZeroPadding2D), explicit PAD 1 + VALID at stride 1,
AVERAGE_POOL_2D or MEAN with keepdims followed by RESHAPE, hidden
FULLY_CONNECTED layers with fused activations, a 1x1 CONV_2D classifier (as
TF-slim's files have it), a final SOFTMAX or LOGISTIC,
and weights quantized to int8 (dynamic-range style) or stored as float16 behind
DEQUANTIZE ops, the two kinds of file the importer refuses.

`tflite_int8_model` writes a fully int8 graph (the bench's int8 cases) from a
quantized weight file (format version 3): float stem, QUANTIZE, int8 blocks and
head with per-channel weight scales, int8 MEAN, DEQUANTIZE, float classifier.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from mbv2_engine.arch import Arch

ACT = tfl.ActivationFunctionType
TORCH_PAD = (1, 1, 1, 1)
HIDDEN_ACTS = {"none": ACT.NONE, "relu": ACT.RELU, "relu6": ACT.RELU6}


class _Graph:
    """Tensors, constant buffers and operators of one subgraph, appended in network order."""

    def __init__(self):
        self.tensors: list = []
        self.buffers = [tfl.BufferT()]  # buffer 0 is the empty sentinel every model starts with
        self.ops: list = []
        self.codes: dict[int, int] = {}

    def tensor(self, shape, data: np.ndarray | None = None, dtype=tfl.TensorType.FLOAT32,
               quantization=None) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(tfl.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)))
            buffer = len(self.buffers) - 1
        self.tensors.append(tfl.TensorT(shape=list(shape), type=dtype, buffer=buffer,
                                        name=f"t{len(self.tensors)}"))
        if quantization is not None:
            self.tensors[-1].quantization = quantization
        return len(self.tensors) - 1

    def op(self, code: int, inputs, out_shape, options_type=0, options=None) -> int:
        out = self.tensor(out_shape)
        index = self.codes.setdefault(code, len(self.codes))
        self.ops.append(tfl.OperatorT(opcodeIndex=index, inputs=list(inputs), outputs=[out],
                                      builtinOptionsType=options_type, builtinOptions=options))
        return out

    def model(self, inputs, outputs, versions: dict[int, int] | None = None) -> bytes:
        codes = [None] * len(self.codes)
        for code, index in self.codes.items():
            # Codes above 127 live only in builtinCode; the deprecated byte saturates at 127.
            codes[index] = tfl.OperatorCodeT(builtinCode=code, deprecatedBuiltinCode=min(code, 127),
                                             version=(versions or {}).get(code, 1))
        sub = tfl.SubGraphT(tensors=self.tensors, inputs=inputs, outputs=outputs, operators=self.ops,
                            name="main")
        model = tfl.ModelT(version=3, operatorCodes=codes, subgraphs=[sub], buffers=self.buffers,
                           description="mbv2-engine bench")
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _out_size(n: int, stride: int, before_after=None) -> int:
    """Output side of a 3x3 conv: SAME (no explicit pads) gives ceil(n / stride), pads p floor((n + p - 3) / s) + 1."""
    return -(-n // stride) if before_after is None else (n + sum(before_after) - 3) // stride + 1


def _conv_options(depthwise: bool, padding: int, stride: int, relu6: bool) -> tuple:
    """(operator code, options type, options) of a CONV_2D or DEPTHWISE_CONV_2D, ReLU6 fused or none.

    The float and int8 graphs write the same options: square stride, no dilation, depth multiplier 1.
    """
    act = ACT.RELU6 if relu6 else ACT.NONE
    if depthwise:
        return (tfl.BuiltinOperator.DEPTHWISE_CONV_2D, tfl.BuiltinOptions.DepthwiseConv2DOptions,
                tfl.DepthwiseConv2DOptionsT(padding=padding, strideW=stride, strideH=stride, depthMultiplier=1,
                                            fusedActivationFunction=act, dilationWFactor=1, dilationHFactor=1))
    return (tfl.BuiltinOperator.CONV_2D, tfl.BuiltinOptions.Conv2DOptions,
            tfl.Conv2DOptionsT(padding=padding, strideW=stride, strideH=stride, fusedActivationFunction=act,
                               dilationWFactor=1, dilationHFactor=1))


class _Net:
    """Emits layers onto a `_Graph`, tracking the current activation tensor and its NHWC shape."""

    def __init__(self, graph: _Graph, arrays: dict, x: int, shape, stride1_pad=None, weights: str = "float32"):
        self.g, self.arrays, self.x, self.shape = graph, arrays, x, tuple(shape)
        self.stride1_pad, self.weights = stride1_pad, weights

    def weight(self, w: np.ndarray) -> int:
        """A constant weight tensor: float32, int8 with a per-tensor scale, or float16 behind DEQUANTIZE."""
        if self.weights == "int8":
            scale = max(float(np.abs(w).max()), 1e-8) / 127
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            return self.g.tensor(w.shape, q, tfl.TensorType.INT8,
                                 tfl.QuantizationParametersT(scale=[scale], zeroPoint=[0]))
        if self.weights == "float16":
            half = self.g.tensor(w.shape, w.astype("<f2"), tfl.TensorType.FLOAT16)
            return self.g.op(tfl.BuiltinOperator.DEQUANTIZE, [half], w.shape,
                             tfl.BuiltinOptions.DequantizeOptions, tfl.DequantizeOptionsT())
        return self.g.tensor(w.shape, w)

    def conv(self, name: str, stride: int = 1, relu6: bool = True, depthwise: bool = False,
             stride2_pad=TORCH_PAD) -> None:
        """A 1x1 or 3x3 conv (weights `name.weight`/`name.bias`).

        Before a stride-2 3x3 conv, `stride2_pad` is "same" (SAME padding, no PAD op) or
        (top, bottom, left, right) for an explicit PAD followed by VALID; stride-1 3x3 convs
        use SAME, or PAD `self.stride1_pad` + VALID when it is set.
        """
        w, b = self.arrays[name + ".weight"], self.arrays[name + ".bias"]
        n, h, wd, c = self.shape
        if w.ndim == 4:          # stem (Cout, Cin, 3, 3) -> OHWI
            filt = w.transpose(0, 2, 3, 1)
        elif depthwise:          # (C, 3, 3) -> (1, 3, 3, C)
            filt = w.transpose(1, 2, 0)[None]
        else:                    # pointwise (Cout, Cin) -> (Cout, 1, 1, Cin)
            filt = w[:, None, None, :]
        cout = c if depthwise else w.shape[0]
        padding, pad = tfl.Padding.SAME, None
        if filt.shape[1] == 3:
            pad = (None if stride2_pad == "same" else tuple(stride2_pad)) if stride == 2 else self.stride1_pad
        if pad is not None:
            top, bottom, left, right = pad
            pads = self.g.tensor((4, 2), np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32),
                                 tfl.TensorType.INT32)
            self.x = self.g.op(tfl.BuiltinOperator.PAD, [self.x, pads], (n, h + top + bottom, wd + left + right, c),
                               tfl.BuiltinOptions.PadOptions, tfl.PadOptionsT())
            padding = tfl.Padding.VALID
        code, opt_type, opts = _conv_options(depthwise, padding, stride, relu6)
        if filt.shape[1] == 1:
            oh, ow = h, wd
        else:
            oh = _out_size(h, stride, None if pad is None else pad[:2])
            ow = _out_size(wd, stride, None if pad is None else pad[2:])
        self.shape = (n, oh, ow, cout)
        self.x = self.g.op(code, [self.x, self.weight(filt), self.g.tensor(b.shape, b)],
                           self.shape, opt_type, opts)

    def fully_connected(self, name: str, act=ACT.NONE) -> None:
        w, b = self.arrays[name + ".weight"], self.arrays[name + ".bias"]
        self.shape = (self.shape[0], w.shape[0])
        self.x = self.g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [self.x, self.weight(w), self.g.tensor(b.shape, b)],
                           self.shape, tfl.BuiltinOptions.FullyConnectedOptions,
                           tfl.FullyConnectedOptionsT(fusedActivationFunction=act))


def _stride2_rules(stride2_padding) -> list:
    """Five rules (stem, blocks 1, 3, 6, 13): "torch", "same", one (t, b, l, r), or a list of five of those."""
    def rule(r):
        return TORCH_PAD if r == "torch" else r
    if isinstance(stride2_padding, str) or (len(stride2_padding) == 4 and
                                            all(isinstance(v, int) for v in stride2_padding)):
        return [rule(stride2_padding)] * 5
    rules = [rule(r) for r in stride2_padding]
    assert len(rules) == 5, "one rule for each of the five stride-2 3x3 convs"
    return rules


def tflite_model(arrays: dict, arch: Arch, batch: int, height: int, width: int, *,
                 stride2_padding="torch", stride1_padding="same", pool: str = "mean",
                 hidden: tuple = (), classifier: str = "fc", output: str = "none",
                 weights: str = "float32") -> bytes:
    """The flatbuffer bytes of MobileNetV2 for a fixed (batch, height, width, 3) NHWC float32 input.

    stride2_padding: how the five stride-2 3x3 convs pad: "torch" (PAD 1 on every side + VALID),
                     "same" (SAME, no PAD op), (top, bottom, left, right) (PAD + VALID), or a list
                     of five such rules (the stem, then blocks 1, 3, 6 and 13).
    stride1_padding: "same" (SAME) or (top, bottom, left, right) for PAD + VALID at stride 1.
    pool:            "mean" (MEAN over H, W), "mean_keepdims" (MEAN keeping dims + RESHAPE),
                     "avgpool" (AVERAGE_POOL_2D over the whole map + RESHAPE).
    hidden:          activations ("none", "relu", "relu6") of hidden FULLY_CONNECTED layers
                     before the classifier; their weights are `hidden.i.weight`/`hidden.i.bias`.
    classifier:      "fc" (FULLY_CONNECTED) or "conv1x1" (a 1x1 CONV_2D on the pooled 1x1 map +
                     RESHAPE, as TF-slim's hosted files have it; with pool "avgpool" or "mean_keepdims").
    output:          "none", "softmax" or "logistic" after the classifier.
    weights:         "float32", "int8" (weights int8 with a per-tensor scale, as dynamic-range
                     quantization writes them) or "float16" (float16 constants + DEQUANTIZE).
    """
    g = _Graph()
    inp = g.tensor((batch, height, width, 3))
    rules = iter(_stride2_rules(stride2_padding))
    net = _Net(g, arrays, inp, (batch, height, width, 3),
               None if stride1_padding == "same" else tuple(stride1_padding), weights)
    net.conv("stem", stride=2, stride2_pad=next(rules))
    for i, spec in enumerate(arch.blocks):
        skip, p = net.x, f"blocks.{i}."
        if spec.has_expand:
            net.conv(p + "expand")
        net.conv(p + "depthwise", stride=spec.stride, depthwise=True,
                 stride2_pad=next(rules) if spec.stride == 2 else TORCH_PAD)
        net.conv(p + "project", relu6=False)
        if spec.residual:
            net.x = g.op(tfl.BuiltinOperator.ADD, [skip, net.x], net.shape,
                         tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT(fusedActivationFunction=ACT.NONE))
    net.conv("head")
    n, h, w, c = net.shape
    if pool == "avgpool":
        net.x = g.op(tfl.BuiltinOperator.AVERAGE_POOL_2D, [net.x], (n, 1, 1, c), tfl.BuiltinOptions.Pool2DOptions,
                     tfl.Pool2DOptionsT(padding=tfl.Padding.VALID, strideW=1, strideH=1, filterWidth=w,
                                        filterHeight=h, fusedActivationFunction=ACT.NONE))
    else:
        keep = pool == "mean_keepdims"
        assert keep or pool == "mean", pool
        axes = g.tensor((2,), np.array([1, 2], np.int32), tfl.TensorType.INT32)
        net.x = g.op(tfl.BuiltinOperator.MEAN, [net.x, axes], (n, 1, 1, c) if keep else (n, c),
                     tfl.BuiltinOptions.ReducerOptions, tfl.ReducerOptionsT(keepDims=keep))
    if classifier == "conv1x1":  # TF-slim's logits: a 1x1 conv on the pooled (N, 1, 1, C) map, then RESHAPE
        assert pool != "mean" and not hidden, "the 1x1-conv classifier needs a 4-D pool output, no hidden layers"
        net.shape = (n, 1, 1, c)
        net.conv("classifier", relu6=False)
        k = net.shape[3]
        shape = g.tensor((2,), np.array([n, k], np.int32), tfl.TensorType.INT32)
        net.x = g.op(tfl.BuiltinOperator.RESHAPE, [net.x, shape], (n, k), tfl.BuiltinOptions.ReshapeOptions,
                     tfl.ReshapeOptionsT(newShape=[n, k]))
        net.shape = (n, k)
    else:
        assert classifier == "fc", classifier
        if pool != "mean":
            shape = g.tensor((2,), np.array([n, c], np.int32), tfl.TensorType.INT32)
            net.x = g.op(tfl.BuiltinOperator.RESHAPE, [net.x, shape], (n, c), tfl.BuiltinOptions.ReshapeOptions,
                         tfl.ReshapeOptionsT(newShape=[n, c]))
        net.shape = (n, c)
        for i, act in enumerate(hidden):
            net.fully_connected(f"hidden.{i}", HIDDEN_ACTS[act])
        net.fully_connected("classifier")
    if output == "softmax":
        net.x = g.op(tfl.BuiltinOperator.SOFTMAX, [net.x], net.shape, tfl.BuiltinOptions.SoftmaxOptions,
                     tfl.SoftmaxOptionsT(beta=1.0))
    elif output == "logistic":
        net.x = g.op(tfl.BuiltinOperator.LOGISTIC, [net.x], net.shape)
    else:
        assert output == "none", output
    return g.model([inp], [net.x])


# ---- int8 -----------------------------------------------------------------------------------------

# Operator versions of the int8 graph (tensorflow/lite/tools/versioning/op_version.cc): the float
# writer above leaves every operator at version 1, which is what it needs.
INT8_VERSIONS = {tfl.BuiltinOperator.CONV_2D: 3, tfl.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
                 tfl.BuiltinOperator.ADD: 2, tfl.BuiltinOperator.MEAN: 2, tfl.BuiltinOperator.PAD: 2,
                 tfl.BuiltinOperator.QUANTIZE: 2, tfl.BuiltinOperator.DEQUANTIZE: 2}


def _int8_q(scale: float, zero_point: int):
    """Per-tensor int8 activation quantization."""
    return tfl.QuantizationParametersT(scale=[float(scale)], zeroPoint=[int(zero_point)])


def _per_channel(scales: np.ndarray, dim: int):
    """Per-channel quantization along `dim` (zero points all 0, as TFLite wants for weights and biases)."""
    scales = np.asarray(scales, np.float32)
    return tfl.QuantizationParametersT(scale=[float(s) for s in scales], zeroPoint=[0] * scales.size,
                                       quantizedDimension=dim)


class _Int8Net:
    """Emits the int8 part of the network: uint8 codes (s, z) of the engine's file become int8 (s, z - 128)."""

    def __init__(self, graph: _Graph, arrays: dict, x: int, shape, q: tuple[float, int]):
        self.g, self.arrays, self.x, self.shape, self.q = graph, arrays, x, tuple(shape), q

    def _out(self, code: int, inputs, shape, q, options_type=0, options=None) -> int:
        out = self.g.tensor(shape, dtype=tfl.TensorType.INT8, quantization=_int8_q(q[0], q[1] - 128))
        index = self.g.codes.setdefault(code, len(self.g.codes))
        self.g.ops.append(tfl.OperatorT(opcodeIndex=index, inputs=list(inputs), outputs=[out],
                                        builtinOptionsType=options_type, builtinOptions=options))
        return out

    def conv(self, name: str, q_out: tuple[float, int], stride: int = 1, relu6: bool = True,
             depthwise: bool = False) -> None:
        """A 1x1 or 3x3 int8 conv: weights int8 per output channel (`name.weight_scale`), bias int32 with
        scale s_in * s_w and the engine's rounding, output int8 with (s_out, z_out - 128)."""
        from mbv2_engine.quant_reference import quantize_bias
        w, s_w, b = (self.arrays[name + k] for k in (".weight", ".weight_scale", ".bias"))
        n, h, wd, c = self.shape
        s_in = self.q[0]
        if depthwise:            # (C, 3, 3) -> (1, 3, 3, C): the channel is dimension 3
            filt, dim = w.transpose(1, 2, 0)[None], 3
        else:                    # pointwise (Cout, Cin) -> (Cout, 1, 1, Cin)
            filt, dim = w[:, None, None, :], 0
        cout = c if depthwise else w.shape[0]
        weight = self.g.tensor(filt.shape, np.ascontiguousarray(filt, np.int8), tfl.TensorType.INT8,
                               _per_channel(s_w, dim))
        bias_scale = (np.float64(s_in) * s_w.astype(np.float64)).astype(np.float32)
        bias = self.g.tensor(b.shape, quantize_bias(b, s_in, s_w).astype("<i4"), tfl.TensorType.INT32,
                             _per_channel(bias_scale, 0))
        padding = tfl.Padding.SAME
        if filt.shape[1] == 3 and stride == 2:  # PAD 1 on every side (torch), then VALID; pads with the zero point
            pads = self.g.tensor((4, 2), np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), tfl.TensorType.INT32)
            self.x = self._out(tfl.BuiltinOperator.PAD, [self.x, pads], (n, h + 2, wd + 2, c), self.q,
                               tfl.BuiltinOptions.PadOptions, tfl.PadOptionsT())
            padding = tfl.Padding.VALID
        code, opt_type, opts = _conv_options(depthwise, padding, stride, relu6)
        oh, ow = (h, wd) if filt.shape[1] == 1 else (_out_size(h, stride, (1, 1) if stride == 2 else None),
                                                     _out_size(wd, stride, (1, 1) if stride == 2 else None))
        self.shape = (n, oh, ow, cout)
        self.x = self._out(code, [self.x, weight, bias], self.shape, q_out, opt_type, opts)
        self.q = q_out

    def add(self, skip: int, q_skip: tuple[float, int], q_out: tuple[float, int]) -> None:
        self.x = self._out(tfl.BuiltinOperator.ADD, [skip, self.x], self.shape, q_out,
                           tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT(fusedActivationFunction=ACT.NONE))
        self.q = q_out


def tflite_int8_model(arrays: dict, meta: dict, arch: Arch, batch: int, height: int, width: int,
                      project_params: dict[int, tuple[float, int]]) -> bytes:
    """The flatbuffer bytes of an int8 MobileNetV2 from a quantized weight file (format version 3).

    `arrays`, `meta`: the file's members and metadata (mbv2_engine.quantize writes them); the graph
    runs the same int8 weights with the same activation (scale, zero point)s, each uint8 zero point z
    stored as the int8 z - 128 (TFLite's int8 is the engine's uint8 shifted by 128). Float32 NHWC in
    and logits out, with the float parts as in the engine's file: PAD + the float stem CONV_2D (ReLU6),
    QUANTIZE, the int8 blocks and head (CONV_2D and DEPTHWISE_CONV_2D with per-channel weight scales,
    quantized_dimension 0 and 3, int32 biases with scale s_in * s_w), an int8 MEAN over H and W
    (output quantized as the head's output), DEQUANTIZE, the float FULLY_CONNECTED classifier.

    The engine adds a block's residual inside its projection's requantization (one rounding); TFLite
    has no such fusion, so a residual block's projection writes an int8 tensor of its own, quantized
    with `project_params[block index]` (uint8-style (scale, zero point), calibrated by the caller),
    and an int8 ADD requantizes the sum to the block output's parameters.
    """
    q = meta["quantization"]
    assert not meta.get("hidden"), "hidden Dense layers are not written in the int8 graph"
    assert meta.get("padding", "torch") == "torch", "the int8 graph pads as torch does"
    from mbv2_engine.quant_reference import tensor_names
    params = dict(zip(tensor_names(arch), [(float(s), int(z)) for s, z in q["tensors"]]))
    g = _Graph()
    inp = g.tensor((batch, height, width, 3))
    net = _Net(g, arrays, inp, (batch, height, width, 3))
    net.conv("stem", stride=2)
    shape = net.shape
    x = g.tensor(shape, dtype=tfl.TensorType.INT8, quantization=_int8_q(params["stem"][0], params["stem"][1] - 128))
    g.ops.append(tfl.OperatorT(opcodeIndex=g.codes.setdefault(tfl.BuiltinOperator.QUANTIZE, len(g.codes)),
                               inputs=[net.x], outputs=[x]))
    q8 = _Int8Net(g, arrays, x, shape, params["stem"])
    for i, spec in enumerate(arch.blocks):
        p = f"blocks.{i}."
        skip, q_skip = q8.x, q8.q
        if spec.has_expand:
            q8.conv(p + "expand", params[p + "expand"])
        q8.conv(p + "depthwise", params[p + "depthwise"], stride=spec.stride, depthwise=True)
        if spec.residual:
            q8.conv(p + "project", project_params[i], relu6=False)
            q8.add(skip, q_skip, params[p + "out"])
        else:
            q8.conv(p + "project", params[p + "out"], relu6=False)
    q8.conv("head", params["head"])
    n, h, w, c = q8.shape
    axes = g.tensor((2,), np.array([1, 2], np.int32), tfl.TensorType.INT32)
    pooled = q8._out(tfl.BuiltinOperator.MEAN, [q8.x, axes], (n, c), q8.q, tfl.BuiltinOptions.ReducerOptions,
                     tfl.ReducerOptionsT(keepDims=False))
    net.x = g.op(tfl.BuiltinOperator.DEQUANTIZE, [pooled], (n, c))
    net.shape = (n, c)
    net.fully_connected("classifier")
    return g.model([inp], [net.x], INT8_VERSIONS)
