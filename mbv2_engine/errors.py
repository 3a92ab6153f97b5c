"""One error family for everything the engine refuses.

Every exception the package raises on bad input derives from `Mbv2Error`, and
also from the builtin a caller would naturally catch (ValueError,
FileNotFoundError, ...), so both `except Mbv2Error` and `except ValueError` work.

The C++ core reports each failure as an `mbv2::Error` with a status
(csrc/core/status.h); the bindings raise the class `STATUS_ERRORS` names for
that status, so the kind of an error is decided once, where it happens.
"""


class Mbv2Error(Exception):
    """Base class of every error mbv2-engine raises on purpose."""


class ModelFileNotFoundError(Mbv2Error, FileNotFoundError):
    """The weight file (or an image path) does not exist."""


class ModelReadError(Mbv2Error, OSError):
    """The weight file exists but could not be read (permissions, an I/O error)."""


class ModelFormatError(Mbv2Error, ValueError):
    """The weight file is not a valid mbv2-engine .npz (see docs/format.md)."""


class UnsupportedVersionError(ModelFormatError):
    """The weight file was written by a newer format version than this loader knows."""


class InputError(Mbv2Error, ValueError):
    """An image, batch or argument handed to the engine has the wrong type, shape, dtype, size or value."""


class StateDictError(Mbv2Error, ValueError):
    """A PyTorch state dict does not match torchvision's mobilenet_v2 keys and shapes."""


class DeviceError(Mbv2Error, RuntimeError):
    """The requested device, ISA or dtype is not available on this machine."""


class OutOfMemoryError(Mbv2Error, MemoryError):
    """The engine could not allocate what a valid request needs."""


class InternalError(Mbv2Error, RuntimeError):
    """An invariant of the engine itself did not hold: a bug, please report it."""


class ImageNotFoundError(InputError, FileNotFoundError):
    """An image path handed to the engine does not exist."""


# mbv2::Status (by its status_string) -> the class raised for it. The C API
# returns the same statuses as MBV2_STATUS_* codes.
STATUS_ERRORS = {
    "invalid argument": InputError,
    "file not found": ModelFileNotFoundError,
    "i/o error": ModelReadError,
    "invalid format": ModelFormatError,
    "unsupported version": UnsupportedVersionError,
    "unsupported isa": DeviceError,
    "out of memory": OutOfMemoryError,
    "internal error": InternalError,
}
