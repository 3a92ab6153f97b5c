"""mbv2-engine: a fused-kernel MobileNetV2 inference engine.

    from mbv2_engine import Engine
    logits = Engine.load("mbv2.npz").run("cat.jpg")
"""
from .engine import Engine, Plan, Prediction
from .errors import (DeviceError, ImageNotFoundError, InputError, Mbv2Error, ModelFileNotFoundError,
                     ModelFormatError, StateDictError, UnsupportedVersionError)

__version__ = "0.1.0"
__all__ = ["Engine", "Plan", "Prediction", "Mbv2Error", "ModelFileNotFoundError", "ModelFormatError",
           "UnsupportedVersionError", "InputError", "ImageNotFoundError", "StateDictError", "DeviceError"]
