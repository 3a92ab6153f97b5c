"""Every refusal is a clear Mbv2Error subclass naming what was wrong; never a crash."""
import numpy as np
import pytest
from PIL import Image

from mbv2_engine import (DeviceError, Engine, ImageNotFoundError, InputError, Mbv2Error,
                         ModelFileNotFoundError)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="nope.npz"):
        Engine.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        Engine.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("shape, message", [
    ((64, 64, 4), "4 channels"),
    ((64, 64, 1), "1 channels"),
    ((64, 64), r"shape \(64, 64\)"),
    ((64, 64, 3, 1), r"shape \(64, 64, 3, 1\)"),
    ((31, 64, 3), "smaller than the minimum 32x32"),
])
def test_bad_image_shape(small_engine, shape, message):
    with pytest.raises(InputError, match=message):
        small_engine.run(np.zeros(shape, np.uint8))


def test_image_wrong_dtype(small_engine):
    with pytest.raises(InputError, match="uint8"):
        small_engine.run(np.zeros((64, 64, 3), np.int16))


def test_float_image_shaped_array_is_not_a_batch(small_engine):
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        small_engine.run(np.zeros((64, 64, 3), np.float32))


def test_missing_image_path(small_engine, tmp_path):
    with pytest.raises(ImageNotFoundError, match="missing.png"):
        small_engine.run(tmp_path / "missing.png")


def test_undecodable_image(small_engine, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="cannot decode"):
        small_engine.run(bad)


def test_small_pil_image(small_engine):
    with pytest.raises(InputError, match="smaller"):
        small_engine.run(Image.new("RGB", (20, 40)))


def _with(x: np.ndarray, index: tuple, value: float) -> np.ndarray:
    x[index] = value
    return x


@pytest.mark.parametrize("make, message", [
    (lambda: np.zeros((0, 3, 64, 64), np.float32), "empty"),
    (lambda: np.zeros((1, 3, 64, 64), np.float64), "float32"),
    (lambda: np.zeros((1, 4, 64, 64), np.float32), r"\(N, 3, H, W\)"),
    (lambda: np.zeros((3, 64, 64), np.float32), r"\(N, 3, H, W\)"),
    (lambda: np.zeros((1, 3, 16, 64), np.float32), "smaller than 32x32"),
    (lambda: np.full((1, 3, 64, 64), np.nan, np.float32), "holds 12288 NaN"),
    (lambda: _with(np.zeros((2, 3, 64, 64), np.float32), (1, 2, 63, 63), np.inf), "holds 1 NaN or infinite"),
    (lambda: _with(np.zeros((1, 3, 64, 64), np.float32), (0, 1, 5, 0), -np.inf), "holds 1 NaN or infinite"),
])
def test_bad_batch(small_engine, make, message):
    with pytest.raises(InputError, match=message):
        small_engine.run(make())


def test_wrong_input_type(small_engine):
    with pytest.raises(InputError, match="got list"):
        small_engine.run([[1, 2, 3]])


def test_bad_load_options(small_model_path):
    with pytest.raises(DeviceError, match="device"):
        Engine.load(small_model_path, device="tpu")
    with pytest.raises(DeviceError, match="fp32 only"):
        Engine.load(small_model_path, dtype="fp16")
    with pytest.raises(DeviceError, match="isa"):
        Engine.load(small_model_path, isa="sparc")
    with pytest.raises(InputError, match="threads"):
        Engine.load(small_model_path, threads=0)


def test_bad_top_k(small_engine, sample_rgb):
    with pytest.raises(InputError, match="top_k"):
        small_engine.classify(sample_rgb, top_k=0)


def test_all_refusals_share_one_base():
    for cls in (DeviceError, ImageNotFoundError, InputError, ModelFileNotFoundError):
        assert issubclass(cls, Mbv2Error)


def test_cuda_without_a_gpu_is_a_device_error(small_model_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match="CUDA|triton"):
        Engine.load(small_model_path, device="cuda", dtype="fp16")


def test_valid_file_the_engine_cannot_run_is_a_format_error(tmp_path):
    from mbv2_engine import ModelFormatError
    from mbv2_engine.export import export_random

    # At width 0.01 every channel count rounds up to 8, so block 0 (t = 1, stride 1)
    # gets a residual: a valid file, but the fused stem cannot feed it.
    path = export_random(tmp_path / "tiny.npz", seed=0, width_mult=0.01, size=(32, 32), num_classes=3,
                         progress=False)
    with pytest.raises(ModelFormatError, match="cannot run this network"):
        Engine.load(path)


@pytest.mark.parametrize("make", [
    lambda torch: torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16),
    lambda torch: torch.zeros(1, 3, 64, 64).to_sparse(),
    lambda torch: torch.zeros(1, 3, 64, 64, device="meta"),
    lambda torch: torch.zeros(1, 3, 64, 64, dtype=torch.float64),
], ids=["bfloat16", "sparse", "meta", "float64"])
def test_torch_tensors_the_engine_cannot_take_are_input_errors(small_engine, make):
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match="a torch batch must be a dense float32 tensor with data"):
        small_engine.run(make(torch))
