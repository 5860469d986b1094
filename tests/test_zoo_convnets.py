"""The ConvNeXt, RegNet and ResNeXt / Wide ResNet families equal torch exactly.

As in tests/test_archs_cnn.py: each file in archs/ is checked against a reference written here with torch.nn,
following torchvision's source (torchvision/models/convnext.py, regnet.py, resnet.py and
torchvision/ops/misc.py) and its module names exactly; torchvision is not a dependency. Each family has one
parametric reference, built with the settings torchvision's builders pass (ConvNeXt's block_setting, RegNet's
BlockParams.from_init_params arguments, ResNet's layers, groups and width_per_group), on the meta device, and counted
with FlopCounterMode on a meta input: symcost's FLOPs, params, buffers and output shape must equal torch's at two
input shapes (the weights' size at batch 1, and another size). The elements that torch's add, mul and activation
kernels write are counted apart and must equal symcost's elementwise 'add', 'mul' and 'activation' counts, so a
missing residual, layer scale, SE gate or GELU fails. Every layer with parameters or FLOPs must name the torch
module (or, for ConvNeXt's layer scale, the nn.Parameter) of the same name, with the same counts; together they must
cover every parameter of the model. The published numbers (torchvision weights meta: num_params, and _ops in GMACs)
are checked at the weights' input size, for every weights entry whose size differs (RegNet's SWAG weights).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from symcost.arch import load_path
from symcost.compile import Result, evaluate

from .test_archs_cnn import ARCHS, META, Bottleneck, ResNet, _copies
from .test_archs_cnn import graph as cnn_graph
from .torch_reference import (
    ElementwiseCounter,
    Permute,
    StochasticDepth,
    at,
    check_equals_torch,
    graph,
    image,
    pair_ids,
)
from .torch_reference import torch_counts as measure

# --- torchvision.models.convnext ------------------------------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: LayerNorm over C of an NCHW map, through NHWC."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(4 * dim, dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class ConvNeXt(nn.Module):
    """torchvision's ConvNeXt(block_setting): block_setting is a list of CNBlockConfig(input_channels,
    out_channels, num_layers), here (input_channels, out_channels, num_layers) tuples."""

    def __init__(
        self,
        block_setting: list[tuple[int, int | None, int]],
        stochastic_depth_prob: float = 0.1,
        layer_scale: float = 1e-6,
        num_classes: int = 1000,
    ):
        super().__init__()
        norm_layer = functools.partial(LayerNorm2d, eps=1e-6)
        first = block_setting[0][0]
        # Conv2dNormActivation(3, first, kernel_size=4, stride=4, padding=0, norm_layer, activation_layer=None, bias=True)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, first, kernel_size=4, stride=4, padding=0, bias=True), norm_layer(first))
        ]
        total = sum(n for _, _, n in block_setting)
        block_id = 0
        for c_in, c_out, n in block_setting:
            stage = []
            for _ in range(n):
                stage.append(CNBlock(c_in, layer_scale, stochastic_depth_prob * block_id / (total - 1.0)))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if c_out is not None:
                layers.append(nn.Sequential(norm_layer(c_in), nn.Conv2d(c_in, c_out, kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = block_setting[-1][1] or block_setting[-1][0]
        self.classifier = nn.Sequential(norm_layer(last), nn.Flatten(1), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


# --- torchvision.models.regnet and torchvision.ops.misc.SqueezeExcitation -------------------------------


class SqueezeExcitation(nn.Module):
    def __init__(self, input_channels: int, squeeze_channels: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


def conv_norm_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
    """Conv2dNormActivation with norm_layer BatchNorm2d: padding (k - 1)//2, no conv bias (a norm follows)."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BottleneckTransform(nn.Sequential):
    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ):
        w_b = int(round(width_out * bottleneck_multiplier))
        g = w_b // group_width
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = conv_norm_act(width_in, w_b, 1)
        layers["b"] = conv_norm_act(w_b, w_b, 3, stride, groups=g)
        if se_ratio:
            layers["se"] = SqueezeExcitation(w_b, int(round(se_ratio * width_in)))
        layers["c"] = conv_norm_act(w_b, width_out, 1, act=False)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ):
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = conv_norm_act(width_in, width_out, 1, stride, act=False)
        self.f = BottleneckTransform(width_in, width_out, stride, group_width, bottleneck_multiplier, se_ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.proj(x) + self.f(x) if self.proj is not None else x + self.f(x)
        return self.activation(x)


def regnet_block_params(
    depth: int, w_0: int, w_a: float, w_m: float, group_width: int, bottleneck_multiplier: float = 1.0
):
    """torchvision's BlockParams.from_init_params, restated: (widths, depths, group widths) per stage."""
    widths_cont = torch.arange(depth, device="cpu") * w_a + w_0  # on the CPU: the reference is built under META
    block_capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, block_capacity), 8)) * 8).int().tolist()
    splits = [
        w != wp or r != rp
        for w, wp, r, rp in zip(block_widths + [0], [0] + block_widths, block_widths + [0], [0] + block_widths)
    ]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
    stage_depths = torch.diff(torch.tensor([d for d, t in enumerate(splits) if t], device="cpu")).int().tolist()
    # _adjust_widths_groups_compatibilty with torchvision.models._utils._make_divisible
    widths = [int(w * bottleneck_multiplier) for w in stage_widths]
    group_widths = [min(group_width, w) for w in widths]
    ws_bot = []
    for w, g in zip(widths, group_widths):
        new_w = max(g, int(w + g / 2) // g * g)
        ws_bot.append(new_w + g if new_w < 0.9 * w else new_w)
    return [int(w / bottleneck_multiplier) for w in ws_bot], stage_depths, group_widths


class RegNet(nn.Module):
    """torchvision's RegNet(BlockParams.from_init_params(depth, w_0, w_a, w_m, group_width, se_ratio=se_ratio)),
    as its regnet_y_* (se_ratio 0.25) and regnet_x_* (no SE) builders make it."""

    def __init__(
        self,
        depth: int,
        w_0: int,
        w_a: float,
        w_m: float,
        group_width: int,
        se_ratio: float | None = None,
        num_classes: int = 1000,
        stem_width: int = 32,
    ):
        super().__init__()
        self.stem = conv_norm_act(3, stem_width, 3, 2)
        widths, depths, group_widths = regnet_block_params(depth, w_0, w_a, w_m, group_width)
        current = stem_width
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        for i, (width_out, stage_depth, stage_group_width) in enumerate(zip(widths, depths, group_widths), 1):
            stage = nn.Sequential()
            for j in range(stage_depth):
                block = ResBottleneckBlock(
                    current if j == 0 else width_out,
                    width_out,
                    2 if j == 0 else 1,
                    stage_group_width,
                    1.0,
                    se_ratio,
                )
                stage.add_module(f"block{i}-{j}", block)
            stages[f"block{i}"] = stage
            current = width_out
        self.trunk_output = nn.Sequential(stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(current, num_classes)

    def forward(self, x):
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))


# torchvision.models.resnet with groups and width_per_group (ResNeXt, Wide ResNet): tests/test_archs_cnn.py's
# ResNet and Bottleneck, as torchvision builds them from the same two classes.


# --- the cases -------------------------------------------------------------------------------------

#: torchvision/models/convnext.py, convnext_tiny/_small/_base/_large: block_setting as
#: (input_channels, out_channels, num_layers), and the builder's stochastic_depth_prob (the identity in inference)
CONVNEXT = {
    "convnext_tiny": ([(96, 192, 3), (192, 384, 3), (384, 768, 9), (768, None, 3)], 0.1),
    "convnext_small": ([(96, 192, 3), (192, 384, 3), (384, 768, 27), (768, None, 3)], 0.4),
    "convnext_base": ([(128, 256, 3), (256, 512, 3), (512, 1024, 27), (1024, None, 3)], 0.5),
    "convnext_large": ([(192, 384, 3), (384, 768, 3), (768, 1536, 27), (1536, None, 3)], 0.5),
}

#: torchvision/models/regnet.py, regnet_*: BlockParams.from_init_params(depth, w_0, w_a, w_m, group_width, se_ratio)
REGNET = {
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, 0.25),
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, None),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, None),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, None),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, None),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, None),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, None),
}

#: torchvision/models/resnet.py: ResNet(Bottleneck, layers, groups=..., width_per_group=...)
RESNEXT = {
    "resnext50_32x4d": ((3, 4, 6, 3), 32, 4),
    "resnext101_32x8d": ((3, 4, 23, 3), 32, 8),
    "resnext101_64x4d": ((3, 4, 23, 3), 64, 4),
    "wide_resnet50_2": ((3, 4, 6, 3), 1, 64 * 2),
    "wide_resnet101_2": ((3, 4, 23, 3), 1, 64 * 2),
}

# 256x192: a non-square map, 64x48 after ConvNeXt's stem down to 8x6 before the pool.
# 320x257: odd sizes meet the stride-2 convs (padding 1 rounds 257 up).
# RegNetY-16GF and -32GF: the second size is 384x384, their SWAG weights' crop; RegNetY-128GF's only weights are
# SWAG's, at 384x384 (its default) and, for the linear-classifier weights, 224x224 (its second size).
SMALL, ODD, SWAG = (1, 224, 224), (2, 320, 257), (1, 384, 384)

#: arch -> (torch reference factory, shapes (N, H, W); the first is the default weights' size)
CASES: dict[str, tuple[Callable[[], nn.Module], list[tuple[int, int, int]]]] = {
    **{
        arch: (functools.partial(ConvNeXt, setting, sd_prob), [SMALL, (2, 256, 192)])
        for arch, (setting, sd_prob) in CONVNEXT.items()
    },
    **{
        arch: (
            functools.partial(RegNet, *init),
            [SWAG, SMALL]
            if arch == "regnet_y_128gf"
            else [SMALL, SWAG if arch in ("regnet_y_16gf", "regnet_y_32gf") else ODD],
        )
        for arch, init in REGNET.items()
    },
    **{
        arch: (functools.partial(ResNet, Bottleneck, list(layers), groups=groups, width_per_group=width), [SMALL, ODD])
        for arch, (layers, groups, width) in RESNEXT.items()
    },
}

#: published numbers, torchvision weights meta: (weights, num_params, _ops in GMACs, the weights' crop (N, H, W)).
#: IMAGENET1K_V1 and V2 state the same numbers wherever both exist.
PUBLISHED: dict[str, list[tuple[str, int, float, tuple[int, int, int]]]] = {
    # torchvision/models/convnext.py, ConvNeXt_*_Weights
    "convnext_tiny": [("IMAGENET1K_V1", 28_589_128, 4.456, SMALL)],
    "convnext_small": [("IMAGENET1K_V1", 50_223_688, 8.684, SMALL)],
    "convnext_base": [("IMAGENET1K_V1", 88_591_464, 15.355, SMALL)],
    "convnext_large": [("IMAGENET1K_V1", 197_767_336, 34.361, SMALL)],
    # torchvision/models/regnet.py, RegNet_*_Weights
    "regnet_y_400mf": [("IMAGENET1K_V2", 4_344_144, 0.402, SMALL)],
    "regnet_y_800mf": [("IMAGENET1K_V2", 6_432_512, 0.834, SMALL)],
    "regnet_y_1_6gf": [("IMAGENET1K_V2", 11_202_430, 1.612, SMALL)],
    "regnet_y_3_2gf": [("IMAGENET1K_V2", 19_436_338, 3.176, SMALL)],
    "regnet_y_8gf": [("IMAGENET1K_V2", 39_381_472, 8.473, SMALL)],
    "regnet_y_16gf": [
        ("IMAGENET1K_V2", 83_590_140, 15.912, SMALL),
        ("IMAGENET1K_SWAG_E2E_V1", 83_590_140, 46.735, SWAG),
    ],
    "regnet_y_32gf": [
        ("IMAGENET1K_V2", 145_046_770, 32.28, SMALL),
        ("IMAGENET1K_SWAG_E2E_V1", 145_046_770, 94.826, SWAG),
    ],
    "regnet_y_128gf": [
        ("IMAGENET1K_SWAG_E2E_V1", 644_812_894, 374.57, SWAG),
        ("IMAGENET1K_SWAG_LINEAR_V1", 644_812_894, 127.518, SMALL),
    ],
    "regnet_x_400mf": [("IMAGENET1K_V2", 5_495_976, 0.414, SMALL)],
    "regnet_x_800mf": [("IMAGENET1K_V2", 7_259_656, 0.8, SMALL)],
    "regnet_x_1_6gf": [("IMAGENET1K_V2", 9_190_136, 1.603, SMALL)],
    "regnet_x_3_2gf": [("IMAGENET1K_V2", 15_296_552, 3.177, SMALL)],
    "regnet_x_8gf": [("IMAGENET1K_V2", 39_572_648, 7.995, SMALL)],
    "regnet_x_16gf": [("IMAGENET1K_V2", 54_278_536, 15.941, SMALL)],
    "regnet_x_32gf": [("IMAGENET1K_V2", 107_811_560, 31.736, SMALL)],
    # torchvision/models/resnet.py, ResNeXt*_Weights and Wide_ResNet*_Weights
    "resnext50_32x4d": [("IMAGENET1K_V2", 25_028_904, 4.23, SMALL)],
    "resnext101_32x8d": [("IMAGENET1K_V2", 88_791_336, 16.414, SMALL)],
    "resnext101_64x4d": [("IMAGENET1K_V1", 83_455_272, 15.46, SMALL)],
    "wide_resnet50_2": [("IMAGENET1K_V2", 68_883_240, 11.398, SMALL)],
    "wide_resnet101_2": [("IMAGENET1K_V2", 126_886_696, 22.753, SMALL)],
}

#: FlopCounterMode's FLOPs of the references at each file's default shape (1x3x224x224; RegNetY-128GF 1x3x384x384),
#: computed by torch and stated here with their MACs
TORCH_FLOPS = {
    "convnext_tiny": 8_911_062_528,  # 2 x 4,455,531,264 MACs
    "convnext_small": 17_367_424_512,  # 2 x 8,683,712,256 MACs
    "convnext_base": 30_709_458_944,  # 2 x 15,354,729,472 MACs
    "convnext_large": 68_722_867_200,  # 2 x 34,361,433,600 MACs
    "regnet_y_400mf": 803_685_696,  # 2 x 401,842,848 MACs
    "regnet_y_800mf": 1_667_712_512,  # 2 x 833,856,256 MACs
    "regnet_y_1_6gf": 3_224_152_320,  # 2 x 1,612,076,160 MACs
    "regnet_y_3_2gf": 6_352_965_504,  # 2 x 3,176,482,752 MACs
    "regnet_y_8gf": 16_946_141_184,  # 2 x 8,473,070,592 MACs
    "regnet_y_16gf": 31_823_020_544,  # 2 x 15,911,510,272 MACs
    "regnet_y_32gf": 64_559_105_664,  # 2 x 32,279,552,832 MACs
    "regnet_y_128gf": 749_140_012_800,  # 2 x 374,570,006,400 MACs
    "regnet_x_400mf": 827_625_216,  # 2 x 413,812,608 MACs
    "regnet_x_800mf": 1_599_399_424,  # 2 x 799,699,712 MACs
    "regnet_x_1_6gf": 3_205_699_584,  # 2 x 1,602,849,792 MACs
    "regnet_x_3_2gf": 6_353_243_904,  # 2 x 3,176,621,952 MACs
    "regnet_x_8gf": 15_990_264_832,  # 2 x 7,995,132,416 MACs
    "regnet_x_16gf": 31_881_510_912,  # 2 x 15,940,755,456 MACs
    "regnet_x_32gf": 63_471_859_584,  # 2 x 31,735,929,792 MACs
    "resnext50_32x4d": 8_460_959_744,  # 2 x 4,230,479,872 MACs
    "resnext101_32x8d": 32_828_030_976,  # 2 x 16,414,015,488 MACs
    "resnext101_64x4d": 30_920_540_160,  # 2 x 15,460,270,080 MACs
    "wide_resnet50_2": 22_796_042_240,  # 2 x 11,398,021,120 MACs
    "wide_resnet101_2": 45_506_101_248,  # 2 x 22,753,050,624 MACs
}


# The aten ops behind symcost's elementwise 'add', 'mul' and 'activation' counts
CATEGORIES = {
    "aten.add.Tensor": "add",
    "aten.add_.Tensor": "add",
    "aten.mul.Tensor": "mul",
    "aten.relu.default": "activation",
    "aten.relu_.default": "activation",
    "aten.gelu.default": "activation",
    "aten.sigmoid.default": "activation",
}


@functools.cache
def reference(arch: str) -> nn.Module:
    with META:
        return CASES[arch][0]().eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    return measure(reference(arch), image(shape), counter=ElementwiseCounter(CATEGORIES))


@functools.cache
def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    return at(graph(arch), shape)


PAIRS = [(arch, shape) for arch, (_, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=pair_ids(PAIRS))
def test_arch_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    check_equals_torch(ours(arch, shape), totals, out_shape, f"{arch} at N, H, W = {shape}")


def _owners(model: nn.Module) -> set[str]:
    """Where each parameter lives: its leaf module's path, or its own path when a non-leaf module holds it."""
    modules = dict(model.named_modules())
    owners = set()
    for name, _ in model.named_parameters():
        module_path = name.rpartition(".")[0]
        owners.add(module_path if not list(modules[module_path].children()) else name)
    return owners


@pytest.mark.parametrize("arch", list(CASES))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module (or parameter) of the same name, with the same counts."""
    shape = CASES[arch][1][0]
    _, _, per_module = torch_counts(arch, shape)
    model = reference(arch)
    root = type(model).__name__
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    checked = set()
    for node in ours(arch, shape).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _copies(node.path, node.count):
            if path in modules:
                params = sum(p.numel() for p in modules[path].parameters())
            else:
                assert path in parameters, f"{arch}: no torch module or parameter named {path}"
                params = parameters[path].numel()
            assert params * node.count == node.values["params"], path
            assert per_module.get(f"{root}.{path}", 0) * node.count == node.values["flops"], path
            checked.add(path)
    assert checked == _owners(model)


PUBLISHED_PAIRS = [(arch, entry) for arch, entries in PUBLISHED.items() for entry in entries]


@pytest.mark.parametrize(("arch", "entry"), PUBLISHED_PAIRS, ids=[f"{a}-{e[0]}" for a, e in PUBLISHED_PAIRS])
def test_published_numbers(arch, entry):
    """torchvision's published num_params (exact) and _ops (GMACs, 3 decimals) at the weights' size, for symcost and torch."""
    _weights, params, gmacs, shape = entry
    r = ours(arch, shape)
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    assert r.totals["flops"] == 2 * r.totals["macs"]
    totals, _, _ = torch_counts(arch, shape)
    assert (totals["params"], round(totals["flops"] / 2e9, 3)) == (params, gmacs)


@pytest.mark.parametrize("arch", list(CASES))
def test_defaults_are_the_default_weights(arch):
    """Each file's defaults are its default weights' input size, where symcost gives torch's exact FLOPs."""
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == CASES[arch][1][0] == PUBLISHED[arch][0][3]
    assert r.totals["flops"] == TORCH_FLOPS[arch] == torch_counts(arch, CASES[arch][1][0])[0]["flops"]


#: family -> (the parametric file, its members: that file and the short files that extend it)
FAMILIES = {
    "convnext": ("convnext_tiny", list(CONVNEXT)),
    "regnet": ("regnet_y_400mf", list(REGNET)),
    "resnet": ("resnext50_32x4d", list(RESNEXT)),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_families(family):
    """One parametric file per family; the others extend it and name the family through it."""
    base, members = FAMILIES[family]
    for arch in members:
        assert load_path(ARCHS / f"{arch}.yaml").family == family, arch
        assert (f"\nextends: {base}\n" in (ARCHS / f"{arch}.yaml").read_text()) == (arch != base), arch


def test_resnext_file_is_resnet50_at_one_group_of_64():
    """resnet50 keeps its own file; the family file at groups = 1, width_per_group = 64 is the same network."""
    family = evaluate(graph("resnext50_32x4d"), {"groups": 1, "width_per_group": 64})
    assert family.totals == evaluate(cnn_graph("resnet50")).totals


@pytest.mark.parametrize("arch", list(REGNET))
def test_regnet_stage_tables(arch):
    """Each RegNet file's literal stage table is what torchvision's from_init_params computes, and SE is in Y only."""
    depth, w_0, w_a, w_m, group_width, se_ratio = REGNET[arch]
    widths, depths, group_widths = regnet_block_params(depth, w_0, w_a, w_m, group_width)
    variables = load_path(ARCHS / f"{arch}.yaml").variables
    table = [[int(variables[f"{column}{k}"].default) for k in range(1, 5)] for column in ("w", "d", "g")]
    assert table == [widths, depths, group_widths]
    assert int(variables["se_percent"].default) == (25 if se_ratio == 0.25 else 0)
    nodes = graph(arch).nodes
    assert sum(node.path.endswith(".f.b.0") for node in nodes) == sum(depths)
    assert sum(node.path.endswith(".f.se.fc1") for node in nodes) == (sum(depths) if se_ratio else 0)


def test_regnet_table_is_from_init_params():
    """The derivation restated, on the table the header of archs/regnet_y_400mf.yaml prints for two models."""
    assert regnet_block_params(16, 48, 27.89, 2.09, 8) == ([48, 104, 208, 440], [1, 3, 6, 6], [8, 8, 8, 8])
    # group width min(120, 80) in the first stage
    assert regnet_block_params(23, 80, 49.56, 2.88, 120) == ([80, 240, 720, 1920], [2, 5, 15, 1], [80, 120, 120, 120])
