"""What every importer hands on: an `ImportedModel`, written by `write_imported`.

An importer (keras.py, onnx.py, tflite.py, and the PyTorch path in export.py)
reads another framework's file, matches its layers to MobileNetV2's, folds
BatchNorm and returns the weights in the weight file's layouts
(docs/format.md) together with what the metadata must say: the padding the
source used, the preprocessing, the hidden Dense layers of a transfer-learning
head and the activation after the classifier. `write_imported` is the one
place that turns that into a file, so every importer writes the same format.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from .. import format as wformat
from ..arch import Arch, build_arch
from ..errors import Mbv2Error, ModelFormatError, OutOfMemoryError
from ..labels import check_labels

STANDARD_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
SHOWN_KEYS = 5  # how many missing or unknown keys an error message lists
KERAS_PREPROCESS = {"crop_fraction": 0.875, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # [-1, 1]
HIDDEN_ACTIVATIONS = ("relu", "relu6", "none")
OUTPUT_ACTIVATIONS = ("none", "softmax", "sigmoid")


class ModelImportError(ModelFormatError):
    """A model file from another framework that the importer cannot map onto MobileNetV2."""


@dataclass
class ImportedModel:
    """A MobileNetV2 read from another framework, in the weight file's terms.

    arrays:     BN-folded weights named and shaped as docs/format.md lists them
                (float32 or float64; written as float32), plus `hidden.i.weight`
                (units, inputs) and `hidden.i.bias` for each hidden Dense layer.
    padding:    "torch", "same", or the five stride-2 3x3 convs' rules in
                network order (the stem, then blocks 1, 3, 6 and 13), each
                "same" or fixed zero rows/columns [top, bottom, left, right].
    hidden:     the Dense layers between the pooling and the classifier, in
                order: [{"units": N, "activation": "relu" | "relu6" | "none"}].
    activation: what the source applies after the classifier ("none",
                "softmax", "sigmoid"); `Engine.run` returns the values before
                it and `Engine.classify` applies it.
    """

    arrays: dict[str, np.ndarray]
    width_mult: float
    num_classes: int
    input_size: tuple[int, int]
    padding: str | list
    preprocess: dict
    source: dict
    hidden: list[dict] = field(default_factory=list)
    activation: str = "none"

    @property
    def arch(self) -> Arch:
        return build_arch(self.width_mult, self.num_classes)


@contextlib.contextmanager
def reading(name: str, kind: str):
    """Whatever a parser of another framework's file raises on a broken or hostile one, as a
    ModelImportError naming the file. The importers' own refusals pass through as they are.

    The parsers (zipfile, h5py, protobuf, flatbuffers, numpy) raise OSError, ValueError,
    KeyError, IndexError, struct.error, NotImplementedError (an unknown zip version) and more
    on bad input; the fuzz target (tests/fuzz/fuzz_python.py) found several. Each means that
    the file cannot be read as that kind of model, never a defect to pass on as a traceback.
    """
    try:
        yield
    except Mbv2Error:
        raise
    except MemoryError:
        raise OutOfMemoryError(f"out of memory reading {name} as a {kind} model") from None
    except Exception as e:  # noqa: BLE001 - see above
        raise ModelImportError(f"{name} cannot be read as a {kind} model: {type(e).__name__}: {e}") from None


def fold_bn(w: np.ndarray, gamma, beta, mean, var, eps: float, bias=None) -> tuple[np.ndarray, np.ndarray]:
    """BN folded into the conv before it, in float64, on the first axis of w (output channels).

    w' = w * gamma / sqrt(var + eps), b' = beta + (bias - mean) * gamma / sqrt(var + eps).
    """
    gamma, beta, mean, var = (np.asarray(a, np.float64) for a in (gamma, beta, mean, var))
    scale = gamma / np.sqrt(var + eps)
    b = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    w = np.asarray(w, np.float64)
    return w * scale.reshape((-1,) + (1,) * (w.ndim - 1)), beta + (b - mean) * scale


def width_from_stem(stem_channels: int, block_channels: list[int] | None = None) -> float:
    """The standard width multiplier whose table gives these channel counts (the stem's, then the blocks')."""
    for w in STANDARD_WIDTHS:
        arch = build_arch(w, 1)
        if arch.stem == stem_channels and (block_channels is None or
                                           [b.cout for b in arch.blocks[:len(block_channels)]] == block_channels):
            return w
    raise ModelImportError(f"a stem of {stem_channels} channels (blocks {block_channels}) fits none of "
                           f"MobileNetV2's standard widths {STANDARD_WIDTHS}")


def write_imported(model: ImportedModel, out, labels=None) -> str:
    """Write an imported model as a weight file; `format.save` validates it before writing."""
    check_labels(labels, model.num_classes)
    meta = {"width_mult": model.width_mult, "num_classes": model.num_classes,
            "input_size": [int(model.input_size[0]), int(model.input_size[1])], "padding": model.padding,
            "preprocess": model.preprocess, "labels": labels, "hidden": model.hidden,
            "activation": model.activation, "source": model.source}
    return wformat.save(out, model.arrays, meta)
