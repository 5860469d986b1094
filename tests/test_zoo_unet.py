"""U-Net (archs/unet.yaml) equals a torch reference following milesial/Pytorch-UNet exactly.

The reference below is milesial/Pytorch-UNet's unet/unet_parts.py (DoubleConv, Down, Up, OutConv) and
unet/unet_model.py (UNet) transcribed with torch.nn, module names included. It is built on the meta device and
counted with FlopCounterMode on a meta input: params, buffers, FLOPs, the elements written by adds and ReLUs, and
the output shape must equal symcost's, at 256x256 (H, W divisible by 16: every skip fits) and at 2x3x250x301
(the pools floor and Up pads the missing row or column), for the transposed-convolution and the bilinear
decoders. Published: UNet(n_channels=3, n_classes=2, bilinear=False), the repository's default model, is quoted at
31,037,698 parameters (the repository does not state the number; the transcription of its code builds that many).
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build
from tests.test_archs_cnn import ARCHS, META, ElementwiseCounter, _copies
from tests.torch_reference import torch_counts as measure

# --- milesial/Pytorch-UNet unet/unet_parts.py ----------------------------------------------------


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


# --- milesial/Pytorch-UNet unet/unet_model.py ----------------------------------------------------


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False):
        super().__init__()
        self.inc = DoubleConv(n_channels, 64)
        self.down1 = Down(64, 128)
        self.down2 = Down(128, 256)
        self.down3 = Down(256, 512)
        factor = 2 if bilinear else 1
        self.down4 = Down(512, 1024 // factor)
        self.up1 = Up(1024, 512 // factor, bilinear)
        self.up2 = Up(512, 256 // factor, bilinear)
        self.up3 = Up(256, 128 // factor, bilinear)
        self.up4 = Up(128, 64, bilinear)
        self.outc = OutConv(64, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


# --- the cases -----------------------------------------------------------------------------------

#: the quoted count for milesial/Pytorch-UNet's UNet(n_channels=3, n_classes=2, bilinear=False) (hubconf.py's unet_carvana)
PUBLISHED_PARAMS = 31_037_698
SHAPES = [(1, 256, 256), (2, 250, 301)]
CASES = [(bilinear, shape) for bilinear in (0, 1) for shape in SHAPES]


@functools.cache
def graph(bilinear: int = 0) -> Graph:
    """The graph for one decoder: ``when: bilinear`` is decided when the graph is built."""
    return build(load_path(ARCHS / "unet.yaml"), {"bilinear": bilinear})


@functools.cache
def reference(bilinear: int) -> nn.Module:
    with META:
        return UNet(3, 2, bilinear=bool(bilinear)).eval()


@functools.cache
def torch_counts(bilinear: int, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    n, h, w = shape
    return measure(reference(bilinear), torch.empty(n, 3, h, w, device=META), counter=ElementwiseCounter())


def ours(bilinear: int, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(bilinear), {"N": n, "H": h, "W": w, "bilinear": bilinear})


@pytest.mark.parametrize(("bilinear", "shape"), CASES, ids=[f"bilinear{b}-{'x'.join(map(str, s))}" for b, s in CASES])
def test_unet_equals_torch(bilinear, shape):
    totals, out_shape, _ = torch_counts(bilinear, shape)
    r = ours(bilinear, shape)
    assert {key: r.totals.get(key, 0) for key in totals} == totals
    assert list(r.outputs.values()) == [out_shape]


@pytest.mark.parametrize("bilinear", [0, 1])
def test_unet_layers_name_torch_modules(bilinear):
    """Every layer with parameters or FLOPs is the torch module of the same name, with the same counts."""
    _, _, per_module = torch_counts(bilinear, SHAPES[0])
    modules = dict(reference(bilinear).named_modules())
    checked = 0
    for node in ours(bilinear, SHAPES[0]).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _copies(node.path, node.count):
            assert path in modules, f"no torch module named {path}"
            assert sum(p.numel() for p in modules[path].parameters()) * node.count == node.values["params"], path
            assert per_module.get(f"UNet.{path}", 0) * node.count == node.values["flops"], path
            checked += 1
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)
    assert checked == sum(1 for m in modules.values() if isinstance(m, kinds))


def test_unet_published_params():
    """The defaults are the repository's model: 31,037,698 parameters, in symcost and in the reference."""
    r = evaluate(graph())
    assert r.totals["params"] == PUBLISHED_PARAMS
    assert sum(p.numel() for p in reference(0).parameters()) == PUBLISHED_PARAMS
    assert r.totals["flops"] == torch_counts(0, SHAPES[0])[0]["flops"]
