"""Write weight files from PyTorch: torchvision state dicts and random calibrated models.

Both exporters fold BatchNorm through `fold_state_dict`, so there is one
folding code path; `format.save` validates what they write.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import format as wformat
from .arch import Arch, build_arch
from .errors import ModelFileNotFoundError, ModelFormatError, StateDictError
from .importers import SHOWN_KEYS, STANDARD_WIDTHS, fold_bn
from .importers import timm as timm_import
from .labels import check_labels
from .torch_model import MobileNetV2



# ---- the torchvision layout -------------------------------------------------

def conv_bn_pairs(arch: Arch) -> list[tuple[str, str, str | None]]:
    """(file prefix, torch conv prefix, torch BN prefix or None) for every layer, in order."""
    pairs = [("stem", "features.0.0", "features.0.1")]
    for i, b in enumerate(arch.blocks):
        f, t = f"blocks.{i}.", f"features.{i + 1}.conv."
        convs = (["expand"] if b.has_expand else []) + ["depthwise"]
        pairs += [(f + name, f"{t}{j}.0", f"{t}{j}.1") for j, name in enumerate(convs)]
        pairs.append((f + "project", f"{t}{len(convs)}", f"{t}{len(convs) + 1}"))
    pairs.append(("head", f"features.{len(arch.blocks) + 1}.0", f"features.{len(arch.blocks) + 1}.1"))
    pairs.append(("classifier", "classifier.1", None))
    return pairs


def torch_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """torchvision's state_dict keys and shapes for `arch`, without `num_batches_tracked`."""
    fmt = wformat.expected_shapes(arch)
    shapes = {}
    for name, conv, bn in conv_bn_pairs(arch):
        w = fmt[name + ".weight"]
        if bn is None:
            shapes[conv + ".weight"], shapes[conv + ".bias"] = w, fmt[name + ".bias"]
            continue
        # torch stores pointwise (out, in) as (out, in, 1, 1) and depthwise (C, 3, 3) as (C, 1, 3, 3).
        shapes[conv + ".weight"] = {2: w + (1, 1), 3: (w[0], 1) + w[1:], 4: w}[len(w)]
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{p}"] = (w[0],)
    return shapes


def _is_counter(key: str) -> bool:
    # BN's batch counter carries no weights, and old checkpoints lack it: optional.
    return key.endswith(".num_batches_tracked")


def _check_keys(state_dict: Mapping, expected: dict) -> None:
    keys = [k for k in state_dict if not _is_counter(k)]
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in keys if k not in expected]
    if missing or unexpected:
        hint = " (keys start with 'module.': strip that prefix)" if keys and all(
            k.startswith("module.") for k in keys) else ""
        raise StateDictError(
            f"state dict does not match torchvision mobilenet_v2{hint}: {len(missing)} missing keys "
            f"{missing[:SHOWN_KEYS]}, {len(unexpected)} unexpected keys {unexpected[:SHOWN_KEYS]}")


def _shape(value) -> tuple[int, ...]:
    return tuple(np.shape(value))  # tensors and arrays alike, printed as a plain tuple


def _fits(state_dict: Mapping, expected: dict) -> bool:
    return all(_shape(state_dict[k]) == s for k, s in expected.items())


def _check_shapes(state_dict: Mapping, arch: Arch) -> None:
    expected = torch_shapes(arch)
    _check_keys(state_dict, expected)
    for key, shape in expected.items():
        got = _shape(state_dict[key])
        if got != shape:
            fits = [w for w in STANDARD_WIDTHS if w != arch.width_mult and
                    _fits(state_dict, torch_shapes(build_arch(w, arch.num_classes)))]
            hint = f"; the shapes fit width_mult={fits[0]}" if fits else ""
            raise StateDictError(f"{key}: expected shape {shape} for width_mult={arch.width_mult}, "
                                 f"got {got}{hint}")


# ---- folding ----------------------------------------------------------------

def _f64(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def _classifier_rows(state_dict: Mapping) -> int:
    """The class count the classifier implies; 1000 when it is missing, for the key check to report."""
    shape = _shape(state_dict.get("classifier.1.weight", ()))
    return shape[0] if len(shape) == 2 else 1000


def _fold_bn(w: np.ndarray, state_dict: Mapping, bn: str, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """`fold_bn` with the state dict's BN parameters under the prefix `bn`."""
    return fold_bn(w, *(_f64(state_dict[f"{bn}.{p}"]) for p in ("weight", "bias", "running_mean", "running_var")), eps)


def fold_state_dict(state_dict: Mapping, width_mult: float = 1.0, num_classes: int | None = None,
                    eps: float = 1e-5, dtype=np.float32) -> dict[str, np.ndarray]:
    """BN-folded arrays in the file's layouts from a torchvision mobilenet_v2 state dict.

    Folding is done in float64 and cast to `dtype` once, so float64 output is
    exact up to rounding. `num_classes` defaults to the classifier's rows.
    """
    arch = build_arch(width_mult, _classifier_rows(state_dict) if num_classes is None else num_classes)
    _check_shapes(state_dict, arch)
    shapes = wformat.expected_shapes(arch)
    arrays = {}
    for name, conv, bn in conv_bn_pairs(arch):
        w = _f64(state_dict[conv + ".weight"])
        w, b = (w, _f64(state_dict[conv + ".bias"])) if bn is None else _fold_bn(w, state_dict, bn, eps)
        # torch's (out, in, 1, 1) and (C, 1, 3, 3) become the file's (out, in) and (C, 3, 3).
        arrays[name + ".weight"] = w.reshape(shapes[name + ".weight"]).astype(dtype)
        arrays[name + ".bias"] = b.astype(dtype)
    return arrays


def to_arrays(model: MobileNetV2, dtype=np.float32) -> dict[str, np.ndarray]:
    """Folded arrays of one of this package's torch models."""
    return fold_state_dict(model.state_dict(), model.arch.width_mult, model.arch.num_classes,
                           model.eps, dtype)


# ---- writing ----------------------------------------------------------------

def _save(out, arrays: dict, arch: Arch, source: dict, labels=None, size=(224, 224),
          padding: str = "torch") -> str:
    check_labels(labels, arch.num_classes)
    meta = {"width_mult": arch.width_mult, "num_classes": arch.num_classes,
            "input_size": [int(size[0]), int(size[1])], "padding": padding,
            "preprocess": wformat.TORCHVISION_PREPROCESS, "labels": labels, "source": source}
    return wformat.save(out, arrays, meta)


def write_model(model: MobileNetV2, out, source: dict, labels=None, size=(224, 224)) -> str:
    """Fold a torch model and write it, with torchvision preprocessing and the model's padding."""
    return _save(out, to_arrays(model), model.arch, source, labels, size, model.padding)


def _load_checkpoint(path: str) -> Mapping:
    if not os.path.isfile(path):
        raise ModelFileNotFoundError(f"PyTorch checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load of a foreign file fails with any of a dozen types
        raise ModelFormatError(f"{path} is not a PyTorch checkpoint that torch.load(weights_only=True) "
                               f"reads: {type(e).__name__}: {e}") from None


def _state_dict(src) -> Mapping:
    """A state dict from a .pth path, a `{"state_dict": ...}` checkpoint, a module or a state dict."""
    if isinstance(src, nn.Module):
        return src.state_dict()
    obj = _load_checkpoint(os.fspath(src)) if isinstance(src, (str, os.PathLike)) else src
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ModelFormatError(f"expected a state dict (a mapping of tensors), got {type(obj).__name__}")
    return obj


def export_from_torch(src, out, width_mult: float | None = None, num_classes: int | None = None,
                      labels=None) -> str:
    """Write a weight file from torchvision mobilenet_v2 or timm mobilenetv2_* weights (path, checkpoint,
    state dict or module); `width_mult` None: detected from the shapes."""
    state_dict = _state_dict(src)
    rekeyed = timm_import.to_torchvision(state_dict)  # None: torchvision's keys; StateDictError: neither layout
    layout = "torchvision" if rekeyed is None else "timm"
    state_dict = state_dict if rekeyed is None else rekeyed
    width_mult = timm_import.resolve_width(state_dict, width_mult, layout)
    arrays = fold_state_dict(state_dict, width_mult, num_classes)
    arch = build_arch(width_mult, arrays["classifier.bias"].shape[0])
    name = os.path.basename(os.fspath(src)) if isinstance(src, (str, os.PathLike)) else None
    return _save(out, arrays, arch, {"kind": "torch" if rekeyed is None else "timm", "file": name}, labels)


# ---- random calibrated models -----------------------------------------------

def _randomize(model: MobileNetV2) -> None:
    """Random BN affine parameters, so folding changes every channel differently."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0, 0.2)
    # torchvision's 0.01 classifier init gives near-equal logits; 1/sqrt(fan_in) spreads them.
    nn.init.normal_(model.classifier[1].weight, 0, model.arch.last ** -0.5)
    nn.init.normal_(model.classifier[1].bias, 0, 0.1)


@torch.no_grad()
def _calibrate(model: MobileNetV2, size, batches: int, batch: int, progress: bool) -> None:
    """Running statistics as cumulative averages over random normalised inputs (momentum=None)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in tqdm(range(batches), desc="calibrating BatchNorm", disable=not progress):
        model.features(torch.randn(batch, 3, *size))  # every BN is in `features`
    for m in bns:
        m.momentum = 0.1  # torchvision's default, for anyone who trains it further
    model.eval()


def random_model(seed: int, width_mult: float = 1.0, num_classes: int = 1000, size=(224, 224),
                 calib_batches: int = 8, progress: bool = True) -> MobileNetV2:
    """A torch MobileNetV2 (eval mode) with random weights and BN statistics calibrated on noise.

    Deterministic for a seed; the global torch RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MobileNetV2(width_mult, num_classes)
        _randomize(model)
        _calibrate(model, size, calib_batches, 2, progress)
    return model


def export_random(out, seed: int = 0, width_mult: float = 1.0, size=(224, 224), num_classes: int = 1000,
                  progress: bool = True, labels=None) -> str:
    """Write a random calibrated model (see `random_model`) as a weight file."""
    check_labels(labels, num_classes)  # before the calibration, which takes seconds
    wformat.check_destination(out)
    model = random_model(seed, width_mult, num_classes, size, progress=progress)
    return write_model(model, out, {"kind": "random", "seed": seed}, labels=labels, size=size)
