"""timm's and torchvision's own MobileNetV2 state dicts, imported and run by the engine.

timm imports torchvision, which does not install beside this environment's
torch, so the models are built in a separate venv (.ci/torchvision-venv.sh) by
tests/torchvision_models.py, in a subprocess; its python is named by
MBV2_TORCHVISION_PYTHON. Without it the tests that need those files skip; the
key tables and the error messages on hand-made dicts are tested regardless.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from mbv2_engine import Engine
from mbv2_engine import format as wformat
from mbv2_engine.arch import build_arch
from mbv2_engine.errors import StateDictError
from mbv2_engine.export import export_from_torch, torch_shapes
from mbv2_engine.importers import timm as timm_import
from mbv2_engine.torch_model import MobileNetV2
from tolerances import assert_close

ENV = "MBV2_TORCHVISION_PYTHON"
SCRIPT = Path(__file__).with_name("torchvision_models.py")
TIMM_CASES = ["timm_050", "timm_100", "timm_100_224", "timm_140"]
TORCHVISION_CASES = ["tv_050", "tv_100", "tv_140"]


@pytest.fixture(scope="session")
def framework_models(tmp_path_factory):
    """OUTDIR of tests/torchvision_models.py, run once in the venv's python: state dicts, inputs, logits."""
    python = os.environ.get(ENV)
    if not python:
        pytest.skip(f"{ENV} is not set: create the venv with `.ci/torchvision-venv.sh DIR` and set "
                    f"{ENV}=DIR/bin/python")
    if not os.path.isfile(python):
        pytest.skip(f"{ENV}={python} does not exist: create the venv with `.ci/torchvision-venv.sh DIR` "
                    f"and set {ENV}=DIR/bin/python")
    out = tmp_path_factory.mktemp("framework_models")
    # -I: the venv's python sees neither PYTHONPATH nor the script's folder, and cwd is not the repo,
    # so it cannot import this repository's mbv2_engine (it has no need to).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([python, "-I", str(SCRIPT), str(out)], cwd=out, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{SCRIPT.name} failed in {python}:\n{proc.stdout}\n{proc.stderr}"
    cases = json.loads((out / "cases.json").read_text())
    return out, {c["name"]: c for c in cases["cases"]}


def load_state_dict(path):
    """As export.py reads a checkpoint: torch 2.13 reads torch 2.14's files with weights_only=True."""
    return torch.load(path, map_location="cpu", weights_only=True)


def import_state_dict(src, out, width_mult=None):
    """`export_from_torch` on a torchvision or timm state dict, the width detected when not given."""
    return export_from_torch(src, out, width_mult)


# ---- the key tables, without the venv -----------------------------------------

@pytest.mark.parametrize("width_mult, num_classes", [(0.35, 10), (1.0, 1000), (1.4, 3)])
def test_torchvision_keys_are_export_py_keys(width_mult, num_classes):
    assert timm_import.LAYOUTS["torchvision"] == list(torch_shapes(build_arch(width_mult, num_classes)))


def test_key_map_is_one_to_one():
    mapping = timm_import.TIMM_TO_TORCHVISION
    assert len(set(mapping.values())) == len(mapping)
    assert [mapping[k] for k in timm_import.LAYOUTS["timm"]] == timm_import.LAYOUTS["torchvision"]
    assert "blocks.0.0.conv_dw.weight" in mapping and "blocks.0.0.conv_pwl.weight" not in mapping
    assert mapping["blocks.6.0.conv_pwl.weight"] == "features.17.conv.2.weight"


def test_a_torchvision_dict_is_left_alone():
    sd = MobileNetV2(0.35, 4).state_dict()
    assert timm_import.to_torchvision(sd) is None
    assert timm_import.resolve_width(sd, None) == 0.35


def test_keys_of_neither_layout_name_the_closest_one():
    with pytest.raises(StateDictError, match=r"fits neither torchvision's mobilenet_v2 nor timm's "
                                             r"mobilenetv2_\* layout; closest is torchvision's mobilenet_v2: "
                                             r"262 missing keys \['features.0.0.weight', "):
        timm_import.to_torchvision({"fc.weight": torch.zeros(3, 3)})
    sd = {"module." + k: torch.zeros(1) for k in timm_import.LAYOUTS["timm"]}
    with pytest.raises(StateDictError, match="strip that prefix"):
        timm_import.to_torchvision(sd)


# ---- the frameworks' own models -------------------------------------------------

@pytest.mark.parametrize("name", TIMM_CASES + TORCHVISION_CASES)
def test_imported_model_reproduces_the_framework(framework_models, tmp_path, name):
    out, cases = framework_models
    case = cases[name]
    path = import_state_dict(out / f"{name}.pth", tmp_path / "m.npz")
    _, meta, arch = wformat.load(path)
    assert (arch.width_mult, arch.num_classes) == (case["width_mult"], case["num_classes"])
    assert meta["padding"] == "torch"
    x, expected = np.load(out / f"{name}.x.npy"), np.load(out / f"{name}.logits.npy")
    logits = Engine.load(path, threads=1).run(x)
    assert_close(logits, expected, "import_vs_framework")
    assert (logits.argmax(1) == expected.argmax(1)).all()


def test_timm_keys_are_detected_and_counters_are_optional(framework_models):
    out, _ = framework_models
    sd = load_state_dict(out / "timm_140.pth")
    assert "conv_stem.weight" in sd and "blocks.0.0.conv_dw.weight" in sd and "conv_head.weight" in sd
    rekeyed = timm_import.to_torchvision(sd)
    assert rekeyed["features.0.0.weight"] is sd["conv_stem.weight"]
    assert rekeyed["features.18.1.num_batches_tracked"] is sd["bn2.num_batches_tracked"]
    bare = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert list(timm_import.to_torchvision(bare)) == timm_import.LAYOUTS["torchvision"]
    assert timm_import.resolve_width(rekeyed, None, "timm") == 1.4


def test_timm_dict_with_a_wrong_width_names_the_width_it_has(framework_models, tmp_path):
    out, _ = framework_models
    path = out / "timm_050.pth"
    with pytest.raises(StateDictError, match=r"timm's mobilenetv2_\* state dict: conv_stem.weight has 16 "
                                             r"output channels, width_mult=1.0 has 32; the shapes fit "
                                             r"width_mult=0.5"):
        import_state_dict(path, tmp_path / "m.npz", width_mult=1.0)
    # 0.35 and 0.5 share the stem: the first layer that differs is named.
    with pytest.raises(StateDictError, match=r"blocks.1.0.conv_pwl.weight has 16 output channels, "
                                             r"width_mult=0.35 has 8; the shapes fit width_mult=0.5"):
        import_state_dict(path, tmp_path / "m.npz", width_mult=0.35)
    assert not (tmp_path / "m.npz").exists()
    assert wformat.load(import_state_dict(path, tmp_path / "m.npz", width_mult=0.5))[2].width_mult == 0.5


def test_broken_timm_dict_lists_timm_keys(framework_models):
    out, _ = framework_models
    sd = dict(load_state_dict(out / "timm_100.pth"))
    del sd["blocks.2.1.bn2.running_var"]
    sd["fc.weight"] = torch.zeros(1)
    with pytest.raises(StateDictError, match=r"closest is timm's mobilenetv2_\*: 1 missing keys "
                                             r"\['blocks.2.1.bn2.running_var'\], 1 unknown keys \['fc.weight'\]"):
        import_state_dict(sd, "unused.npz")


def test_depth_multiplied_timm_variant_is_refused(framework_models):
    out, _ = framework_models
    keys = json.loads((out / "mobilenetv2_110d.keys.json").read_text())
    with pytest.raises(StateDictError, match=r"mobilenetv2_110d and mobilenetv2_120d have a depth multiplier, "
                                             r"which the engine does not support\); closest is timm's "
                                             r"mobilenetv2_\*: 0 missing keys \[\], 75 unknown keys "
                                             r"\['blocks.1.2.conv_pw.weight', "):
        timm_import.to_torchvision(dict.fromkeys(keys, torch.zeros(1)))
