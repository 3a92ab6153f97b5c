"""A procedurally drawn image set: ten classes of shapes, no download, no data files.

`make_dataset(n, seed, size)` draws `n` RGB pictures of one shape each, with a
random colour, size, position and rotation on a random gradient background
with pixel noise. Picture `i` of a seed depends on `(seed, i)` only, so a
dataset is the same on every machine and a longer one starts with a shorter
one. The shipped model (`mbv2_engine/data/shapes.npz`) was trained on such
pictures by `examples/train_shapes.py`; the demo and the tests judge it on a
seed the training never saw (`HELD_OUT_SEED`).

Shapes are drawn as a mask at 4x the size and box-filtered down, so their
edges are antialiased, then laid over the background in the shape's colour.
They stay inside the centre crop (`crop_fraction` 0.875) the preprocessing
keeps, whatever their size and rotation.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .format import TORCHVISION_PREPROCESS
from .preprocess import preprocess

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "frame", "stripes", "crescent", "arrow")
TRAIN_SEED = 0  # what examples/train_shapes.py trains on
HELD_OUT_SEED = 20240613  # what the demo and the tests judge the shipped model on; never trained on
SIZE = 64
SUPERSAMPLE = 4


def _polygon(cx, cy, pts, angle, scale):
    """`pts` (unit coordinates) rotated by `angle`, scaled and moved to (cx, cy)."""
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + scale * (x * c - y * s), cy + scale * (x * s + y * c)) for x, y in pts]


def _regular(n: int, phase: float = 0.0, radius: float = 1.0):
    return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


_STAR = [p for k in range(5) for p in (_regular(5, -math.pi / 2)[k],
                                       _regular(5, -math.pi / 2 + math.pi / 5, 0.42)[k])]
_CROSS = [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1),
          (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)]
_ARROW = [(-1, -0.22), (0.15, -0.22), (0.15, -0.62), (1, 0), (0.15, 0.62), (0.15, 0.22), (-1, 0.22)]


def _draw_mask(d: ImageDraw.ImageDraw, name: str, cx: float, cy: float, r: float, angle: float,
               rng: np.random.Generator) -> None:
    """Draw class `name` (255 = shape, 0 = hole) centred at (cx, cy), reaching at most `r` from it."""
    def poly(pts, scale=r, fill=255):
        d.polygon(_polygon(cx, cy, pts, angle, scale), fill=fill)

    def disc(x, y, rad, fill=255):
        d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    if name == "circle":
        disc(cx, cy, r)
    elif name == "square":
        poly(_regular(4, math.pi / 4), r)
    elif name == "triangle":
        poly(_regular(3, -math.pi / 2), r)
    elif name == "star":
        poly(_STAR)
    elif name == "cross":
        poly(_CROSS, r / math.sqrt(1 + 0.3 ** 2))  # its corners reach r
    elif name == "ring":
        disc(cx, cy, r)
        disc(cx, cy, r * rng.uniform(0.5, 0.68), 0)
    elif name == "frame":
        poly(_regular(4, math.pi / 4), r)
        poly(_regular(4, math.pi / 4), r * rng.uniform(0.5, 0.68), 0)
    elif name == "stripes":
        half = r / math.sqrt(2)  # three bars inside the square that fits the circle of radius r
        for k in (-1, 0, 1):
            y0 = k * 0.66
            poly([(-1, y0 - 0.17), (1, y0 - 0.17), (1, y0 + 0.17), (-1, y0 + 0.17)], half)
    elif name == "crescent":
        disc(cx, cy, r)
        off = r * rng.uniform(0.4, 0.55)
        disc(cx + off * math.cos(angle), cy + off * math.sin(angle), r * 0.88, 0)
    elif name == "arrow":
        poly(_ARROW)
    else:
        raise ValueError(f"unknown shape {name!r}; the classes are {CLASSES}")


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _luma(c: np.ndarray) -> float:
    return float(c @ np.array([0.299, 0.587, 0.114]))


def draw(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One uint8 (size, size, 3) picture of class `label`, all its randomness from `rng`."""
    big = size * SUPERSAMPLE
    # Centre and reach keep the shape inside the centre 0.875 crop with a margin.
    r = rng.uniform(0.17, 0.29) * big
    cx, cy = rng.uniform(0.38, 0.62, 2) * big
    angle = rng.uniform(0, 2 * math.pi)
    mask_img = Image.new("L", (big, big), 0)
    _draw_mask(ImageDraw.Draw(mask_img), CLASSES[label], cx, cy, r, angle, rng)
    mask = np.asarray(mask_img.resize((size, size), Image.BOX), np.float32)[..., None] / 255.0

    # Background: a linear gradient between two colours in a random direction.
    bg0, bg1 = _colour(rng), _colour(rng)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    t = np.clip(0.5 + (xx * math.cos(theta) + yy * math.sin(theta)) * rng.uniform(0, 1.2), 0, 1)[..., None]
    bg = bg0 * (1 - t) + bg1 * t
    # The shape's colour differs from the background's mean brightness, so it is always visible.
    mean_luma = _luma(bg.reshape(-1, 3).mean(0))
    for _ in range(100):
        fg = _colour(rng)
        if abs(_luma(fg) - mean_luma) > 60:
            break
    else:
        fg = np.full(3, 255.0 if mean_luma < 128 else 0.0)
    img = bg * (1 - mask) + fg * mask
    img += rng.normal(0, rng.uniform(0, 14), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_dataset(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size, 3), labels int64 (n,)): class `i % 10` for picture `i`.

    Picture `i` is drawn from `np.random.default_rng([seed, i])` alone.
    """
    labels = np.arange(n, dtype=np.int64) % len(CLASSES)
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        images[i] = draw(int(labels[i]), np.random.default_rng([seed, i]), size)
    return images, labels


def to_batch(images: np.ndarray, input_size=(SIZE, SIZE), pp: dict = TORCHVISION_PREPROCESS) -> np.ndarray:
    """float32 (n, 3, H, W): each picture preprocessed exactly as `Engine.preprocess` does it."""
    return np.concatenate([preprocess(img, input_size, pp["crop_fraction"], pp["mean"], pp["std"])
                           for img in images])
