"""The bundled CNN architectures equal torch exactly.

Each file in archs/ is checked against a reference model written here with torch.nn, following
torchvision's (or RAFT's) layout and module names exactly (torchvision is not a dependency). The
reference is built on the meta device (no memory, no data) and counted with FlopCounterMode on a
meta input: symcost's totals must equal FlopCounterMode's FLOPs, ``sum(p.numel())`` and
``sum(b.numel())`` for buffers, and the output shape, at two or more input shapes (batch 1 and 2,
sizes where the adaptive pools matter). FlopCounterMode counts residual adds and activations as 0,
so the elements that torch's add and relu/relu6 kernels write are counted apart and must equal
symcost's elementwise 'add' and 'activation' counts: a missing shortcut or ReLU fails. At the first shape every layer with parameters or FLOPs
must also name a torch module with the same parameters and FLOPs. The published numbers
(torchvision's weights meta; the blog posts' worked examples) are checked at 224 against both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from symcost.compile import Result, evaluate
from tests.helpers import graph

from .torch_reference import ElementwiseCounter, check_equals_torch
from .torch_reference import copies as _copies
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision.models.resnet ------------------------------------------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64):  # fmt: skip
        super().__init__()
        if groups != 1 or base_width != 64:  # as torchvision's BasicBlock refuses them
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the stride on the 3x3): ResNet-50/101/152, and with ``groups`` and
    ``base_width`` the ResNeXts and Wide ResNets."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64):  # fmt: skip
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], num_classes: int = 1000,
                 groups: int = 1, width_per_group: int = 64):  # fmt: skip
        super().__init__()
        self.inplanes, self.groups, self.base_width = 64, groups, width_per_group
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [
            block(self.inplanes, planes, groups=self.groups, base_width=self.base_width) for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- torchvision.models.vgg and alexnet ---------------------------------------------------------

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, batch_norm: bool, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- torchvision.models.mobilenetv2 --------------------------------------------------------------


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Conv2dNormActivation(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ]

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0):
        super().__init__()
        input_channel = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [Conv2dNormActivation(3, input_channel, stride=2)]
        for t, c, n, s in self.SETTING:
            output_channel = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# --- princeton-vl/RAFT core/extractor.py ---------------------------------------------------------


class RaftResidualBlock(nn.Module):
    """RAFT's ResidualBlock with norm_fn='instance' (the other norms are left out)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = nn.InstanceNorm2d(planes)
        self.norm2 = nn.InstanceNorm2d(planes)
        self.downsample = None
        if stride != 1:
            self.norm3 = nn.InstanceNorm2d(planes)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x):
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


# --- the cases -----------------------------------------------------------------------------------

#: arch -> (torch reference factory, input channels, shapes (N, H, W); the first holds the published numbers)
RESNET_SHAPES = [(1, 224, 224), (2, 320, 257)]
POOLED_SHAPES = [(1, 224, 224), (2, 256, 200)]  # 256: 7x7 -> 6x6 (alexnet); 200: 6x6 -> 7x7 (vgg), 5x5 -> 6x6 (alexnet)
CASES: dict[str, tuple[Callable[[], nn.Module], int, list[tuple[int, int, int]]]] = {
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), 3, RESNET_SHAPES),
    "resnet34": (lambda: ResNet(BasicBlock, [3, 4, 6, 3]), 3, RESNET_SHAPES),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), 3, RESNET_SHAPES),
    "resnet101": (lambda: ResNet(Bottleneck, [3, 4, 23, 3]), 3, RESNET_SHAPES),
    "resnet152": (lambda: ResNet(Bottleneck, [3, 8, 36, 3]), 3, RESNET_SHAPES),
    "vgg16": (lambda: VGG(batch_norm=False), 3, POOLED_SHAPES),
    "vgg16_bn": (lambda: VGG(batch_norm=True), 3, POOLED_SHAPES),
    "alexnet": (AlexNet, 3, POOLED_SHAPES),
    "mobilenet_v2": (MobileNetV2, 3, RESNET_SHAPES),
    "raft_residual_block": (lambda: RaftResidualBlock(384, 384), 384, [(2, 32, 32), (1, 24, 40)]),
    "seed_conv": (lambda: nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1), 3, [(1, 224, 224), (2, 225, 97)]),
}

#: published (params, FlopCounterMode FLOPs) at the first shape of each case
PUBLISHED = {
    # torchvision/models/*.py weights meta: num_params and _ops (GMACs) x 2e9 = FlopCounterMode, 1x3x224x224
    "resnet18": (11_689_512, 3_628_146_688),
    "resnet34": (21_797_672, 7_327_522_816),
    "resnet50": (25_557_032, 8_178_368_512),
    "resnet101": (44_549_160, 15_602_810_880),
    "resnet152": (60_192_808, 23_027_253_248),
    "vgg16": (138_357_544, 30_940_528_640),
    "vgg16_bn": (138_365_992, 30_940_528_640),
    "alexnet": (61_100_840, 1_428_376_960),
    "mobilenet_v2": (3_504_872, 601_548_544),
    # The blog post "深度学习基础之GFLOPS(2)": RAFT ResidualBlock(384, 384, norm_fn='instance') on 2x384x32x32:
    # params 2*(384*384*9 + 384) = 2,654,976; FLOPs 2 * (conv MACs 5,435,817,984) = 10,871,635,968
    "raft_residual_block": (2_654_976, 10_871_635_968),
    # The blog post "一、计算量FLOPs", its conv: 224x224x3 -> 112x112x64, k3 s2 p1:
    # FLOPs 2*112*112*64*3*3*3 = 43,352,064; params 64*3*3*3 + 64 = 1,792
    "seed_conv": (1_792, 43_352_064),
}


@functools.cache
def reference(arch: str) -> nn.Module:
    with META:
        return CASES[arch][0]().eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    n, h, w = shape
    return measure(reference(arch), torch.empty(n, CASES[arch][1], h, w, device=META), counter=ElementwiseCounter())


def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(arch), {"N": n, "H": h, "W": w})


PAIRS = [(arch, shape) for arch, (_, _, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_arch_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    r = ours(arch, shape)
    check_equals_torch(r, totals, out_shape, f"{arch} at N, H, W = {shape}")


@pytest.mark.parametrize("arch", list(CASES))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    shape = CASES[arch][2][0]
    _, _, per_module = torch_counts(arch, shape)
    model = reference(arch)
    root = type(model).__name__
    modules = dict(model.named_modules())
    checked = 0
    for node in ours(arch, shape).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _copies(node.path, node.count):
            if arch == "seed_conv":  # the reference is the bare Conv2d
                module, key = model, root
            else:
                assert path in modules, f"{arch}: no torch module named {path}"
                module, key = modules[path], f"{root}.{path}"
            assert sum(p.numel() for p in module.parameters()) * node.count == node.values["params"], path
            assert per_module.get(key, 0) * node.count == node.values["flops"], path
            checked += 1
    assert checked == sum(1 for m in modules.values() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)))


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """The published numbers at 224 (RAFT: 2x384x32x32): symcost's defaults and the torch reference."""
    params, flops = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.totals["params"], r.totals["flops"]) == (params, flops)
    n, h, w = CASES[arch][2][0]
    assert (r.values["N"], r.values["H"], r.values["W"]) == (n, h, w), "the file's defaults are the published shape"
    totals, _, _ = torch_counts(arch, (n, h, w))
    assert (totals["params"], totals["flops"]) == (params, flops)


def test_raft_conv_macs():
    # RAFT's block: conv MACs 5,435,817,984 = 2 convs x 2*384*32*32 outputs x 384*3*3
    assert evaluate(graph("raft_residual_block")).totals["macs"] == 5_435_817_984 == 2 * (2 * 384 * 32 * 32) * 384 * 9


def test_resnet_extends_share_the_layout():
    """resnet34 is resnet18 with other block counts: setting them on resnet18 gives resnet34."""
    r18 = evaluate(graph("resnet18"), {"blocks1": 3, "blocks2": 4, "blocks3": 6, "blocks4": 3})
    assert r18.totals == evaluate(graph("resnet34")).totals
