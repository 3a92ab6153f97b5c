"""Turning an RGB picture into the normalised float batch the network takes.

The weight file's metadata says how (docs/format.md, `preprocess`): resize so
the crop covers `crop_fraction` of the picture, centre-crop the input size,
scale to [0, 1], subtract the mean and divide by the std per channel.

The resize and the crop are one step: Pillow resamples only the crop's box of
the source (`resize(size, box=...)`), with the same filter and scale as a
resize of the whole picture followed by a crop, so a huge or extreme-aspect
picture costs no more than its crop (a 1,000,000x32 strip would otherwise be
blown up to 8,000,000x256 first). `load_image` also asks the JPEG decoder for a
DCT-domain downscale (`Image.draft`) when the file is at least twice the size
the resize needs, which makes decoding a large JPEG several times cheaper.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .arch import MIN_INPUT
from .errors import ImageNotFoundError, InputError, OutOfMemoryError

# Integer modes Pillow's convert("RGB") clips at 255 (a 16-bit picture would come out all white).
_WIDE_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb_array(image) -> np.ndarray:
    """A path, PIL image or uint8 HxWx3 array as a uint8 HxWx3 array, checked."""
    if isinstance(image, (str, Path)):
        image = _open(Path(image))
    if isinstance(image, Image.Image):
        pil = image  # decoded here: a lazily opened image reads its file only now
        image = _decoded(lambda: np.asarray(to_rgb_image(pil)), "the PIL image")
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected an image (path, PIL image or uint8 HxWx3 array) or a float32 "
                         f"(N, 3, H, W) batch, got {type(image).__name__}")
    _check_rgb(image)
    return image


def to_rgb_image(img: Image.Image) -> Image.Image:
    """A PIL image in mode RGB. 16-bit grayscale (I;16*, and I holding values above 255) is scaled
    to 8 bits (v / 257, so 65535 -> 255) rather than clipped as Pillow's convert does."""
    if img.mode in _WIDE_GRAY:
        a = np.asarray(img)
        if img.mode != "I" or a.size and int(a.max()) > 255:
            a = np.clip(a.astype(np.float32), 0, 65535) / 257.0
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), "RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _decoded(decode, what: str):
    """decode(), with whatever Pillow raises on a hostile or broken picture as an InputError."""
    try:
        return decode()
    except MemoryError:
        raise OutOfMemoryError(f"out of memory decoding {what}") from None
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, ValueError,
        # TypeError, struct.error and DecompressionBombError on bad input: all mean "cannot decode"
        reason = ("it exceeds Pillow's decompression-bomb limit of "
                  f"{Image.MAX_IMAGE_PIXELS} pixels" if isinstance(e, Image.DecompressionBombError) else e)
        raise InputError(f"cannot decode {what}: {reason}") from None


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageNotFoundError(f"image file not found: {path}")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise InputError(f"cannot read image {path}: it is {kind}")

    def decode():
        with Image.open(path) as img:
            img.load()
            return to_rgb_image(img)

    return _decoded(decode, f"image {path}")


def _check_rgb(a: np.ndarray) -> None:
    if a.dtype != np.uint8:
        raise InputError(f"an image array must be uint8 HxWx3 RGB, got dtype {a.dtype}; a float input "
                         f"must be an already normalised (N, 3, H, W) float32 batch")
    if a.ndim != 3 or a.shape[2] != 3:
        got = f"{a.shape[2]} channels" if a.ndim == 3 else f"shape {a.shape}"
        raise InputError(f"an image array must be HxWx3 RGB, got {got}")
    _check_size(a.shape[0], a.shape[1])


def _check_size(h: int, w: int) -> None:
    if min(h, w) < MIN_INPUT:
        raise InputError(f"image is {h}x{w}, smaller than the minimum {MIN_INPUT}x{MIN_INPUT}")


def resized_size(h: int, w: int, size: tuple[int, int], crop_fraction: float) -> tuple[int, int]:
    """(height, width) the whole picture is resized to before the centre crop of `size`."""
    out_h, out_w = size
    # Smallest scale at which the crop covers crop_fraction of the picture in both
    # directions; for a square crop this is torchvision's Resize(round(224 / 0.875)).
    scale = max(out_h / crop_fraction / h, out_w / crop_fraction / w)
    return max(out_h, round(h * scale)), max(out_w, round(w * scale))


def crop_box(h: int, w: int, size: tuple[int, int], crop_fraction: float) -> tuple[float, float, float, float]:
    """The centre crop as a box (left, top, right, bottom) in the source picture's coordinates:
    resampling that box to `size` is the resize to `resized_size` followed by the crop."""
    out_h, out_w = size
    new_h, new_w = resized_size(h, w, size, crop_fraction)
    sy, sx = h / new_h, w / new_w  # source pixels per resized pixel
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    return left * sx, top * sy, (left + out_w) * sx, (top + out_h) * sy


# The whole picture is resized and then cropped (torchvision's Resize + CenterCrop, bit for
# bit) unless that resize would hold more than this many times the crop's pixels: a normal
# photo's is 1.3 to 4 times (a 3:1 panorama about 3.9), a 1,000,000x32 strip's 36,000 times
# (3.8 GB). Those are resampled from the crop's box alone, within one grey level of it.
MAX_RESIZE_OVER_CROP = 8


def resize_crop(img: Image.Image, size: tuple[int, int], crop_fraction: float) -> np.ndarray:
    """A PIL image (any mode) -> uint8 size[0] x size[1] x 3: the resize, then the centre crop."""
    w, h = img.size
    _check_size(h, w)
    out_h, out_w = size
    new_h, new_w = resized_size(h, w, size, crop_fraction)
    if new_h * new_w <= MAX_RESIZE_OVER_CROP * out_h * out_w:
        resized = np.asarray(to_rgb_image(img).resize((new_w, new_h), Image.BILINEAR))
        top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
        return resized[top:top + out_h, left:left + out_w]
    x0, y0, x1, y1 = crop_box(h, w, size, crop_fraction)
    # Cut the box out first, with a margin the bilinear filter's support (one source pixel per
    # output pixel when shrinking) cannot reach past, so the mode conversion touches only that.
    margin_x = math.ceil(max(1.0, (x1 - x0) / out_w)) + 2
    margin_y = math.ceil(max(1.0, (y1 - y0) / out_h)) + 2
    cx0, cy0 = max(0, math.floor(x0) - margin_x), max(0, math.floor(y0) - margin_y)
    cx1, cy1 = min(w, math.ceil(x1) + margin_x), min(h, math.ceil(y1) + margin_y)
    if (cx0, cy0, cx1, cy1) != (0, 0, w, h):
        img = img.crop((cx0, cy0, cx1, cy1))
    rgb = to_rgb_image(img)
    out = rgb.resize((out_w, out_h), Image.BILINEAR, box=(x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0))
    return np.asarray(out)


def normalise(crop: np.ndarray, mean, std) -> np.ndarray:
    """uint8 HxWx3 -> float32 (3, H, W): scaled to [0, 1], minus the mean, over the std.

    A uint8 channel has 256 values: each is computed once, in float32 as
    (v / 255 - mean) / std, and looked up, which gives the same bits as the
    arithmetic on the whole crop at a fraction of the cost."""
    lut = _lut(tuple(float(m) for m in mean), tuple(float(s) for s in std))
    out = np.empty((3,) + crop.shape[:2], np.float32)
    for c in range(3):
        np.take(lut[c], crop[:, :, c], out=out[c])
    return out


@functools.lru_cache(maxsize=16)
def _lut(mean: tuple, std: tuple) -> np.ndarray:
    v = np.arange(256, dtype=np.float32)[:, None] / 255.0
    return np.ascontiguousarray(((v - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).T)


def preprocess(rgb: np.ndarray, size: tuple[int, int], crop_fraction: float,
               mean, std) -> np.ndarray:
    """uint8 HxWx3 -> float32 (1, 3, size[0], size[1]), as the weight file says."""
    return normalise(resize_crop(Image.fromarray(rgb), size, crop_fraction), mean, std)[None]


def load_image(path, size: tuple[int, int], crop_fraction: float, mean, std, draft: bool = True) -> np.ndarray:
    """Decode an image file and preprocess it: float32 (3, size[0], size[1]).

    With `draft`, a JPEG at least twice as large as the resize needs is decoded
    at 1/2, 1/4 or 1/8 scale in the DCT domain (never below that size), then
    resized as usual. Raises what Pillow raises for an unreadable file
    (OSError, PIL.UnidentifiedImageError, Image.DecompressionBombError, ...), and
    InputError for a picture smaller than the network's minimum.
    """
    with Image.open(path) as img:
        if draft and img.format == "JPEG":
            w, h = img.size
            if min(h, w) >= MIN_INPUT:
                new_h, new_w = resized_size(h, w, size, crop_fraction)
                img.draft("RGB", (new_w, new_h))
        img.load()
        crop = resize_crop(img, size, crop_fraction)
    return normalise(crop, mean, std)
