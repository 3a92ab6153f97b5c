"""The MobileNetV2 architecture as plain data: one source for every consumer.

The PyTorch model, the float64 reference, the exporters, the validator and the
C++ engine (through the Python loader) all build the network from `build_arch`,
so a width multiplier means the same channel counts everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Rows of (t, c, n, s) from the MobileNetV2 paper, table 2.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
MIN_INPUT = 32  # smallest input side: five stride-2 stages leave a 1x1 map


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's rounding: nearest multiple of `divisor`, never below 90% of v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


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


def build_arch(width_mult: float = 1.0, num_classes: int = 1000) -> Arch:
    stem = make_divisible(STEM_CHANNELS * width_mult)
    last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
    blocks = []
    cin = stem
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        cout = make_divisible(c * width_mult)
        for i in range(n):
            blocks.append(BlockSpec(cin, t, cout, s if i == 0 else 1))
            cin = cout
    return Arch(float(width_mult), int(num_classes), stem, tuple(blocks), last)


def conv_out(size: int, stride: int) -> int:
    """Output size of a 3x3 conv, padded the torch way (1 each side) or SAME: both give ceil."""
    return -(-size // stride)


def pad_before(size: int, stride: int, padding: str) -> int:
    """Rows (or columns) of zero padding before the input of a 3x3 conv.

    torch pads 1 on every side. TF/Keras SAME pads (total // 2) before, so a
    stride-2 conv on an even size pads 0 before and 1 after.
    """
    if padding == "torch":
        return 1
    if padding == "same":
        total = max((conv_out(size, stride) - 1) * stride + 3 - size, 0)
        return total // 2
    raise ValueError(f"padding must be 'torch' or 'same', got {padding!r}")


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
    macs: int
    params: int


def layer_shapes(arch: Arch, height: int, width: int) -> list[LayerShape]:
    """Every layer's shapes, multiply-adds and parameters for one image of height x width."""
    h, w = conv_out(height, 2), conv_out(width, 2)
    layers = [LayerShape("stem", (height, width), (h, w), 3, arch.stem, 0, 2, False,
                         h * w * arch.stem * 27, arch.stem * 28)]
    for i, b in enumerate(arch.blocks):
        ho, wo = conv_out(h, b.stride), conv_out(w, b.stride)
        expand = h * w * b.cin * b.hidden if b.has_expand else 0
        macs = expand + ho * wo * b.hidden * (9 + b.cout)
        params = (b.hidden * (b.cin + 1) if b.has_expand else 0) + b.hidden * 10 + b.cout * (b.hidden + 1)
        layers.append(LayerShape(f"block{i}", (h, w), (ho, wo), b.cin, b.cout, b.hidden,
                                 b.stride, b.residual, macs, params))
        h, w = ho, wo
    cin = arch.blocks[-1].cout
    layers.append(LayerShape("head", (h, w), (h, w), cin, arch.last, 0, 1, False,
                             h * w * cin * arch.last, arch.last * (cin + 1)))
    layers.append(LayerShape("classifier", (1, 1), (1, 1), arch.last, arch.num_classes, 0, 1, False,
                             arch.last * arch.num_classes, arch.num_classes * (arch.last + 1)))
    return layers
