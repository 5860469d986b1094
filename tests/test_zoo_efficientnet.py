"""The EfficientNet family (B0-B7, V2-S/M/L) equals torch exactly.

archs/efficientnet_b0.yaml is one parametric file: a stage table (torchvision's _efficientnet_conf rows) whose
cells scale with width_pct and depth_pct (torchvision's width_mult and depth_mult, in percent); B1-B7 extend it
with other multipliers and input sizes, and the V2 files replace its table with FusedMBConv and MBConv rows.
Each is checked against a reference written here with torch.nn, following torchvision's source
(torchvision/models/efficientnet.py: _MBConvConfig.adjust_channels, MBConvConfig.adjust_depth, MBConv,
FusedMBConv, EfficientNet, _efficientnet_conf and the efficientnet_* builders; torchvision/ops/misc.py;
torchvision is not a dependency). The reference is built on the meta device and counted with FlopCounterMode:
symcost's FLOPs, params, buffers and output shape must equal torch's at the weights' input size and at one other
size (B5-B7: the weights' size only, to keep the suite fast), and the elements written by torch's add, mul and
activation kernels must equal symcost's elementwise counts. Every layer with parameters or FLOPs must name the
torch module of the same name, with the same counts. The published numbers (torchvision weights meta) are checked
at the weights' input size, and the ``--convention thop|ptflops|fvcore`` presets on B0 at 224.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from symcost import cost
from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build

from .test_zoo_mobile import (
    MOBILE_CATEGORIES,
    Conv2dNormActivation,
    SqueezeExcitation,
    StochasticDepth,
    _make_divisible,
)
from .torch_reference import ElementwiseCounter, at, check_equals_torch, check_layer_names, image, pair_ids, peer_counts
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision/models/efficientnet.py ----------------------------------------------------------


class _MBConvConfig:
    def __init__(self, expand_ratio, kernel, stride, input_channels, out_channels, num_layers, block):
        self.expand_ratio, self.kernel, self.stride = expand_ratio, kernel, stride
        self.input_channels, self.out_channels, self.num_layers = input_channels, out_channels, num_layers
        self.block = block

    @staticmethod
    def adjust_channels(channels: float, width_mult: float, min_value: int | None = None) -> int:
        return _make_divisible(channels * width_mult, 8, min_value)


class MBConvConfig(_MBConvConfig):
    def __init__(
        self, expand_ratio, kernel, stride, input_channels, out_channels, num_layers, width_mult=1.0, depth_mult=1.0
    ):
        input_channels = self.adjust_channels(input_channels, width_mult)
        out_channels = self.adjust_channels(out_channels, width_mult)
        num_layers = int(math.ceil(num_layers * depth_mult))  # adjust_depth
        super().__init__(expand_ratio, kernel, stride, input_channels, out_channels, num_layers, MBConv)


class FusedMBConvConfig(_MBConvConfig):
    def __init__(self, expand_ratio, kernel, stride, input_channels, out_channels, num_layers):
        super().__init__(expand_ratio, kernel, stride, input_channels, out_channels, num_layers, FusedMBConv)


class MBConv(nn.Module):
    def __init__(self, cnf: _MBConvConfig, stochastic_depth_prob: float, norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded_channels != cnf.input_channels:
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels, expanded_channels, 1, norm_layer=norm_layer, activation_layer=nn.SiLU
                )
            )
        layers.append(
            Conv2dNormActivation(
                expanded_channels,
                expanded_channels,
                cnf.kernel,
                cnf.stride,
                groups=expanded_channels,
                norm_layer=norm_layer,
                activation_layer=nn.SiLU,
            )
        )
        squeeze_channels = max(1, cnf.input_channels // 4)
        layers.append(SqueezeExcitation(expanded_channels, squeeze_channels, activation=partial(nn.SiLU, inplace=True)))
        layers.append(
            Conv2dNormActivation(expanded_channels, cnf.out_channels, 1, norm_layer=norm_layer, activation_layer=None)
        )
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class FusedMBConv(nn.Module):
    def __init__(self, cnf: _MBConvConfig, stochastic_depth_prob: float, norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded_channels != cnf.input_channels:
            # fused expand, then project
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels,
                    expanded_channels,
                    cnf.kernel,
                    cnf.stride,
                    norm_layer=norm_layer,
                    activation_layer=nn.SiLU,
                )
            )
            layers.append(
                Conv2dNormActivation(
                    expanded_channels, cnf.out_channels, 1, norm_layer=norm_layer, activation_layer=None
                )
            )
        else:
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels,
                    cnf.out_channels,
                    cnf.kernel,
                    cnf.stride,
                    norm_layer=norm_layer,
                    activation_layer=nn.SiLU,
                )
            )
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class EfficientNet(nn.Module):
    def __init__(
        self,
        setting: list[_MBConvConfig],
        dropout: float,
        stochastic_depth_prob: float = 0.2,
        num_classes: int = 1000,
        norm_layer: Callable[..., nn.Module] | None = None,
        last_channel: int | None = None,
    ):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        layers: list[nn.Module] = [
            Conv2dNormActivation(3, setting[0].input_channels, 3, 2, norm_layer=norm_layer, activation_layer=nn.SiLU)
        ]
        total_stage_blocks = sum(cnf.num_layers for cnf in setting)
        stage_block_id = 0
        for cnf in setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
                stage.append(block_cnf.block(block_cnf, sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
        lastconv_input_channels = setting[-1].out_channels
        lastconv_output_channels = last_channel if last_channel is not None else 4 * lastconv_input_channels
        layers.append(
            Conv2dNormActivation(
                lastconv_input_channels, lastconv_output_channels, 1, norm_layer=norm_layer, activation_layer=nn.SiLU
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(lastconv_output_channels, num_classes)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _efficientnet_conf(arch: str, width_mult: float = 1.0, depth_mult: float = 1.0):
    if arch.startswith("efficientnet_b"):
        bneck_conf = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
        return [
            bneck_conf(1, 3, 1, 32, 16, 1),
            bneck_conf(6, 3, 2, 16, 24, 2),
            bneck_conf(6, 5, 2, 24, 40, 2),
            bneck_conf(6, 3, 2, 40, 80, 3),
            bneck_conf(6, 5, 1, 80, 112, 3),
            bneck_conf(6, 5, 2, 112, 192, 4),
            bneck_conf(6, 3, 1, 192, 320, 1),
        ], None
    if arch == "efficientnet_v2_s":
        return [
            FusedMBConvConfig(1, 3, 1, 24, 24, 2),
            FusedMBConvConfig(4, 3, 2, 24, 48, 4),
            FusedMBConvConfig(4, 3, 2, 48, 64, 4),
            MBConvConfig(4, 3, 2, 64, 128, 6),
            MBConvConfig(6, 3, 1, 128, 160, 9),
            MBConvConfig(6, 3, 2, 160, 256, 15),
        ], 1280
    if arch == "efficientnet_v2_m":
        return [
            FusedMBConvConfig(1, 3, 1, 24, 24, 3),
            FusedMBConvConfig(4, 3, 2, 24, 48, 5),
            FusedMBConvConfig(4, 3, 2, 48, 80, 5),
            MBConvConfig(4, 3, 2, 80, 160, 7),
            MBConvConfig(6, 3, 1, 160, 176, 14),
            MBConvConfig(6, 3, 2, 176, 304, 18),
            MBConvConfig(6, 3, 1, 304, 512, 5),
        ], 1280
    assert arch == "efficientnet_v2_l", arch
    return [
        FusedMBConvConfig(1, 3, 1, 32, 32, 4),
        FusedMBConvConfig(4, 3, 2, 32, 64, 7),
        FusedMBConvConfig(4, 3, 2, 64, 96, 7),
        MBConvConfig(4, 3, 2, 96, 192, 10),
        MBConvConfig(6, 3, 1, 192, 224, 19),
        MBConvConfig(6, 3, 2, 224, 384, 25),
        MBConvConfig(6, 3, 1, 384, 640, 7),
    ], 1280


#: the efficientnet_* builders: (width_mult, depth_mult, dropout, norm_layer); B5-B7 use BatchNorm2d(eps=0.001,
#: momentum=0.01) and V2 BatchNorm2d(eps=1e-03): no count depends on eps or momentum
_BN_B5 = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
_BN_V2 = partial(nn.BatchNorm2d, eps=1e-03)
BUILDERS = {
    "efficientnet_b0": (1.0, 1.0, 0.2, None),
    "efficientnet_b1": (1.0, 1.1, 0.2, None),
    "efficientnet_b2": (1.1, 1.2, 0.3, None),
    "efficientnet_b3": (1.2, 1.4, 0.3, None),
    "efficientnet_b4": (1.4, 1.8, 0.4, None),
    "efficientnet_b5": (1.6, 2.2, 0.4, _BN_B5),
    "efficientnet_b6": (1.8, 2.6, 0.5, _BN_B5),
    "efficientnet_b7": (2.0, 3.1, 0.5, _BN_B5),
    "efficientnet_v2_s": (None, None, 0.2, _BN_V2),
    "efficientnet_v2_m": (None, None, 0.3, _BN_V2),
    "efficientnet_v2_l": (None, None, 0.4, _BN_V2),
}


def efficientnet(arch: str) -> EfficientNet:
    width_mult, depth_mult, dropout, norm_layer = BUILDERS[arch]
    if width_mult is None:
        setting, last_channel = _efficientnet_conf(arch)
    else:
        setting, last_channel = _efficientnet_conf(arch, width_mult=width_mult, depth_mult=depth_mult)
    return EfficientNet(setting, dropout, norm_layer=norm_layer, last_channel=last_channel)


# --- the cases -----------------------------------------------------------------------------------

#: (N, H, W): first the weights' crop size (torchvision's transforms crop_size, the file's default H and W; the
#: published numbers), then another size at batch 2 (non-square, and odd where the strides round)
SHAPES = {
    "efficientnet_b0": [(1, 224, 224), (2, 256, 193)],
    "efficientnet_b1": [(1, 240, 240), (2, 224, 199)],
    "efficientnet_b2": [(1, 288, 288), (2, 260, 301)],
    "efficientnet_b3": [(1, 300, 300), (2, 320, 255)],
    "efficientnet_b4": [(1, 380, 380), (2, 224, 225)],
    "efficientnet_b5": [(1, 456, 456), (1, 256, 224)],
    "efficientnet_b6": [(1, 528, 528), (1, 224, 256)],
    "efficientnet_b7": [(1, 600, 600), (1, 240, 240)],
    "efficientnet_v2_s": [(1, 384, 384), (2, 224, 241)],
    "efficientnet_v2_m": [(1, 480, 480), (2, 384, 321)],
    "efficientnet_v2_l": [(1, 480, 480), (2, 224, 289)],
}

#: torchvision weights meta (torchvision/models/efficientnet.py, EfficientNet_*_Weights.IMAGENET1K_V1):
#: (num_params, _ops in GMACs at 1x3xHxW, H = W the crop size: the first of SHAPES)
PUBLISHED = {
    "efficientnet_b0": (5_288_548, 0.386),
    "efficientnet_b1": (7_794_184, 0.687),  # IMAGENET1K_V1 and _V2
    "efficientnet_b2": (9_109_994, 1.088),
    "efficientnet_b3": (12_233_232, 1.827),
    "efficientnet_b4": (19_341_616, 4.394),
    "efficientnet_b5": (30_389_784, 10.266),
    "efficientnet_b6": (43_040_704, 19.068),
    "efficientnet_b7": (66_347_960, 37.746),
    "efficientnet_v2_s": (21_458_488, 8.366),
    "efficientnet_v2_m": (54_139_356, 24.582),
    "efficientnet_v2_l": (118_515_272, 56.08),
}


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml"))


@functools.cache
def reference(arch: str) -> nn.Module:
    with META:
        return efficientnet(arch).eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    return measure(reference(arch), image(shape), counter=ElementwiseCounter(MOBILE_CATEGORIES))


@functools.cache
def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    return at(graph(arch), shape)


PAIRS = [(arch, shape) for arch, shapes in SHAPES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=pair_ids(PAIRS))
def test_arch_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    check_equals_torch(ours(arch, shape), totals, out_shape, f"{arch} at N, H, W = {shape}")


@pytest.mark.parametrize("arch", list(SHAPES))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    shape = SHAPES[arch][0]
    _, _, per_module = torch_counts(arch, shape)
    check_layer_names(ours(arch, shape), reference(arch), per_module, arch)


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's num_params exactly, and its _ops (GMACs) = FLOPs / 2e9 rounded to 3 decimals, at the
    weights' crop size, which is the file's default H and W."""
    params, gmacs = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == SHAPES[arch][0], "the defaults are the weights' size"
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    totals, _, _ = torch_counts(arch, SHAPES[arch][0])
    assert totals["params"] == params
    assert round(totals["flops"] / 2e9, 3) == gmacs


@pytest.mark.parametrize("tool", ["thop", "ptflops", "fvcore"])
def test_peer_tools_at_224(tool):
    """``--convention thop|ptflops|fvcore`` prints what thop 0.1.1, ptflops 0.7.5 and fvcore 0.1.5 count on the
    B0 reference at 1x3x224x224 (run as tests/test_peer_conventions.py runs them: thop on meta, the others on
    CPU with zeroed weights), and the params thop and ptflops report."""
    model = reference("efficientnet_b0")
    flops, params = peer_counts(model, tool)
    r = evaluate(graph("efficientnet_b0"), {}, cost.preset(tool))
    assert r.totals["flops"] == flops
    if params is not None:
        assert r.totals["params"] == params == PUBLISHED["efficientnet_b0"][0]
