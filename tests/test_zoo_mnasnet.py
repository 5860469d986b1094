"""The MNASNet family (archs/mnasnet1_0.yaml and its extends files mnasnet0_5, mnasnet0_75, mnasnet1_3)
equals torchvision's MNASNet exactly.

The reference is written here with torch.nn following torchvision/models/mnasnet.py (_InvertedResidual,
_stack, _round_to_multiple_of, _get_depths, MNASNet at model version 2), in torch's floats; torchvision is
not a dependency. It is built on the meta device, in eval mode, and counted with FlopCounterMode on a meta
input at the weights' 224x224 and at another size: symcost's FLOPs, params, buffers and output shape must
equal torch's, and the elements torch's add and relu kernels write must equal symcost's elementwise 'add'
and 'activation' counts (a missing shortcut or ReLU fails). Every layer with parameters or FLOPs names the
torch module of the same name with the same counts. The published numbers are torchvision's weights meta.
"""

from __future__ import annotations

import functools

import pytest
from torch import nn

from symcost import cost
from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import build

from .torch_reference import (
    ARCHS,
    META,
    ElementwiseCounter,
    at,
    check_equals_torch,
    check_layer_names,
    graph,
    image,
    pair_ids,
    peer_counts,
)
from .torch_reference import torch_counts as measure

# --- torchvision/models/mnasnet.py ---------------------------------------------------------------

_BN_MOMENTUM = 1 - 0.9997


class _InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, expansion_factor: int):
        super().__init__()
        mid_ch = in_ch * expansion_factor
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 1, bias=False),
            nn.BatchNorm2d(mid_ch, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, mid_ch, kernel_size, padding=kernel_size // 2, stride=stride, groups=mid_ch, bias=False),
            nn.BatchNorm2d(mid_ch, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=_BN_MOMENTUM),
        )

    def forward(self, input):
        return self.layers(input) + input if self.apply_residual else self.layers(input)


def _stack(in_ch: int, out_ch: int, kernel_size: int, stride: int, exp_factor: int, repeats: int) -> nn.Sequential:
    first = _InvertedResidual(in_ch, out_ch, kernel_size, stride, exp_factor)
    remaining = [_InvertedResidual(out_ch, out_ch, kernel_size, 1, exp_factor) for _ in range(1, repeats)]
    return nn.Sequential(first, *remaining)


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    depths = [32, 16, 24, 40, 80, 96, 192, 320]
    return [_round_to_multiple_of(depth * alpha, 8) for depth in depths]


class MNASNet(nn.Module):
    def __init__(self, alpha: float, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        depths = _get_depths(alpha)
        layers = [
            nn.Conv2d(3, depths[0], 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0], bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[1], 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(depths[1], momentum=_BN_MOMENTUM),
            _stack(depths[1], depths[2], 3, 2, 3, 3),
            _stack(depths[2], depths[3], 5, 2, 3, 3),
            _stack(depths[3], depths[4], 5, 2, 6, 3),
            _stack(depths[4], depths[5], 3, 1, 6, 2),
            _stack(depths[5], depths[6], 5, 2, 6, 4),
            _stack(depths[6], depths[7], 3, 1, 6, 1),
            nn.Conv2d(depths[7], 1280, 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(1280, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(self.layers(x).mean([2, 3]))


# --- the cases -----------------------------------------------------------------------------------

#: the architectures and torchvision's alpha for each (mnasnet0_5 = MNASNet(0.5), ...)
ALPHA = {"mnasnet0_5": 0.5, "mnasnet0_75": 0.75, "mnasnet1_0": 1.0, "mnasnet1_3": 1.3}
#: the first shape is the weights' crop size (the published numbers), the second another size
SHAPES = [(1, 224, 224), (2, 256, 192)]

#: torchvision/models/mnasnet.py weights meta (MNASNet*_Weights.IMAGENET1K_V1): num_params, _ops (GMACs) at 224x224
PUBLISHED = {
    "mnasnet0_5": (2_218_512, 0.104),
    "mnasnet0_75": (3_170_208, 0.215),
    "mnasnet1_0": (4_383_312, 0.314),
    "mnasnet1_3": (6_282_256, 0.526),
}


CATEGORIES = {
    "aten.add.Tensor": "add",  # _InvertedResidual: self.layers(input) + input
    "aten.relu.default": "activation",
    "aten.relu_.default": "activation",  # nn.ReLU(inplace=True)
}


@functools.cache
def reference(arch: str) -> nn.Module:
    with META:
        return MNASNet(ALPHA[arch]).eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    return measure(reference(arch), image(shape), counter=ElementwiseCounter(CATEGORIES))


@functools.cache
def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    return at(graph(arch), shape)


PAIRS = [(arch, shape) for arch in ALPHA for shape in SHAPES]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=pair_ids(PAIRS))
def test_mnasnet_equals_torch(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    check_equals_torch(ours(arch, shape), totals, out_shape, f"{arch} at N, H, W = {shape}")


@pytest.mark.parametrize("arch", list(ALPHA))
def test_layers_name_torch_modules(arch):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    _, _, per_module = torch_counts(arch, SHAPES[0])
    check_layer_names(ours(arch, SHAPES[0]), reference(arch), per_module, arch, root="MNASNet")


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_numbers(arch):
    """torchvision's num_params exactly, and its _ops (GMACs) = FLOPs / 2e9 rounded to 3 decimals, at 224."""
    params, gmacs = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == SHAPES[0], "the file's defaults are the published shape"
    assert r.values["alpha_percent"] == round(100 * ALPHA[arch])
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    totals, _, _ = torch_counts(arch, SHAPES[0])
    assert totals["params"] == params
    assert round(totals["flops"] / 2e9, 3) == gmacs


def test_depths_follow_torchvision_rounding():
    """The widths of the family file are _get_depths(alpha) in torch's floats, alpha_percent set on mnasnet1_0
    (the stem conv, the stem's separable conv output, and the six stacks' outputs). The residual adds depend on
    the widths, so the graph is built at that alpha_percent, as ``--set alpha_percent=...`` builds it."""
    for arch, alpha in ALPHA.items():
        values = {"alpha_percent": round(100 * alpha)}
        r = evaluate(build(load_path(ARCHS / "mnasnet1_0.yaml"), values), values)
        outputs = {node.path: node.output[1] for node in r.nodes}
        widths = [outputs["layers.0"], outputs["layers.6"]] + [outputs[f"layers.{i}.0.layers.6"] for i in range(8, 14)]
        assert widths == _get_depths(alpha), arch
        assert r.totals == ours(arch, SHAPES[0]).totals, f"{arch} is mnasnet1_0 with alpha_percent set"


@pytest.mark.parametrize("tool", ["thop", "ptflops", "fvcore"])
def test_peer_tools_at_224(tool):
    """``--convention thop|ptflops|fvcore`` prints what thop 0.1.1, ptflops 0.7.5 and fvcore 0.1.5 count on the
    torch reference of mnasnet1_0 at 1x3x224x224 (run as tests/test_peer_conventions.py runs them: thop on meta,
    the others on CPU with zeroed weights), and the params thop and ptflops report."""
    model = reference("mnasnet1_0")
    flops, params = peer_counts(model, tool)
    r = evaluate(graph("mnasnet1_0"), {}, cost.preset(tool))
    assert r.totals["flops"] == flops
    if params is not None:
        assert r.totals["params"] == params == PUBLISHED["mnasnet1_0"][0]
