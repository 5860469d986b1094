"""The ShuffleNetV2 family (x0.5, x1.0, x1.5, x2.0): one parametric file and three extends files, equal to torch.

The reference below is written with torch.nn following torchvision/models/shufflenetv2.py (InvertedResidual,
channel_shuffle, ShuffleNetV2 and the four builders' stages_repeats / stages_out_channels), with its module names
and forward: the stride-1 unit's chunk, the cat of the two branches and channel_shuffle's .contiguous() copy.
tests/zoo_harness.py says what is compared (params, buffers, FLOPs, output shape, elementwise and copy counts,
module names, torchvision's published meta).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tests.zoo_harness import Zoo, cli_eval, ours

# --- torchvision.models.shufflenetv2 ------------------------------------------------------------


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batchsize, num_channels, height, width = x.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleInvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch_features, branch_features, 3, stride, 1, bias=False, groups=branch_features),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, stages_repeats: list[int], stages_out_channels: list[int], num_classes: int = 1000):
        super().__init__()
        input_channels = 3
        output_channels = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        input_channels = output_channels
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, repeats, output_channels in zip(
            ["stage2", "stage3", "stage4"], stages_repeats, stages_out_channels[1:]
        ):
            seq = [ShuffleInvertedResidual(input_channels, output_channels, 2)]
            seq += [ShuffleInvertedResidual(output_channels, output_channels, 1) for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*seq))
            input_channels = output_channels
        output_channels = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(output_channels),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(output_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


# --- the cases -----------------------------------------------------------------------------------

#: torchvision/models/shufflenetv2.py builders: ShuffleNetV2([4, 8, 4], stages_out_channels)
STAGES_OUT_CHANNELS = {
    "shufflenet_v2_x0_5": [24, 48, 96, 192, 1024],
    "shufflenet_v2_x1_0": [24, 116, 232, 464, 1024],
    "shufflenet_v2_x1_5": [24, 176, 352, 704, 1024],
    "shufflenet_v2_x2_0": [24, 244, 488, 976, 2048],
}

# 250x199: stages 125 -> 63 -> 32 -> 16 -> 8 (and 100 -> 50 -> 25 -> 13 -> 7), odd maps under stride 2
ZOO = Zoo(
    {
        arch: ((lambda c=channels: ShuffleNetV2([4, 8, 4], c)), [(1, 224, 224), (2, 250, 199)])
        for arch, channels in STAGES_OUT_CHANNELS.items()
    }
)

#: torchvision/models/shufflenetv2.py weights meta (IMAGENET1K_V1): num_params and _ops (GMACs); FlopCounterMode
#: FLOPs at 1x3x224x224 as 2 x the MACs worked out in each architecture file's header
PUBLISHED = {
    # ShuffleNet_V2_X0_5_Weights: "num_params": 1366792, "_ops": 0.04
    "shufflenet_v2_x0_5": (1_366_792, 0.04, 2 * 40_476_448),
    # ShuffleNet_V2_X1_0_Weights: "num_params": 2278604, "_ops": 0.145
    "shufflenet_v2_x1_0": (2_278_604, 0.145, 2 * 144_907_992),
    # ShuffleNet_V2_X1_5_Weights: "num_params": 3503624, "_ops": 0.296
    "shufflenet_v2_x1_5": (3_503_624, 0.296, 2 * 295_759_392),
    # ShuffleNet_V2_X2_0_Weights: "num_params": 7393996, "_ops": 0.583
    "shufflenet_v2_x2_0": (7_393_996, 0.583, 2 * 583_253_464),
}


test_arch_equals_torch, test_layers_name_torch_modules, test_published_numbers = ZOO.tests(PUBLISHED)


def test_one_family_file():
    """The siblings are the family file with torchvision's lists: same layers, other channel counts."""
    base = ours("shufflenet_v2_x1_0")
    for arch in ("shufflenet_v2_x0_5", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"):
        r = ours(arch)
        assert r.graph.arch.family == "shufflenet_v2"
        assert [node.path for node in r.nodes] == [node.path for node in base.nodes]
    conv5 = {arch: next(n for n in ours(arch).nodes if n.path == "conv5.0").output for arch in STAGES_OUT_CHANNELS}
    assert conv5 == {arch: (1, channels[-1], 7, 7) for arch, channels in STAGES_OUT_CHANNELS.items()}


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_cli_eval_by_name_prints_the_published_params(arch):
    result = cli_eval(arch)
    assert result.exit_code == 0, result.output
    assert f"{PUBLISHED[arch][0]:,}" in result.output
