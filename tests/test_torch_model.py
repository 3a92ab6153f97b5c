"""The PyTorch model matches torchvision's mobilenet_v2 state_dict (facts written down, since
torchvision cannot be imported here) and runs at every width and padding mode."""
import pytest
import torch

from mbv2_engine.torch_model import MobileNetV2

# From torchvision.models.mobilenet_v2() (width 1.0, 1000 classes).
TORCHVISION_FACTS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.num_batches_tracked": (),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.0.1.running_var": (32,),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.bias": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.running_mean": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.weight": (1280,),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}
TORCHVISION_KEYS = 314
TORCHVISION_PARAMS = 3_504_872


@pytest.fixture(scope="module")
def model():
    return MobileNetV2()


def test_state_dict_keys_and_shapes_match_torchvision(model):
    sd = model.state_dict()
    assert len(sd) == TORCHVISION_KEYS
    assert {k: tuple(sd[k].shape) for k in TORCHVISION_FACTS} == TORCHVISION_FACTS
    assert list(sd)[0] == "features.0.0.weight" and list(sd)[-1] == "classifier.1.bias"
    assert not any(k.startswith("features.19") for k in sd)


def test_parameter_count_matches_torchvision(model):
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS


def test_classifier_has_dropout(model):
    assert isinstance(model.classifier[0], torch.nn.Dropout) and model.classifier[0].p == 0.2


@pytest.mark.parametrize("width, stem, last", [(0.35, 16, 1280), (1.4, 48, 1792)])
def test_other_widths_build_and_run(width, stem, last):
    m = MobileNetV2(width, num_classes=7).eval()
    assert m.features[0][0].out_channels == stem and m.features[-1][0].out_channels == last
    with torch.no_grad():
        assert m(torch.randn(2, 3, 64, 48)).shape == (2, 7)


def test_same_padding_runs_on_odd_and_even_sizes():
    m = MobileNetV2(0.35, num_classes=5, padding="same", eps=1e-3).eval()
    assert m.features[0][1].eps == 1e-3
    with torch.no_grad():
        assert m(torch.randn(1, 3, 65, 64)).shape == (1, 5)


def test_bad_padding_is_refused():
    with pytest.raises(ValueError, match="padding"):
        MobileNetV2(padding="valid")
