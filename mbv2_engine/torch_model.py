"""MobileNetV2 in PyTorch with torchvision's exact state_dict keys and shapes.

torchvision cannot be installed beside the CPU torch here, so this module is the
project's PyTorch oracle and the exporters' source model. Channel counts come
from `arch.build_arch`, so a width multiplier means the same network here, in
the reference and in the engine. `padding="same"` reproduces TF/Keras SAME
padding so Keras-converted weights can be checked against PyTorch too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .arch import BlockSpec, build_arch, conv_out, pad_before

PADDINGS = ("torch", "same")


class Conv3x3(nn.Conv2d):
    """3x3 conv without bias; SAME padding is explicit because it can be asymmetric."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int, padding: str):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        super().__init__(cin, cout, 3, stride, padding=1 if padding == "torch" else 0,
                         groups=groups, bias=False)
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = F.pad(x, _same_pads(x.shape[-2], x.shape[-1], self.stride[0]))
        return super().forward(x)


def _same_pads(h: int, w: int, stride: int) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for SAME padding of a 3x3 conv."""
    def before_after(n: int) -> tuple[int, int]:
        before = pad_before(n, stride, "same")
        return before, max((conv_out(n, stride) - 1) * stride + 3 - n - before, 0)
    return before_after(w) + before_after(h)


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int, groups: int,
                 padding: str, eps: float) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: keys `.0` conv, `.1` BN, `.2` ReLU6 (no params)."""
    conv = Conv3x3(cin, cout, stride, groups, padding) if kernel == 3 else nn.Conv2d(cin, cout, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=eps), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, spec: BlockSpec, padding: str, eps: float):
        super().__init__()
        layers = []
        if spec.has_expand:
            layers.append(conv_bn_relu(spec.cin, spec.hidden, 1, 1, 1, padding, eps))
        layers += [
            conv_bn_relu(spec.hidden, spec.hidden, 3, spec.stride, spec.hidden, padding, eps),
            nn.Conv2d(spec.hidden, spec.cout, 1, bias=False),
            nn.BatchNorm2d(spec.cout, eps=eps),  # linear bottleneck: no activation
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's `mobilenet_v2` with explicit padding mode and BN epsilon.

    `arch`, `padding` and `eps` are kept so exporters can fold and describe the
    model without being told again.
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000,
                 padding: str = "torch", eps: float = 1e-5, dropout: float = 0.2):
        super().__init__()
        self.arch = build_arch(width_mult, num_classes)
        self.padding, self.eps = padding, eps
        a = self.arch
        features = [conv_bn_relu(3, a.stem, 3, 2, 1, padding, eps)]
        features += [InvertedResidual(spec, padding, eps) for spec in a.blocks]
        features.append(conv_bn_relu(a.blocks[-1].cout, a.last, 1, 1, 1, padding, eps))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(a.last, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's initialisation, so random models start from the same distribution."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
