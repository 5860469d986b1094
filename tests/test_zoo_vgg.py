"""The VGG family (archs/vgg.yaml and the eight files that extend it) equals torchvision's VGG.

The reference is torchvision/models/vgg.py written here with torch.nn (torchvision is not a dependency):
cfgs A, B, D, E, make_layers(cfg, batch_norm) (3x3 conv with bias [, BatchNorm2d], ReLU per entry, 2x2 max
pool per 'M', one nn.Sequential), AdaptiveAvgPool2d((7, 7)) and the classifier, built on the meta device.
At the weights' input size (1x3x224x224) and at 2x3x160x288 (the adaptive pool repeats cells of a 5x5 map
in height and averages a 9x9 one in width): params, buffers, FlopCounterMode FLOPs, output shape and the
elements the ReLUs write equal symcost's; at 224 every layer with parameters or FLOPs is the torchvision
module of that name (features.N as make_layers numbers them) with the same counts; torchvision's published
weights meta (num_params exactly, _ops GMACs x 2e9 to its decimals) holds for both.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build
from tests.test_archs_cnn import ElementwiseCounter
from tests.torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")

# --- torchvision.models.vgg ----------------------------------------------------------------------

CFGS: dict[str, list[str | int]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[str | int], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            assert isinstance(v, int)
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            layers += (
                [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [conv2d, nn.ReLU(inplace=True)]
            )
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


#: torchvision's builders: name -> (cfg, batch_norm), and symcost's depth for the cfg
BUILDERS = {
    f"vgg{depth}{suffix}": (cfg, suffix == "_bn")
    for depth, cfg in ((11, "A"), (13, "B"), (16, "D"), (19, "E"))
    for suffix in ("", "_bn")
}
DEPTH = {"A": 11, "B": 13, "D": 16, "E": 19}

# torchvision/models/vgg.py, VGG*_Weights.IMAGENET1K_V1 meta at 224x224: (num_params, _ops in GMACs)
PUBLISHED = {
    "vgg11": (132_863_336, "7.609"),
    "vgg11_bn": (132_868_840, "7.609"),
    "vgg13": (133_047_848, "11.308"),
    "vgg13_bn": (133_053_736, "11.308"),
    "vgg16": (138_357_544, "15.47"),
    "vgg16_bn": (138_365_992, "15.47"),
    "vgg19": (143_667_240, "19.632"),
    "vgg19_bn": (143_678_248, "19.632"),
}

SHAPES = [(1, 224, 224), (2, 160, 288)]


@functools.cache
def reference(arch: str) -> nn.Module:
    cfg, batch_norm = BUILDERS[arch]
    with META:
        return VGG(make_layers(CFGS[cfg], batch_norm)).eval()


@functools.cache
def torch_counts(arch: str, shape: tuple[int, int, int]) -> tuple[dict[str, int], tuple[int, ...], dict[str, int]]:
    n, h, w = shape
    with torch.no_grad():
        return measure(reference(arch), torch.empty(n, 3, h, w, device=META), counter=ElementwiseCounter())


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml", f"archs/{arch}.yaml"))


def ours(arch: str, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(arch), {"N": n, "H": h, "W": w})


PAIRS = [(arch, shape) for arch in BUILDERS for shape in SHAPES]


@pytest.mark.parametrize(("arch", "shape"), PAIRS, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in PAIRS])
def test_vgg_equals_torchvision(arch, shape):
    totals, out_shape, _ = torch_counts(arch, shape)
    r = ours(arch, shape)
    assert {key: r.totals.get(key, 0) for key in totals} == totals, f"{arch} at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_published_meta(arch):
    """num_params exactly and _ops (GMACs: FlopCounterMode FLOPs / 2e9 to the published decimals) at the
    file's defaults, which are the weights' 1x3x224x224, for symcost and for the torch reference."""
    params, gmacs = PUBLISHED[arch]
    r = evaluate(graph(arch))
    assert (r.values["N"], r.values["H"], r.values["W"]) == SHAPES[0]
    totals, _, _ = torch_counts(arch, SHAPES[0])
    decimals = len(gmacs.split(".")[1])
    for p, flops in ((r.totals["params"], r.totals["flops"]), (totals["params"], totals["flops"])):
        assert p == params
        assert f"{flops / 2e9:.{decimals}f}" == gmacs


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_layers_name_torchvision_modules(arch):
    """Every layer with parameters or FLOPs is the torchvision module of the same name (features.N in
    make_layers' order, which batch_norm shifts), with the same counts; every conv, BN and linear is one."""
    _, _, per_module = torch_counts(arch, SHAPES[0])
    modules = dict(reference(arch).named_modules())
    checked = 0
    for node in ours(arch, SHAPES[0]).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        assert node.count == 1 and node.path in modules, f"{arch}: no torchvision module named {node.path}"
        assert sum(p.numel() for p in modules[node.path].parameters()) == node.values["params"], node.path
        assert per_module.get(f"VGG.{node.path}", 0) == node.values["flops"], node.path
        checked += 1
    assert checked == sum(1 for m in modules.values() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)))


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_the_family_file_with_builder_arguments_is_the_model(arch):
    """`symcost eval vgg --set depth=19 batch_norm=1` is vgg19_bn: the siblings only re-default them."""
    cfg, batch_norm = BUILDERS[arch]
    values = {"depth": DEPTH[cfg], "batch_norm": int(batch_norm)}
    family = build(load_path(ARCHS / "vgg.yaml", "archs/vgg.yaml"), values)
    assert evaluate(family, values).totals == evaluate(graph(arch)).totals
