"""MobileNetV3, and MobileNetV2 at other widths, equal torch exactly; the torchvision.ops pieces the mobile tests share.

The architecture is checked against a reference model written here with torch.nn, following
torchvision's source (torchvision is not a dependency): torchvision/models/mobilenetv3.py
(InvertedResidualConfig, InvertedResidual, MobileNetV3, _mobilenet_v3_conf; MobileNetV2 is
tests/test_archs_cnn.py's, after torchvision/models/mobilenetv2.py) and
torchvision/ops/misc.py (Conv2dNormActivation, SqueezeExcitation) and ops/stochastic_depth.py
(these and the elementwise counter are shared with tests/test_zoo_efficientnet.py).
The reference is built on the meta device and counted with FlopCounterMode on a meta input at
several input sizes: symcost's FLOPs, params, buffers and output shape must equal torch's. Torch
counts activations, the residual adds and the squeeze-excitation gate's multiply as 0 FLOPs, so
the elements their aten kernels write are counted apart and must equal symcost's elementwise
'activation', 'add' and 'mul' counts: a missing gate, shortcut or activation fails. Every layer
with parameters or FLOPs must name the torch module of the same name with the same counts. The
``--convention thop|ptflops|fvcore`` presets must print what those tools count on the reference at 224.
"""

from __future__ import annotations

import functools
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

from .test_archs_cnn import MobileNetV2
from .torch_reference import ElementwiseCounter, check_equals_torch, check_layer_names, image, pair_ids, peer_counts
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision/models/_utils.py and torchvision/ops -------------------------------------------


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """torchvision.ops.misc.Conv2dNormActivation: conv (bias only without a norm), norm, activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: int = 1,
    ):
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False
            ),
            norm_layer(out_channels),
        ]
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """torchvision.ops.misc.SqueezeExcitation: scale = sigma(fc2(delta(fc1(avgpool(x))))); scale * x."""

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
    ):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, input):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))
        return scale * input


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: the identity in eval mode or with p = 0."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, input):
        if not self.training or self.p == 0.0:
            return input
        survival_rate = 1.0 - self.p
        size = [input.shape[0]] + [1] * (input.ndim - 1) if self.mode == "row" else [1] * input.ndim
        noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return input * noise


# --- torchvision/models/mobilenetv3.py -----------------------------------------------------------


class InvertedResidualConfig:
    def __init__(
        self, input_channels, kernel, expanded_channels, out_channels, use_se, activation, stride, dilation, width_mult
    ):
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride, self.dilation = stride, dilation

    @staticmethod
    def adjust_channels(channels: int, width_mult: float) -> int:
        return _make_divisible(channels * width_mult, 8)


class InvertedResidual(nn.Module):
    def __init__(self, cnf: InvertedResidualConfig, norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        activation_layer = nn.Hardswish if cnf.use_hs else nn.ReLU
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels,
                    cnf.expanded_channels,
                    1,
                    norm_layer=norm_layer,
                    activation_layer=activation_layer,
                )
            )
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(
            Conv2dNormActivation(
                cnf.expanded_channels,
                cnf.expanded_channels,
                cnf.kernel,
                stride,
                groups=cnf.expanded_channels,
                norm_layer=norm_layer,
                activation_layer=activation_layer,
                dilation=cnf.dilation,
            )
        )
        if cnf.use_se:
            squeeze_channels = _make_divisible(cnf.expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(cnf.expanded_channels, squeeze_channels, scale_activation=nn.Hardsigmoid))
        layers.append(
            Conv2dNormActivation(
                cnf.expanded_channels, cnf.out_channels, 1, norm_layer=norm_layer, activation_layer=None
            )
        )
        self.block = nn.Sequential(*layers)

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result += input
        return result


class MobileNetV3(nn.Module):
    def __init__(self, setting: list[InvertedResidualConfig], last_channel: int, dropout: float = 0.2):
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                3, setting[0].input_channels, 3, 2, norm_layer=norm_layer, activation_layer=nn.Hardswish
            )
        ]
        layers += [InvertedResidual(cnf, norm_layer) for cnf in setting]
        lastconv_input_channels = setting[-1].out_channels
        lastconv_output_channels = 6 * lastconv_input_channels
        layers.append(
            Conv2dNormActivation(
                lastconv_input_channels,
                lastconv_output_channels,
                1,
                norm_layer=norm_layer,
                activation_layer=nn.Hardswish,
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(lastconv_output_channels, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, 1000),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _mobilenet_v3_conf(arch: str, width_mult: float = 1.0, reduced_tail: bool = False, dilated: bool = False):
    reduce_divider = 2 if reduced_tail else 1
    dilation = 2 if dilated else 1
    bneck_conf = partial(InvertedResidualConfig, width_mult=width_mult)
    adjust_channels = partial(InvertedResidualConfig.adjust_channels, width_mult=width_mult)
    rd = reduce_divider
    if arch == "mobilenet_v3_large":
        setting = [
            bneck_conf(16, 3, 16, 16, False, "RE", 1, 1),
            bneck_conf(16, 3, 64, 24, False, "RE", 2, 1),  # C1
            bneck_conf(24, 3, 72, 24, False, "RE", 1, 1),
            bneck_conf(24, 5, 72, 40, True, "RE", 2, 1),  # C2
            bneck_conf(40, 5, 120, 40, True, "RE", 1, 1),
            bneck_conf(40, 5, 120, 40, True, "RE", 1, 1),
            bneck_conf(40, 3, 240, 80, False, "HS", 2, 1),  # C3
            bneck_conf(80, 3, 200, 80, False, "HS", 1, 1),
            bneck_conf(80, 3, 184, 80, False, "HS", 1, 1),
            bneck_conf(80, 3, 184, 80, False, "HS", 1, 1),
            bneck_conf(80, 3, 480, 112, True, "HS", 1, 1),
            bneck_conf(112, 3, 672, 112, True, "HS", 1, 1),
            bneck_conf(112, 5, 672, 160 // rd, True, "HS", 2, dilation),  # C4
            bneck_conf(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dilation),
            bneck_conf(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dilation),
        ]
        return setting, adjust_channels(1280 // rd)  # C5
    assert arch == "mobilenet_v3_small", arch
    setting = [
        bneck_conf(16, 3, 16, 16, True, "RE", 2, 1),  # C1
        bneck_conf(16, 3, 72, 24, False, "RE", 2, 1),  # C2
        bneck_conf(24, 3, 88, 24, False, "RE", 1, 1),
        bneck_conf(24, 5, 96, 40, True, "HS", 2, 1),  # C3
        bneck_conf(40, 5, 240, 40, True, "HS", 1, 1),
        bneck_conf(40, 5, 240, 40, True, "HS", 1, 1),
        bneck_conf(40, 5, 120, 48, True, "HS", 1, 1),
        bneck_conf(48, 5, 144, 48, True, "HS", 1, 1),
        bneck_conf(48, 5, 288, 96 // rd, True, "HS", 2, dilation),  # C4
        bneck_conf(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dilation),
        bneck_conf(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dilation),
    ]
    return setting, adjust_channels(1024 // rd)  # C5


def mobilenet_v3(arch: str, width_mult: float = 1.0, reduced_tail: bool = False, dilated: bool = False) -> MobileNetV3:
    """torchvision's mobilenet_v3_large / mobilenet_v3_small(**kwargs): kwargs reach _mobilenet_v3_conf."""
    setting, last_channel = _mobilenet_v3_conf(arch, width_mult, reduced_tail, dilated)
    return MobileNetV3(setting, last_channel)


# --- the cases -----------------------------------------------------------------------------------

#: case -> (architecture file, its variables, the torchvision builder's keyword arguments, shapes (N, H, W)):
#: the bundled files at the weights' crop size 224 (the published numbers) and a non-square odd size, and the
#: builder's other options (width_mult, reduced_tail, dilated: the backbone settings of torchvision's detection
#: and segmentation models) at one size
CASES: dict[str, tuple[str, dict[str, int], Callable[[], nn.Module], list[tuple[int, int, int]]]] = {
    "mobilenet_v3_large": (
        "mobilenet_v3_large",
        {},
        partial(mobilenet_v3, "mobilenet_v3_large"),
        [(1, 224, 224), (2, 225, 199)],
    ),
    "mobilenet_v3_small": (
        "mobilenet_v3_small",
        {},
        partial(mobilenet_v3, "mobilenet_v3_small"),
        [(1, 224, 224), (2, 225, 199)],
    ),
    "mobilenet_v3_large-w75-reduced-dilated": (
        "mobilenet_v3_large",
        {"width_pct": 75, "reduced_tail": 1, "dilated": 1},
        partial(mobilenet_v3, "mobilenet_v3_large", width_mult=0.75, reduced_tail=True, dilated=True),
        [(1, 224, 224)],
    ),
    "mobilenet_v3_small-w125-dilated": (
        "mobilenet_v3_small",
        {"width_pct": 125, "dilated": 1},
        partial(mobilenet_v3, "mobilenet_v3_small", width_mult=1.25, dilated=True),
        [(2, 193, 256)],
    ),
    # mobilenet_v2's width_mult (tests/test_archs_cnn.py checks it at 1.0): 1.4 widens last_channel to 1792; at
    # 0.35 the stem's 32 x 0.35 = 11.2 rounds to 8 < 0.9 x 11.2, so _make_divisible raises it to 16
    "mobilenet_v2-w140": ("mobilenet_v2", {"width_pct": 140}, partial(MobileNetV2, width_mult=1.4), [(1, 224, 224)]),
    "mobilenet_v2-w35": ("mobilenet_v2", {"width_pct": 35}, partial(MobileNetV2, width_mult=0.35), [(2, 160, 127)]),
}

#: torchvision weights meta: (num_params, _ops in GMACs at 1x3x224x224)
PUBLISHED = {
    # torchvision/models/mobilenetv3.py, MobileNet_V3_Large_Weights.IMAGENET1K_V1 and _V2
    "mobilenet_v3_large": (5_483_032, 0.217),
    # torchvision/models/mobilenetv3.py, MobileNet_V3_Small_Weights.IMAGENET1K_V1
    "mobilenet_v3_small": (2_542_856, 0.057),
}


# The aten ops behind symcost's elementwise 'add', 'mul' and 'activation' counts
MOBILE_CATEGORIES = {
    "aten.add.Tensor": "add",
    "aten.add_.Tensor": "add",  # MBConv / InvertedResidual: result += input
    "aten.mul.Tensor": "mul",  # SqueezeExcitation: scale * input
    **{
        f"aten.{fn}.default": "activation"
        for fn in ("relu", "relu_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_")
        + ("silu", "silu_", "sigmoid", "sigmoid_", "hardtanh", "hardtanh_")  # nn.ReLU6 is hardtanh
    },
}


@functools.cache
def graph(case: str) -> Graph:
    arch, values, _, _ = CASES[case]
    return build(load_path(ARCHS / f"{arch}.yaml"), values)


@functools.cache
def reference(case: str) -> nn.Module:
    _, _, factory, _ = CASES[case]
    with META:
        return factory().eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    return measure(reference(arch), image(shape), counter=ElementwiseCounter(MOBILE_CATEGORIES))


@functools.cache
def ours(case: str, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(case), {**CASES[case][1], "N": n, "H": h, "W": w})


PAIRS = [(case, shape) for case, (_, _, _, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=pair_ids(PAIRS))
def test_arch_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    check_equals_torch(ours(arch, shape), totals, out_shape, f"{arch} at N, H, W = {shape}")


@pytest.mark.parametrize("arch", list(CASES))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    shape = CASES[arch][3][0]
    _, _, per_module = torch_counts(arch, shape)
    check_layer_names(ours(arch, shape), reference(arch), per_module, arch)


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's num_params exactly, and its _ops (GMACs) = FLOPs / 2e9 rounded to 3 decimals, at 224."""
    params, gmacs = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == (1, 224, 224), "the file's defaults are the published shape"
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    totals, _, _ = torch_counts(arch, (1, 224, 224))
    assert totals["params"] == params
    assert round(totals["flops"] / 2e9, 3) == gmacs


@pytest.mark.parametrize("tool", ["thop", "ptflops", "fvcore"])
@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_peer_tools_at_224(arch, tool):
    """``--convention thop|ptflops|fvcore`` prints what thop 0.1.1, ptflops 0.7.5 and fvcore 0.1.5 count on the
    torch reference at 1x3x224x224 (run as tests/test_peer_conventions.py runs them: thop on meta, the others on
    CPU with zeroed weights), and the params thop and ptflops report."""
    model = reference(arch)
    flops, params = peer_counts(model, tool)
    r = evaluate(graph(arch), {}, cost.preset(tool))
    assert r.totals["flops"] == flops
    if params is not None:
        assert r.totals["params"] == params == PUBLISHED[arch][0]
