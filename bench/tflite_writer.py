"""Write a MobileNetV2 `.tflite` from the project's folded weights, without TensorFlow.

The flatbuffer is built with the schema module that `ai-edge-litert` ships, so
LiteRT (and its XNNPACK delegate) runs exactly the weights the engine runs. The
graph is NHWC and mirrors what the TFLite converter emits for a torch model:
stride-2 3x3 convs get an explicit PAD (1 on every side, as torch pads; TFLite
SAME would pad 0 before and 1 after on even sizes), stride-1 3x3 convs use SAME
(1 on every side for them), ReLU6 is fused into each conv, residuals are ADD,
the pool is MEAN over H and W, the classifier FULLY_CONNECTED.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from mbv2_engine.arch import Arch, conv_out

ACT = tfl.ActivationFunctionType


class _Graph:
    """Tensors, constant buffers and operators of one subgraph, appended in network order."""

    def __init__(self):
        self.tensors: list = []
        self.buffers = [tfl.BufferT()]  # buffer 0 is the empty sentinel every model starts with
        self.ops: list = []
        self.codes: dict[int, int] = {}

    def tensor(self, shape, data: np.ndarray | None = None, dtype=tfl.TensorType.FLOAT32) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(tfl.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)))
            buffer = len(self.buffers) - 1
        self.tensors.append(tfl.TensorT(shape=list(shape), type=dtype, buffer=buffer,
                                        name=f"t{len(self.tensors)}"))
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


class _Net:
    """Emits layers onto a `_Graph`, tracking the current activation tensor and its NHWC shape."""

    def __init__(self, graph: _Graph, arrays: dict, x: int, shape):
        self.g, self.arrays, self.x, self.shape = graph, arrays, x, tuple(shape)

    def conv(self, name: str, stride: int = 1, relu6: bool = True, depthwise: bool = False) -> None:
        """A 1x1 or 3x3 conv (weights `name.weight`/`name.bias`); pads the torch way before stride 2."""
        w, b = self.arrays[name + ".weight"], self.arrays[name + ".bias"]
        n, h, wd, c = self.shape
        if w.ndim == 4:          # stem (Cout, Cin, 3, 3) -> OHWI
            filt = w.transpose(0, 2, 3, 1)
        elif depthwise:          # (C, 3, 3) -> (1, 3, 3, C)
            filt = w.transpose(1, 2, 0)[None]
        else:                    # pointwise (Cout, Cin) -> (Cout, 1, 1, Cin)
            filt = w[:, None, None, :]
        cout = c if depthwise else w.shape[0]
        padding = tfl.Padding.SAME
        if stride == 2:
            pads = self.g.tensor((4, 2), np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
                                 tfl.TensorType.INT32)
            self.x = self.g.op(tfl.BuiltinOperator.PAD, [self.x, pads], (n, h + 2, wd + 2, c),
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
        self.shape = (n, conv_out(h, stride), conv_out(wd, stride), cout)
        self.x = self.g.op(code, [self.x, self.g.tensor(filt.shape, filt), self.g.tensor(b.shape, b)],
                           self.shape, opt_type, opts)


def tflite_model(arrays: dict, arch: Arch, batch: int, height: int, width: int) -> bytes:
    """The flatbuffer bytes of MobileNetV2 for a fixed (batch, height, width, 3) NHWC float32 input."""
    g = _Graph()
    inp = g.tensor((batch, height, width, 3))
    net = _Net(g, arrays, inp, (batch, height, width, 3))
    net.conv("stem", stride=2)
    for i, spec in enumerate(arch.blocks):
        skip, p = net.x, f"blocks.{i}."
        if spec.has_expand:
            net.conv(p + "expand")
        net.conv(p + "depthwise", stride=spec.stride, depthwise=True)
        net.conv(p + "project", relu6=False)
        if spec.residual:
            net.x = g.op(tfl.BuiltinOperator.ADD, [skip, net.x], net.shape,
                         tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT(fusedActivationFunction=ACT.NONE))
    net.conv("head")
    axes = g.tensor((2,), np.array([1, 2], np.int32), tfl.TensorType.INT32)
    pooled = g.op(tfl.BuiltinOperator.MEAN, [net.x, axes], (batch, arch.last),
                  tfl.BuiltinOptions.ReducerOptions, tfl.ReducerOptionsT(keepDims=False))
    w, b = arrays["classifier.weight"], arrays["classifier.bias"]
    logits = g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [pooled, g.tensor(w.shape, w), g.tensor(b.shape, b)],
                  (batch, arch.num_classes), tfl.BuiltinOptions.FullyConnectedOptions,
                  tfl.FullyConnectedOptionsT(fusedActivationFunction=ACT.NONE))
    return g.model([inp], [logits])
