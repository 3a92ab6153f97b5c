"""Class names for a weight file's `labels`: a text file of one name a line, or the ImageNet-1k names.

`imagenet` is the 1000 ILSVRC-2012 class names in the standard class order (the WordNet
synonyms of each synset, as torchvision's and Keras's ImageNet models number them); they
ship with the package in data/imagenet1k.txt.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError

IMAGENET = "imagenet"
IMAGENET_FILE = Path(__file__).with_name("data") / "imagenet1k.txt"


def read_labels(source) -> list[str]:
    """The names in `source` (a path, or "imagenet"), one a line; a final newline is optional."""
    path = IMAGENET_FILE if str(source) == IMAGENET else Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"labels file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"labels file {str(path)!r} cannot be read as UTF-8 text: {e}") from None
    names = text.splitlines()
    empty = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if not names or empty:
        raise InputError(f"labels file {str(path)!r} needs one non-empty name a line; "
                         f"{'it is empty' if not names else f'line {empty[0]} is blank'}")
    return names


def check_labels(labels, num_classes: int) -> None:
    """A label list must name every class, no more and no fewer."""
    if labels is not None and len(labels) != num_classes:
        raise InputError(f"{len(labels)} labels for a model of {num_classes} classes: "
                         "give exactly one name per class")
