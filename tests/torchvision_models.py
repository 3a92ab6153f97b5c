"""Run by tests/test_import_timm.py in the torchvision venv (.ci/torchvision-venv.sh), never by pytest.

    python torchvision_models.py OUTDIR

For each case below it builds the model as timm or torchvision builds it
(random weights, pretrained=False), gives every BatchNorm random statistics and
affine parameters (so folding changes every channel differently), and writes
OUTDIR/NAME.pth (the state dict, torch.save), OUTDIR/NAME.x.npy (the fixed
random input batch, NCHW float32) and OUTDIR/NAME.logits.npy (the framework's
own eval-mode float32 output on it), then OUTDIR/cases.json listing them, and
the keys of timm's mobilenetv2_110d (OUTDIR/mobilenetv2_110d.keys.json). It
imports neither mbv2_engine nor anything of the repository.
"""
import json
import sys
from pathlib import Path

import numpy as np
import timm
import torch
import torchvision
from torch import nn

# (name, library, model or width, num_classes, input side, batch)
CASES = [
    ("timm_050", "timm", "mobilenetv2_050", 1000, 96, 2),
    ("timm_100", "timm", "mobilenetv2_100", 10, 128, 2),
    ("timm_100_224", "timm", "mobilenetv2_100", 1000, 224, 1),
    ("timm_140", "timm", "mobilenetv2_140", 37, 112, 2),
    ("tv_050", "torchvision", 0.5, 1000, 96, 2),
    ("tv_100", "torchvision", 1.0, 5, 128, 2),
    ("tv_140", "torchvision", 1.4, 1000, 112, 2),
]


def build(library, what, num_classes):
    if library == "timm":
        return timm.create_model(what, pretrained=False, num_classes=num_classes)
    return torchvision.models.mobilenet_v2(weights=None, width_mult=what, num_classes=num_classes)


@torch.no_grad()
def randomise(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    fc = model.classifier if isinstance(model.classifier, nn.Linear) else model.classifier[1]
    # Both libraries' small classifier inits give near-equal logits; 1/sqrt(fan_in) spreads them.
    fc.weight.copy_(torch.randn(fc.weight.shape, generator=gen) * fc.in_features ** -0.5)
    fc.bias.copy_(torch.randn(fc.bias.shape, generator=gen) * 0.1)


def main(out):
    out = Path(out)
    torch.manual_seed(0)  # the libraries' own inits draw from the global generator
    cases = []
    for seed, (name, library, what, classes, side, batch) in enumerate(CASES):
        gen = torch.Generator().manual_seed(1000 + seed)
        model = build(library, what, classes).eval()
        randomise(model, gen)
        x = torch.randn(batch, 3, side, side, generator=gen)
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), out / f"{name}.pth")
        np.save(out / f"{name}.x.npy", x.numpy())
        np.save(out / f"{name}.logits.npy", logits.numpy())
        cases.append({"name": name, "library": library, "model": what, "num_classes": classes,
                      "width_mult": {"mobilenetv2_050": 0.5, "mobilenetv2_100": 1.0,
                                     "mobilenetv2_140": 1.4}.get(what, what)})
    # A depth-multiplied variant the engine refuses: its keys only, for the error message.
    deep = list(timm.create_model("mobilenetv2_110d", pretrained=False).state_dict())
    (out / "mobilenetv2_110d.keys.json").write_text(json.dumps(deep))
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__}
    (out / "cases.json").write_text(json.dumps({"cases": cases, "versions": versions}))


if __name__ == "__main__":
    main(sys.argv[1])
