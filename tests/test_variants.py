"""Every MobileNetV2 variant through the fast kernels (issue 13, item 1): each published width at
every common input size, non-square and odd sizes, several class counts and both paddings, on the
engine's best ISA against the PyTorch model, and at 224 against the float64 reference. One engine
per model runs every size: a new size needs no reload."""
import numpy as np
import pytest
import torch

from mbv2_engine import Engine, _core, reference
from mbv2_engine import format as wformat
from mbv2_engine.export import random_model, write_model
from mbv2_engine.torch_model import MobileNetV2
from tolerances import assert_close

SIZES = [(96, 96), (128, 128), (160, 160), (192, 192), (224, 224), (256, 256), (320, 320),
         (225, 193), (160, 224), (97, 131)]
# (width, classes, padding): every published width, class counts from 1 to 1000, both paddings.
MODELS = [(0.35, 10, "torch"), (0.5, 1, "same"), (0.75, 37, "torch"), (1.0, 1000, "torch"),
          (1.3, 5, "same"), (1.4, 100, "torch")]
BEST_ISA = _core.available_isas()[-1]


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: f"w{m[0]}-k{m[1]}-{m[2]}")
def variant(request, tmp_path_factory):
    """(torch model, engine on the best ISA, folded arrays) for one width, class count and padding."""
    width, classes, padding = request.param
    calibrated = random_model(seed=int(width * 100), width_mult=width, num_classes=classes, size=(64, 64),
                              calib_batches=2, progress=False)
    model = MobileNetV2(width, classes, padding=padding).eval()
    model.load_state_dict(calibrated.state_dict())
    path = write_model(model, tmp_path_factory.mktemp("variant") / "m.npz", {"kind": "test"})
    engine = Engine.load(path, threads=2, isa=BEST_ISA)
    assert engine.plan.isa == BEST_ISA
    return model, engine


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_engine_matches_pytorch(variant, size):
    model, engine = variant
    x = np.random.default_rng(size[0] * size[1]).standard_normal((2, 3, *size), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(engine.run(x), expected, "network_f32_vs_torch")


@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
def test_engine_matches_the_float64_reference_at_224(tmp_path, width):
    model = random_model(seed=7, width_mult=width, num_classes=20, size=(64, 64), calib_batches=2,
                         progress=False)
    path = write_model(model, tmp_path / "m.npz", {"kind": "test"})
    engine = Engine.load(path, threads=2, isa=BEST_ISA)
    arrays, _, arch = wformat.load(path)
    x = np.random.default_rng(224).standard_normal((1, 3, 224, 224), dtype=np.float32)
    assert_close(engine.run(x), reference.forward(arrays, arch, x), "f32_network_vs_f64")
