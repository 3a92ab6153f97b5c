"""One error family for everything the engine refuses.

Every exception the package raises on bad input derives from `Mbv2Error`, and
also from the builtin a caller would naturally catch (ValueError,
FileNotFoundError, ...), so both `except Mbv2Error` and `except ValueError` work.
"""


class Mbv2Error(Exception):
    """Base class of every error mbv2-engine raises on purpose."""


class ModelFileNotFoundError(Mbv2Error, FileNotFoundError):
    """The weight file (or an image path) does not exist."""


class ModelFormatError(Mbv2Error, ValueError):
    """The weight file is not a valid mbv2-engine .npz (see docs/format.md)."""


class UnsupportedVersionError(ModelFormatError):
    """The weight file was written by a newer format version than this loader knows."""


class InputError(Mbv2Error, ValueError):
    """An image or batch handed to the engine has the wrong type, shape, dtype or size."""


class StateDictError(Mbv2Error, ValueError):
    """A PyTorch state dict does not match torchvision's mobilenet_v2 keys and shapes."""


class DeviceError(Mbv2Error, RuntimeError):
    """The requested device, ISA or dtype is not available on this machine."""


class ImageNotFoundError(InputError, FileNotFoundError):
    """An image path handed to the engine does not exist."""
