"""timm's MobileNetV2 state dicts (`mobilenetv2_035` ... `mobilenetv2_140`), re-keyed into torchvision's layout.

timm builds MobileNetV2 as an `EfficientNet` (timm/models/efficientnet.py,
`_gen_mobilenet_v2`): `conv_stem`, `bn1`, then `blocks.S.B` for stage S and
block B of the rows (1, 2, 3, 4, 3, 3, 1) repeats, `conv_head`, `bn2` and
`classifier`. The first block is a `DepthwiseSeparableConv` (`conv_dw`, `bn1`,
`conv_pw`, `bn2`: depthwise, then the linear projection), every other block an
`InvertedResidual` (`conv_pw`, `bn1`, `conv_dw`, `bn2`, `conv_pwl`, `bn3`).
Nothing else differs from torchvision's `mobilenet_v2` (checked in timm 1.0.31):

- BatchNorm is plain `nn.BatchNorm2d` arguments (`BatchNormAct2d`), eps 1e-5,
  as torchvision's, so `fold_state_dict`'s default eps is right for both.
- Channels are rounded by `round_channels` = `make_divisible(c * width, 8,
  round_limit=0.9)`, torchvision's rounding, the stem included (`fix_stem` is
  False for these variants): 0.5 gives a 16-channel stem, 1.4 a 48-channel one.
- The head is `max(1280, round_channels(1280 * width))`: 1280 at 0.5, 1792 at
  1.4, torchvision's `make_divisible(1280 * max(1, width))`.
- Every 3x3 conv pads 1 on each side (`pad_type=''`), ReLU6 everywhere, average
  pooling, and the default pretrained config is 224x224, crop 0.875, ImageNet
  mean/std: torchvision's preprocessing but for timm's bicubic resize.

`mobilenetv2_110d` and `_120d` have more blocks (a depth multiplier) and a
fixed stem and head; their keys fit neither layout and are refused.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from ..arch import build_arch
from ..errors import StateDictError
from . import SHOWN_KEYS, ModelImportError, width_from_stem

REPEATS = (1, 2, 3, 4, 3, 3, 1)  # blocks per row of MobileNetV2's table; 17 in all
BN_PARAMS = ("weight", "bias", "running_mean", "running_var")
COUNTER = "num_batches_tracked"  # BN's batch counter: no weights, optional in both layouts

# The first block (t = 1: depthwise, projection) and every other block (expand, depthwise, projection):
# timm's module name -> the module's name inside torchvision's `features.{i + 1}.conv`.
_FIRST_BLOCK = {"conv_dw": "0.0", "bn1": "0.1", "conv_pw": "1", "bn2": "2"}
_BLOCK = {"conv_pw": "0.0", "bn1": "0.1", "conv_dw": "1.0", "bn2": "1.1", "conv_pwl": "2", "bn3": "3"}


def _modules() -> list[tuple[str, str, tuple[str, ...]]]:
    """(timm module, torchvision module, parameter names) for every layer, in network order."""
    mods = [("conv_stem", "features.0.0", ("weight",)), ("bn1", "features.0.1", BN_PARAMS)]
    i = 0
    for stage, repeats in enumerate(REPEATS):
        for b in range(repeats):
            for timm_name, tv_name in (_FIRST_BLOCK if i == 0 else _BLOCK).items():
                params = ("weight",) if timm_name.startswith("conv") else BN_PARAMS
                mods.append((f"blocks.{stage}.{b}.{timm_name}", f"features.{i + 1}.conv.{tv_name}", params))
            i += 1
    last = f"features.{i + 1}"
    mods += [("conv_head", f"{last}.0", ("weight",)), ("bn2", f"{last}.1", BN_PARAMS),
             ("classifier", "classifier.1", ("weight", "bias"))]
    return mods


MODULES = _modules()
# timm key -> torchvision key, counters included (they are re-keyed when present).
TIMM_TO_TORCHVISION = {f"{t}.{p}": f"{v}.{p}" for t, v, params in MODULES
                       for p in params + ((COUNTER,) if params == BN_PARAMS else ())}
LAYOUTS = {  # the keys each layout must have, counters aside
    "torchvision": [f"{v}.{p}" for _, v, params in MODULES for p in params],
    "timm": [f"{t}.{p}" for t, _, params in MODULES for p in params],
}
LAYOUT_NAMES = {"torchvision": "torchvision's mobilenet_v2", "timm": "timm's mobilenetv2_*"}


def _is_counter(key) -> bool:
    return isinstance(key, str) and key.endswith("." + COUNTER)


def _diff(state_dict: Mapping, layout: str) -> tuple[list[str], list]:
    """(missing keys in the layout's order, unknown keys in the dict's order), counters aside."""
    expected = LAYOUTS[layout]
    known = set(expected)
    return ([k for k in expected if k not in state_dict],
            [k for k in state_dict if k not in known and not _is_counter(k)])


def _closest(state_dict: Mapping) -> str:
    """The layout sharing most keys with the dict; torchvision's on a tie (nothing in common, say)."""
    keys = set(state_dict)
    shared = {name: len(keys.intersection(expected)) for name, expected in LAYOUTS.items()}
    return "timm" if shared["timm"] > shared["torchvision"] else "torchvision"


def layout_error(state_dict: Mapping) -> StateDictError:
    """The error for keys that fit neither layout: the closest layout's first missing and unknown keys."""
    layout = _closest(state_dict)
    missing, unknown = _diff(state_dict, layout)
    keys = [k for k in state_dict if not _is_counter(k)]
    hint = ""
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        hint = " (keys start with 'module.': strip that prefix)"
    elif layout == "timm" and any(isinstance(k, str) and re.match(r"blocks\.\d+\.\d+\.", k) for k in unknown):
        hint = (" (more blocks than MobileNetV2's 17: timm's mobilenetv2_110d and mobilenetv2_120d have a "
                "depth multiplier, which the engine does not support)")
    return StateDictError(
        f"state dict fits neither torchvision's mobilenet_v2 nor timm's mobilenetv2_* layout{hint}; closest is "
        f"{LAYOUT_NAMES[layout]}: {len(missing)} missing keys {missing[:SHOWN_KEYS]}, "
        f"{len(unknown)} unknown keys {unknown[:SHOWN_KEYS]}")


def to_torchvision(state_dict: Mapping) -> dict | None:
    """A timm MobileNetV2 state dict re-keyed into torchvision's layout; None when it has torchvision's keys.

    The values are the same objects (nothing is copied); BN counters are
    re-keyed when present and may be absent. A dict whose keys are exactly
    neither layout's raises `layout_error(state_dict)`.
    """
    if _diff(state_dict, "torchvision") == ([], []):
        return None
    missing, unknown = _diff(state_dict, "timm")
    # A counter of no timm module would be dropped unseen: count it as unknown.
    stray = [k for k in state_dict if _is_counter(k) and k not in TIMM_TO_TORCHVISION]
    if missing or unknown or stray:
        raise layout_error(state_dict)
    return {TIMM_TO_TORCHVISION[k]: v for k, v in state_dict.items()}


def _shape(value) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", ()))


TORCHVISION_TO_TIMM = {v: t for t, v in TIMM_TO_TORCHVISION.items()}
_OUT_KEYS = (["features.0.0.weight"] +  # the stem, each block's projection, the head: the widths' channels
             [f"features.{i + 1}.conv.{1 if i == 0 else 2}.weight" for i in range(sum(REPEATS))] +
             [f"features.{sum(REPEATS) + 1}.0.weight"])


def _channels(state_dict: Mapping) -> list[int]:
    """Output channels of the stem, the 17 blocks and the head of a dict in torchvision's layout."""
    shapes = [_shape(state_dict[k]) for k in _OUT_KEYS]
    if not all(shapes):
        raise StateDictError("state dict has a convolution weight without dimensions")
    return [s[0] for s in shapes]


def _arch_channels(width_mult: float) -> list[int]:
    arch = build_arch(width_mult, 1)
    return [arch.stem] + [b.cout for b in arch.blocks] + [arch.last]


def _key(tv_key: str, layout: str) -> str:
    return TORCHVISION_TO_TIMM[tv_key] if layout == "timm" else tv_key


def detect_width(state_dict: Mapping, layout: str = "torchvision") -> float:
    """The standard width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4) a torchvision-layout dict's shapes have.

    `layout` only names the keys in the error ("timm": the dict was re-keyed from timm's).
    """
    channels = _channels(state_dict)
    try:
        width = width_from_stem(channels[0], channels[1:-1])
    except ModelImportError:
        width = None
    if width is None or _arch_channels(width) != channels:
        raise StateDictError(
            f"{LAYOUT_NAMES[layout]} state dict: the output channels of {_key(_OUT_KEYS[0], layout)} ({channels[0]}), "
            f"the blocks {channels[1:-1]} and {_key(_OUT_KEYS[-1], layout)} ({channels[-1]}) fit no standard "
            f"width multiplier; pass the width (width_mult, --width) if it is another one") from None
    return width


def resolve_width(state_dict: Mapping, width_mult: float | None, layout: str = "torchvision") -> float:
    """The width to fold a torchvision-layout dict with: `width_mult` when its channels are the dict's, the
    detected one when `width_mult` is None, and an error naming the first layer that differs otherwise."""
    if width_mult is None:
        return detect_width(state_dict, layout)
    got, want = _channels(state_dict), _arch_channels(width_mult)
    if got == want:
        return float(width_mult)
    try:
        fits = f"; the shapes fit width_mult={detect_width(state_dict, layout)}"
    except StateDictError:
        fits = ""
    j = next(j for j, (g, w) in enumerate(zip(got, want)) if g != w)
    raise StateDictError(f"{LAYOUT_NAMES[layout]} state dict: {_key(_OUT_KEYS[j], layout)} has {got[j]} output "
                         f"channels, width_mult={float(width_mult)} has {want[j]}{fits}")
