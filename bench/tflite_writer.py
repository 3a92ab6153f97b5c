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

    def model(self, inputs, outputs) -> bytes:
        codes = [None] * len(self.codes)
        for code, index in self.codes.items():
            # Codes above 127 live only in builtinCode; the deprecated byte saturates at 127.
            codes[index] = tfl.OperatorCodeT(builtinCode=code, deprecatedBuiltinCode=min(code, 127), version=1)
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
        act = ACT.RELU6 if relu6 else ACT.NONE
        if depthwise:
            code, opt_type = tfl.BuiltinOperator.DEPTHWISE_CONV_2D, tfl.BuiltinOptions.DepthwiseConv2DOptions
            opts = tfl.DepthwiseConv2DOptionsT(padding=padding, strideW=stride, strideH=stride, depthMultiplier=1,
                                               fusedActivationFunction=act, dilationWFactor=1, dilationHFactor=1)
        else:
            code, opt_type = tfl.BuiltinOperator.CONV_2D, tfl.BuiltinOptions.Conv2DOptions
            opts = tfl.Conv2DOptionsT(padding=padding, strideW=stride, strideH=stride,
                                      fusedActivationFunction=act, dilationWFactor=1, dilationHFactor=1)
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
