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


def _huge_view(shape: tuple) -> np.ndarray:
    return np.broadcast_to(np.float32(0), shape)


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
    # Broadcast views that take no memory: refused before the copy that would allocate their full size.
    (lambda: _huge_view((2 ** 40, 3, 32, 32)), "more than 4294967296 floats"),
    (lambda: _huge_view((1, 3, 9000, 64)), "between 32 and 8192"),
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
    with pytest.raises(DeviceError, match="the CPU engine runs fp32 and bf16, got dtype='fp16'"):
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


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """One picture per mode Pillow writes, and broken ones."""
    from PIL import Image

    d = tmp_path_factory.mktemp("pictures")
    rgb = (np.random.default_rng(0).random((80, 90, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(d / "rgb.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    for mode in ("P", "L", "RGBA", "LA"):
        Image.fromarray(rgb).convert(mode).save(d / f"{mode}.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(d / "gray16.png")
    Image.fromarray(rgb[..., 0]).save(d / "gray8.png")
    Image.fromarray(rgb).save(d / "ok.jpg")
    for name in ("ok.jpg", "rgb.png"):
        data = (d / name).read_bytes()
        (d / f"truncated-{name}").write_bytes(data[:len(data) // 2])
    Image.new("L", (20000, 20000)).save(d / "bomb.png")  # 400 M pixels, a few hundred KB
    return d


@pytest.mark.parametrize("name", ["cmyk.jpg", "P.png", "L.png", "RGBA.png", "LA.png", "gray16.png"])
def test_every_pillow_mode_is_converted(small_engine, pictures, name):
    """Each is converted to RGB; the 16-bit one scaled, so it gives the 8-bit picture's answer."""
    from PIL import Image

    got = small_engine.run(str(pictures / name))
    assert got.shape == (small_engine.num_classes,) and np.isfinite(got).all()
    if name == "gray16.png":
        np.testing.assert_array_equal(got, small_engine.run(str(pictures / "gray8.png")))
    if name == "L.png":
        with Image.open(pictures / "L.png") as img:
            gray = np.asarray(img)
        np.testing.assert_array_equal(small_engine.run(np.repeat(gray[..., None], 3, axis=2)), got)


@pytest.mark.parametrize("name, fragment", [
    ("truncated-ok.jpg", "image file is truncated"),
    ("truncated-rgb.png", "cannot decode image"),
    ("bomb.png", "exceeds Pillow's decompression-bomb limit"),
])
def test_broken_pictures_are_input_errors(small_engine, pictures, name, fragment):
    with pytest.raises(InputError, match=fragment):
        small_engine.classify(str(pictures / name))


def test_a_lazily_opened_truncated_picture_is_an_input_error(small_engine, pictures):
    from PIL import Image

    with Image.open(pictures / "truncated-ok.jpg") as lazy, \
            pytest.raises(InputError, match="cannot decode the PIL image: image file is truncated"):
        small_engine.run(lazy)


def test_a_directory_or_fifo_is_not_an_image(small_engine, pictures, tmp_path):
    import os

    with pytest.raises(InputError, match="it is a directory"):
        small_engine.run(str(pictures))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        small_engine.run(str(fifo))
