"""The MobileNetV2 network as plain Python data, read from the C++ core's table.

The network (channels, strides, expansions and residuals from the width
multiplier, every layer's shapes and work, the padding arithmetic) is computed
in one place, csrc/core/network.cc. The PyTorch model, the float64 reference,
the exporters, the Triton path and `engine.plan` all take it from there, so a
width multiplier means the same channel counts everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import _core

MIN_INPUT = _core.MIN_INPUT  # smallest input side: five stride-2 stages leave a 1x1 map


def quant_tuples(quantization) -> list[tuple[float, int]]:
    """An int8 file's tensors ([[scale, zero_point], ...], docs/format.md version 3) as the core takes
    them; none for a float file (quantization null)."""
    return [(float(s), int(z)) for s, z in quantization["tensors"]] if quantization else []


@dataclass(frozen=True)
class BlockSpec:
    cin: int
    t: int  # expansion factor; t = 1 blocks have no expand conv
    cout: int
    stride: int

    @property
    def hidden(self) -> int:
        return self.cin * self.t

    @property
    def has_expand(self) -> bool:
        return self.t != 1

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


@dataclass(frozen=True)
class Arch:
    width_mult: float
    num_classes: int
    stem: int
    blocks: tuple[BlockSpec, ...]
    last: int

    def core_spec(self) -> tuple:
        """(stem, blocks as tuples, last, num_classes): how the core's functions take a network."""
        return self.stem, [(b.cin, b.t, b.cout, b.stride) for b in self.blocks], self.last, self.num_classes


def build_arch(width_mult: float = 1.0, num_classes: int = 1000) -> Arch:
    net = _core.network(float(width_mult), int(num_classes))
    blocks = tuple(BlockSpec(*b) for b in net["blocks"])
    return Arch(float(width_mult), int(num_classes), net["stem"], blocks, net["last"])


def conv_out(size: int, stride: int, rule="torch") -> int:
    """Output size of a 3x3 conv: ceil(size / stride) for "torch" and "same"; a fixed
    [top, bottom, left, right] rule (rows) gives floor((size + top + bottom - 3) / stride) + 1."""
    return _core.conv_axis(size, stride, rule)[1]


def pad_before(size: int, stride: int, rule="torch") -> int:
    """Rows (or columns) of zero padding before the input of a 3x3 conv ("torch": 1; "same": total // 2)."""
    return _core.conv_axis(size, stride, rule)[0]


def layer_rules(arch: Arch, padding) -> list:
    """The padding rule of the stem and of each block's depthwise conv, from the metadata's
    "padding" (a name for every stride-2 conv, or one rule each); stride-1 convs pad 1 each side."""
    strided = 1 + sum(b.stride == 2 for b in arch.blocks)
    rules = iter([padding] * strided if isinstance(padding, str) else list(padding))
    return [next(rules)] + [next(rules) if b.stride == 2 else "torch" for b in arch.blocks]


def hidden_tuples(hidden) -> list[tuple[int, str]]:
    """The metadata's hidden layers ([{"units", "activation"}]) as the core takes them."""
    return [(int(layer["units"]), layer["activation"]) for layer in hidden]


@dataclass(frozen=True)
class LayerShape:
    """One scheduled layer at a given input size: what `engine.plan` reports."""

    name: str
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    cin: int
    cout: int
    hidden: int
    stride: int
    residual: bool
    pad: tuple[int, int]
    macs: int
    params: int


def layer_shapes(arch: Arch, height: int, width: int, padding="torch", hidden=()) -> list[LayerShape]:
    """Every layer's shapes, pads, multiply-adds and parameters for one image of height x width.

    `padding` and `hidden` as the weight file's metadata gives them (docs/format.md).
    """
    layers = _core.layer_shapes(*arch.core_spec(), padding, height, width, hidden_tuples(hidden))
    return [LayerShape(**layer) for layer in layers]
