"""Model files of the int8 cases: the engine's quantized .npz, ONNX Runtime's QDQ model, an int8 .tflite.

Every int8 provider starts from the workload's float weights and its calibration
inputs (`Workload.calibration`: CALIBRATION_SAMPLES random-normal preprocessed
images from their own seed, never the timed inputs), so the int8 engines differ
only in their quantizers and kernels:

- the engine: `mbv2_engine.quantize.quantize` with its default method;
- ONNX Runtime and OpenVINO: one QDQ model from `onnxruntime.quantization.quantize_static`
  on the float provider's ONNX file (after ORT's `quant_pre_process`, as its docs ask),
  per channel, S8S8 (QInt8 activations and weights, ORT's defaults for QDQ; see `QDQ_SETTINGS`),
  calibrated with ORT's default MinMax over the same inputs;
- LiteRT: a .tflite written from the engine's quantized file (`tflite_writer.tflite_int8_model`),
  the same int8 weights and activation parameters; only the residual blocks' projections,
  which the engine fuses with the residual add, get a range of their own, observed on the same
  calibration inputs with the engine file's own method.

Each writer is idempotent and writes through a temporary name, so a file that exists is complete:
the memory probe (bench/peak_memory.py) finds them written and measures loading only.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

CALIBRATION_SEED = 1  # the timed inputs use providers.SEED (0)
CALIBRATION_SAMPLES = 32

# ORT's quantization guide: S8S8 in QDQ format is the default and "the first choice" for a balance of
# speed and accuracy; U8S8 matters for the QOperator format, and on x86 without VNNI (VPMADDUBSW can
# saturate, hence reduce_range). This CPU has AVX512-VNNI and AVX-VNNI, where the U8S8 saturation does
# not arise, so reduce_range stays off and S8S8 QDQ is what ORT recommends for it.
QDQ_SETTINGS = {"quant_format": "QDQ", "per_channel": True, "activation_type": "QInt8", "weight_type": "QInt8",
                "reduce_range": False, "calibrate_method": "MinMax"}


def calibration_inputs(size: int) -> np.ndarray:
    """The calibration batch (CALIBRATION_SAMPLES, 3, size, size): random normal, like the timed inputs."""
    return np.random.default_rng(CALIBRATION_SEED).standard_normal((CALIBRATION_SAMPLES, 3, size, size),
                                                                   dtype=np.float32)


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` then rename to `path`, unless `path` already exists."""
    if path.exists():
        return path
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- the engine ----------------------------------------------------------------------------------

def engine_int8_file(w) -> Path:
    """The workload's float .npz quantized by mbv2_engine.quantize on the calibration inputs."""
    def write(tmp: Path) -> None:
        from mbv2_engine.quantize import quantize  # here: a memory probe that finds the file imports nothing
        quantize(w.npz, tmp, w.calibration)
    return _atomic(w.dir / "weights-int8.npz", write)


# ---- ONNX Runtime's QDQ model --------------------------------------------------------------------

def qdq_file(w, onnx_file: Callable) -> Path:
    """quantize_static (QDQ_SETTINGS) of the float ONNX file `onnx_file(w)`, calibrated on w.calibration."""
    def write(tmp: Path) -> None:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quant_pre_process, quantize_static)
        src = onnx_file(w)
        batch = w.case.batch  # the exported file's batch is fixed: feed the calibration in its batches
        cal = w.calibration
        assert len(cal) % batch == 0, f"{len(cal)} calibration inputs do not split into batches of {batch}"

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.feeds = iter([{"x": cal[i:i + batch]} for i in range(0, len(cal), batch)])

            def get_next(self):
                return next(self.feeds, None)

        pre = tmp.with_name(tmp.stem + "-pre.onnx")
        s = QDQ_SETTINGS
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(src), str(pre))
                quantize_static(str(pre), str(tmp), Reader(), quant_format=getattr(QuantFormat, s["quant_format"]),
                                per_channel=s["per_channel"], reduce_range=s["reduce_range"],
                                activation_type=getattr(QuantType, s["activation_type"]),
                                weight_type=getattr(QuantType, s["weight_type"]),
                                calibrate_method=getattr(CalibrationMethod, s["calibrate_method"]))
        finally:
            root.setLevel(level)
            pre.unlink(missing_ok=True)
    return _atomic(w.dir / "model-qdq.onnx", write)


def openvino_precision(compiled) -> str:
    """The inference precision a compiled OpenVINO model resolved to ("bf16", "f32", "f16")."""
    prec = compiled.get_property("INFERENCE_PRECISION_HINT")
    name = getattr(prec, "get_type_name", lambda: str(prec))()
    return {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}.get(name, name)


# ---- the int8 .tflite ----------------------------------------------------------------------------

def project_params(w, arrays: dict, meta: dict) -> dict[int, tuple[float, int]]:
    """(scale, uint8 zero point) of each residual block's projection output before the add, observed
    on the calibration inputs (torch float32 hooks) and chosen with the quantized file's own method."""
    import torch

    from mbv2_engine.quantize import Observer, activation_params
    model = w.torch_model()
    blocks = [i for i, spec in enumerate(w.arch.blocks) if spec.residual]
    observers = {i: Observer(signed=True) for i in blocks}
    hooks = [model.features[i + 1].conv.register_forward_hook(
        lambda module, args, out, i=i: observers[i].add(out.permute(0, 2, 3, 1).numpy())) for i in blocks]
    try:
        with torch.inference_mode():
            for i in range(0, len(w.calibration), 8):
                model(torch.from_numpy(w.calibration[i:i + 8]))
    finally:
        for h in hooks:
            h.remove()
    method = meta["quantization"]["calibration"]["method"]
    return {i: activation_params(obs, method, relu6=False) for i, obs in observers.items()}


def tflite_int8_file(w) -> Path:
    """An int8 .tflite from the engine's quantized file (written first if needed)."""
    def write(tmp: Path) -> None:
        from tflite_writer import tflite_int8_model

        from mbv2_engine.quantize import load_quantized
        arrays, meta, arch = load_quantized(engine_int8_file(w))
        c = w.case
        tmp.write_bytes(tflite_int8_model(arrays, meta, arch, c.batch, c.size, c.size,
                                          project_params(w, arrays, meta)))
    return _atomic(w.dir / "model-int8.tflite", write)
