"""Turning an RGB picture into the normalised float batch the network takes.

The weight file's metadata says how (docs/format.md, `preprocess`): resize so
the crop covers `crop_fraction` of the picture, centre-crop the input size,
scale to [0, 1], subtract the mean and divide by the std per channel.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .arch import MIN_INPUT
from .errors import ImageNotFoundError, InputError


def to_rgb_array(image) -> np.ndarray:
    """A path, PIL image or uint8 HxWx3 array as a uint8 HxWx3 array, checked."""
    if isinstance(image, (str, Path)):
        image = _open(Path(image))
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected an image (path, PIL image or uint8 HxWx3 array) or a float32 "
                         f"(N, 3, H, W) batch, got {type(image).__name__}")
    _check_rgb(image)
    return image


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise ImageNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot decode image {path}: {e}") from e


def _check_rgb(a: np.ndarray) -> None:
    if a.dtype != np.uint8:
        raise InputError(f"an image array must be uint8 HxWx3 RGB, got dtype {a.dtype}; a float input "
                         f"must be an already normalised (N, 3, H, W) float32 batch")
    if a.ndim != 3 or a.shape[2] != 3:
        got = f"{a.shape[2]} channels" if a.ndim == 3 else f"shape {a.shape}"
        raise InputError(f"an image array must be HxWx3 RGB, got {got}")
    if min(a.shape[:2]) < MIN_INPUT:
        raise InputError(f"image is {a.shape[0]}x{a.shape[1]}, smaller than the minimum "
                         f"{MIN_INPUT}x{MIN_INPUT}")


def preprocess(rgb: np.ndarray, size: tuple[int, int], crop_fraction: float,
               mean, std) -> np.ndarray:
    """uint8 HxWx3 -> float32 (1, 3, size[0], size[1]), as the weight file says."""
    h, w = rgb.shape[:2]
    out_h, out_w = size
    # Smallest scale at which the crop covers crop_fraction of the picture in both
    # directions; for a square crop this is torchvision's Resize(round(224 / 0.875)).
    scale = max(out_h / crop_fraction / h, out_w / crop_fraction / w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    crop = resized[top:top + out_h, left:left + out_w].astype(np.float32) / 255.0
    x = (crop - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
