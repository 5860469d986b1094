"""The SqueezeNet family (1.0 and 1.1): one parametric file with `when: version == ...` and a one-line extends file.

The reference below is written with torch.nn following torchvision/models/squeezenet.py (Fire, SqueezeNet(version)
with both versions' features), with its module names and forward: each Fire's torch.cat of its two expands, the
ceil_mode max pools, the classifier's 1x1 conv, ReLU and adaptive pool, torch.flatten. tests/zoo_harness.py says
what is compared (params, buffers, FLOPs, output shape, elementwise and copy counts, module names, torchvision's
published meta).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tests.zoo_harness import Zoo, cli_eval, graph, ours

# --- torchvision.models.squeezenet --------------------------------------------------------------


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet(nn.Module):
    def __init__(self, version: str = "1_0", num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, kernel_size=7, stride=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(96, 16, 64, 64),
                Fire(128, 16, 64, 64),
                Fire(128, 32, 128, 128),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(256, 32, 128, 128),
                Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(512, 64, 256, 256),
            )
        elif version == "1_1":
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=3, stride=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(64, 16, 64, 64),
                Fire(128, 16, 64, 64),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(128, 32, 128, 128),
                Fire(256, 32, 128, 128),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256),
                Fire(512, 64, 256, 256),
            )
        else:
            raise ValueError(f"Unsupported SqueezeNet version {version}: 1_0 or 1_1 expected")
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


# --- the cases -----------------------------------------------------------------------------------

ZOO = Zoo(
    {
        # 230x197: conv 112x96, ceil-mode pools 56x48 -> 28x24 -> 14x12 (1.0's 7x7 conv: 112 = (230 - 7)//2 + 1)
        "squeezenet1_0": (lambda: SqueezeNet("1_0"), [(1, 224, 224), (2, 230, 197)]),
        # 230x197: conv 114x98, ceil-mode pools 57x49 -> 28x24 -> 14x12 (ceil_mode keeps the last window at 57 and 49)
        "squeezenet1_1": (lambda: SqueezeNet("1_1"), [(1, 224, 224), (2, 230, 197)]),
    }
)

#: torchvision/models/squeezenet.py weights meta (IMAGENET1K_V1): num_params and _ops (GMACs); FlopCounterMode
#: FLOPs at 1x3x224x224 as 2 x the MACs worked out in each architecture file's header
PUBLISHED = {
    # SqueezeNet1_0_Weights: "num_params": 1248424, "_ops": 0.819
    "squeezenet1_0": (1_248_424, 0.819, 2 * 818_924_576),
    # SqueezeNet1_1_Weights: "num_params": 1235496, "_ops": 0.349
    "squeezenet1_1": (1_235_496, 0.349, 2 * 349_151_936),
}


test_arch_equals_torch, test_layers_name_torch_modules, test_published_numbers = ZOO.tests(PUBLISHED)


def test_version_picks_the_pools_places():
    """One file, two layouts: version 10 pools at features.2, 6 and 11; version 11 at features.2, 5 and 8."""
    pools = {
        arch: [n.path for n in ours(arch).nodes if n.op == "maxpool2d"] for arch in ("squeezenet1_0", "squeezenet1_1")
    }
    assert pools == {
        "squeezenet1_0": ["features.2", "features.6", "features.11"],
        "squeezenet1_1": ["features.2", "features.5", "features.8"],
    }
    assert graph("squeezenet1_1").arch.family == "squeezenet"


def test_other_versions_are_refused():
    """torchvision raises ValueError for a version other than "1_0" and "1_1"; symcost refuses it at a line."""
    result = cli_eval("squeezenet1_0", "--set", "version=12")
    assert result.exit_code != 0
    assert "version_must_be_10_or_11" in result.output


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_cli_eval_by_name_prints_the_published_params(arch):
    result = cli_eval(arch)
    assert result.exit_code == 0, result.output
    assert f"{PUBLISHED[arch][0]:,}" in result.output
